"""``ServerLog``: a real server's output in a local file that outlives it, for failure reports.

A process writes its stdout and stderr straight into the file; a container's
output is copied in from the engine by ``refresh`` before every read. chaosnet
adds lines of its own (``mark``: starting, stopped), so a restart or a stop
reads clearly in a report. The file is kept after the server stops; one given
no path lives in a per-process temporary folder, ``chaosnet-servers-<pid>-*``,
removed at interpreter exit. A run killed before its exit (SIGKILL, or a SIGTERM
nothing handled) cannot remove its folder, so the next process that makes one
removes those whose process is gone, as ``reap_orphans`` does for containers.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

LOG_TAIL_LINES = 20
LOG_DIR_PREFIX = "chaosnet-servers-"

_log_dir: Path | None = None
_log_dir_lock = threading.Lock()


class ServerLog:
    """The log file of the server ``name``; created on first use."""

    def __init__(self, name: str, path: str | os.PathLike[str] | None = None) -> None:
        self.name = name
        self._path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        #: Brings the file up to date before a read (a container's engine-side output).
        self.refresh: Callable[[], None] | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = new_log_path(self.name)
        return self._path

    def size(self) -> int:
        """The file's size as it stands (no refresh): where a new start's output begins."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def position(self) -> int:
        """The log's current size: pass it to ``text(since=...)`` later to get what a
        session-long server wrote during one test only."""
        self._refresh()
        return self.size()

    def read(self, since: int = 0) -> bytes:
        """The bytes from ``since`` on, brought up to date first."""
        self._refresh()
        try:
            with self.path.open("rb") as log:
                log.seek(since)
                return log.read()
        except FileNotFoundError:
            return b""

    def text(self, since: int = 0) -> str:
        """The log (the server's stdout and stderr, with our lines), from byte ``since`` on."""
        return self.read(since).decode(errors="replace")

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def append(self, data: bytes) -> None:
        with self._lock, self.path.open("ab") as log:
            log.write(data)

    def mark(self, event: str) -> None:
        """A line of our own, so a restart or a stop reads clearly in a report."""
        stamp = time.strftime("%H:%M:%S")
        self.append(f"[chaosnet {stamp}] {self.name}: {event}\n".encode())

    def _refresh(self) -> None:
        if self.refresh is not None:
            self.refresh()


def new_log_path(name: str) -> Path:
    """A fresh file for ``name`` in this process's temporary log folder."""
    global _log_dir
    with _log_dir_lock:
        if _log_dir is None:
            reap_dead_log_dirs()
            _log_dir = Path(tempfile.mkdtemp(prefix=f"{LOG_DIR_PREFIX}{os.getpid()}-"))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        handle, path = tempfile.mkstemp(prefix=f"{safe}-", suffix=".log", dir=_log_dir)
        os.close(handle)
        return Path(path)


def reap_dead_log_dirs(parent: Path | None = None) -> list[Path]:
    """Remove the log folders of processes that no longer exist; the folders removed."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(f"{LOG_DIR_PREFIX}*-*"):
        pid_text = folder.name.removeprefix(LOG_DIR_PREFIX).split("-", 1)[0]
        if pid_text.isascii() and pid_text.isdigit() and not _alive(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


def _remove_default_logs() -> None:
    """Default logs go at interpreter exit (pass a path to keep one, as the pytest plugin
    does under its ``tmp_path``); registered first, so it runs after the servers stop."""
    if _log_dir is not None:
        shutil.rmtree(_log_dir, ignore_errors=True)


atexit.register(_remove_default_logs)
