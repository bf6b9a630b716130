"""Locate (or install) the external tools the test-suite drives for real.

The real Toxiproxy server and CLI are installed with ``go install`` at a pinned
version into ``.tools/bin`` (git-ignored). Docker needs a running engine.
When a tool is missing the caller skips with a reason naming it, unless
``CHAOSNET_REQUIRE_ALL=1`` (set by CI), where a missing tool is a failure.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOXIPROXY_VERSION = "2.12.0"
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = ROOT / ".tools" / "bin"
INSTALL_TIMEOUT_S = 600


def require_all() -> bool:
    return os.environ.get("CHAOSNET_REQUIRE_ALL", "") not in ("", "0")


def missing(reason: str) -> None:
    """Skip locally; fail in CI, where every backend must be exercised."""
    if require_all():
        pytest.fail(f"required tool missing (CHAOSNET_REQUIRE_ALL=1): {reason}", pytrace=False)
    pytest.skip(reason)


def toxiproxy_binaries() -> tuple[Path, Path] | str:
    """Return (server, cli) paths, installing them once; or the reason they are missing."""
    server, cli = TOOLS_BIN / "toxiproxy-server", TOOLS_BIN / "toxiproxy-cli"
    if server.exists() and cli.exists():
        return server, cli
    go = shutil.which("go")
    if go is None:
        return "toxiproxy-server not in .tools/bin and no Go toolchain to install it"
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    with open(TOOLS_BIN.parent / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers install once
        if not (server.exists() and cli.exists()):
            error = _go_install(go)
            if error:
                return error
    return server, cli


def toxiproxy_ldflags() -> str:
    """The version stamp of the real server (``toxiproxy.Version``); also used for its suite."""
    return f"-X {TOXIPROXY_MODULE}.Version={TOXIPROXY_VERSION}"


def _go_install(go: str) -> str | None:
    staging = TOOLS_BIN.parent / "gobin"
    env = dict(os.environ, GOBIN=str(staging), CGO_ENABLED="0")
    ldflags = toxiproxy_ldflags()
    packages = [f"{TOXIPROXY_MODULE}/cmd/{cmd}@v{TOXIPROXY_VERSION}" for cmd in ("server", "cli")]
    try:
        subprocess.run(
            [go, "install", f"-ldflags={ldflags}", *packages],
            env=env,
            check=True,
            capture_output=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", b"") or b""
        return f"go install of Toxiproxy v{TOXIPROXY_VERSION} failed: {output.decode()[-500:]}"
    shutil.move(staging / "server", TOOLS_BIN / "toxiproxy-server")
    shutil.move(staging / "cli", TOOLS_BIN / "toxiproxy-cli")
    return None
