"""Vega-Lite, from the ``vl-convert-python`` package (the ``chaosnet[report]`` extra).

It ships Vega, Vega-Lite and vega-embed as one JavaScript bundle (about 0.9 MB,
inlined into every page: no network needed to open one) and renders the same
spec to PNG offline, without a browser. Building the bundle takes the package
several seconds, so it is kept in a cache file per package version
(``$XDG_CACHE_HOME/chaosnet``, default ``~/.cache/chaosnet``).
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from chaosnet.errors import ChaosnetError

INSTALL_HINT = "pip install 'chaosnet[report]'"


def require() -> None:
    """Fail before a run, not after it, when the report cannot be drawn."""
    _vl_convert()


def _vl_convert() -> ModuleType:
    try:
        import vl_convert
    except ImportError:
        raise ChaosnetError(
            f"HTML and PNG reports need the vl-convert-python package: {INSTALL_HINT}"
        ) from None
    return vl_convert


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chaosnet"


@cache
def javascript_bundle() -> str:
    """vega-embed, Vega and Vega-Lite as one script defining ``window.vegaEmbed``."""
    vl_convert = _vl_convert()
    path = cache_dir() / f"vega-bundle-{vl_convert.__version__}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    bundle: str = vl_convert.javascript_bundle()
    _write_atomically(path, bundle)
    return bundle


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


def to_png(spec: dict[str, Any], *, scale: float = 1.0) -> bytes:
    """The chart as a PNG, rendered offline (no browser)."""
    png: bytes = _vl_convert().vegalite_to_png(spec, scale=scale)
    return png
