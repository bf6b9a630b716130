"""Start a server process that cannot outlive us, and signal its process group.

Each server gets its own session (``start_new_session``: ``setsid`` runs in C in
the child, so it is safe with threads) and so its own process group: stopping
it reaches the grandchildren too. Linux's ``PR_SET_PDEATHSIG`` kills the server
when its *spawning thread* dies, so we spawn either from the main thread, which
lives as long as the process, or from one long-lived daemon thread kept for the
purpose: a server started from a short-lived worker thread must not die with it.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO

from chaosnet import leaks

PDEATHSIG_EXEC = Path(__file__).with_name("pdeathsig_exec.py")
SPAWN_TIMEOUT_S = 30.0
_HAS_PDEATHSIG = sys.platform.startswith("linux")


def resolve_program(program: str, env: Mapping[str, str], cwd: Path | None) -> str | None:
    """The executable ``program`` names, as exec will find it (a relative path is relative
    to the server's ``cwd``, a bare name is looked up on its PATH); None if missing.
    """
    if os.sep in program:
        path = Path(cwd or ".", program)
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(program, path=env.get("PATH", os.defpath))


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None, log: BinaryIO
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, stdout and stderr to ``log``, dying with this process."""
    wrapped = list(argv)
    if _HAS_PDEATHSIG:
        wrapped = [sys.executable, "-I", "-S", str(PDEATHSIG_EXEC), str(os.getpid()), *argv]

    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            wrapped,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )

    if threading.current_thread() is threading.main_thread():
        return popen()
    return _spawner().run(popen)


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to every process in the group; False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies or a reused id we do not own
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process is left in the group (zombies count until reaped)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class _SpawnerThread:
    """One daemon thread that outlives any caller thread and does their Popen calls."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="chaosnet-spawner", daemon=True)
        leaks.long_lived.add(self._thread)
        self._thread.start()

    def run(self, popen: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        done: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((popen, done))
        return done.result(timeout=SPAWN_TIMEOUT_S)

    def _serve(self) -> None:
        while True:
            popen, done = self._jobs.get()
            try:
                done.set_result(popen())
            except BaseException as exc:
                done.set_exception(exc)


_spawner_lock = threading.Lock()
_spawner_instance: _SpawnerThread | None = None


def _spawner() -> _SpawnerThread:
    global _spawner_instance
    with _spawner_lock:
        if _spawner_instance is None:
            _spawner_instance = _SpawnerThread()
        return _spawner_instance
