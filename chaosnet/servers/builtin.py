"""The builtin servers (echo, framed_echo, kv, udp_echo, http), started like any server.

Each runs as ``python -m chaosnet.servers KIND`` on port 0 and reports the
port it got; a restart passes that port back, so it returns on the same address.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict, Unpack

from chaosnet.servers.builtin_runtime import READY_WORDS
from chaosnet.servers.lifecycle import DEFAULT_READY_TIMEOUT_S
from chaosnet.servers.process import ServerProcess
from chaosnet.servers.readiness import LogLine

BUILTIN_KINDS = ("echo", "framed_echo", "kv", "udp_echo", "http")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def ready_line(kind: str) -> LogLine:
    """The readiness line of a builtin server, capturing its address."""
    return LogLine(
        rf"^chaosnet-server {kind} {READY_WORDS} \[?(?P<host>[^\]\s]+?)\]?:(?P<port>\d+)$"
    )


def builtin_server(
    kind: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    dedupe: bool = False,
    max_frame_size: int | None = None,
    verbose: bool = False,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
    log_path: str | os.PathLike[str] | None = None,
) -> ServerProcess:
    """A builtin server, configured but not started (``.start()`` it, or use ``with``)."""
    if kind not in BUILTIN_KINDS:
        raise ValueError(f"unknown builtin server {kind!r}: expected one of {BUILTIN_KINDS}")
    if dedupe and kind != "kv":
        raise ValueError(f"dedupe is an option of the kv server, not of {kind!r}")
    if max_frame_size is not None and kind in ("echo", "udp_echo", "http"):
        raise ValueError(f"max_frame_size is an option of framed servers, not of {kind!r}")
    options: list[str] = ["--host", host]
    if dedupe:
        options.append("--dedupe")
    if max_frame_size is not None:
        options += ["--max-frame-size", str(max_frame_size)]
    if verbose:
        options.append("--verbose")

    def argv(bind_port: int) -> list[str]:
        return [sys.executable, "-m", "chaosnet.servers", kind, *options, "--port", str(bind_port)]

    return ServerProcess(
        argv,
        name=name or kind,
        address=(host, port) if port else None,
        ready=ready_line(kind),
        env={**(env or {}), "PYTHONPATH": _python_path(env)},
        ready_timeout=ready_timeout,
        log_path=log_path,
    )


class BuiltinOptions(TypedDict, total=False):
    host: str
    port: int
    dedupe: bool
    max_frame_size: int | None
    verbose: bool
    name: str | None
    env: Mapping[str, str] | None
    ready_timeout: float
    log_path: str | os.PathLike[str] | None


def start_builtin(kind: str, **options: Unpack[BuiltinOptions]) -> ServerProcess:
    """Start a builtin server and return it once it listens; see ``builtin_server``."""
    return builtin_server(kind, **options).start()


def _python_path(env: Mapping[str, str] | None) -> str:
    """chaosnet importable in the child even when it runs from a source tree."""
    current = (env or {}).get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    return os.pathsep.join(p for p in (_PACKAGE_ROOT, current) if p)
