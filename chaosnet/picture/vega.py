"""Vega-Lite, from the ``vl-convert-python`` package (the ``chaosnet[report]`` extra).

It ships Vega, Vega-Lite and vega-embed as one JavaScript bundle (about 0.9 MB,
inlined into every page: no network needed to open one) and renders the same
spec to PNG offline, without a browser.

The package runs a JavaScript engine of its own (threads, event fds), so it is
only ever loaded in a child process: a test whose failure report draws a picture
must not be charged with those as leaks, and a CLI run does not keep them. The
bundle takes the package several seconds to build, so it is kept in a cache
file per package version (``$XDG_CACHE_HOME/chaosnet``, default ``~/.cache/chaosnet``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from chaosnet.errors import ChaosnetError

PACKAGE = "vl-convert-python"
INSTALL_HINT = "pip install 'chaosnet[report]'"
RENDER_TIMEOUT_S = 120.0  # the first use of the engine takes seconds; a stuck one, forever


def version() -> str:
    """The installed package's version; a clear error when it is not installed."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        raise ChaosnetError(
            f"HTML and PNG reports need the {PACKAGE} package: {INSTALL_HINT}"
        ) from None


def require() -> None:
    """Fail before a run, not after it, when the report cannot be drawn."""
    version()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chaosnet"


@cache
def javascript_bundle() -> str:
    """vega-embed, Vega and Vega-Lite as one script defining ``window.vegaEmbed``."""
    path = cache_dir() / f"vega-bundle-{version()}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    bundle = _child("bundle", b"").decode("utf-8")
    _write_atomically(path, bundle)
    return bundle


def to_png(spec: dict[str, Any], *, scale: float = 1.0) -> bytes:
    """The chart as a PNG, rendered offline (no browser)."""
    request = json.dumps({"spec": spec, "scale": scale}).encode()
    return _child("png", request)


def _child(task: str, request: bytes) -> bytes:
    version()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "chaosnet.picture.vega", task],
            input=request,
            capture_output=True,
            timeout=RENDER_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ChaosnetError(f"{PACKAGE} did not finish ({task}) in {RENDER_TIMEOUT_S:g}s") from None
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ChaosnetError(f"{PACKAGE} failed ({task}): {error[0]}")
    return done.stdout


def _write_atomically(path: Path, text: str) -> None:
    """Best effort: a cache that cannot be written costs time, not the report."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp"
        ) as out:
            out.write(text)
        os.replace(out.name, path)
    except OSError:
        pass


def _main(task: str) -> None:
    """The child: ``bundle`` writes the script, ``png`` reads {spec, scale} and writes a PNG."""
    import vl_convert

    if task == "bundle":
        # No snippet: the libraries themselves, as window.vegaEmbed (the stub says str,
        # the function's default is None).
        sys.stdout.write(vl_convert.javascript_bundle(None))  # type: ignore[arg-type]
        return
    request = json.loads(sys.stdin.buffer.read())
    png: bytes = vl_convert.vegalite_to_png(request["spec"], scale=request["scale"])
    sys.stdout.buffer.write(png)


if __name__ == "__main__":
    _main(sys.argv[1])
