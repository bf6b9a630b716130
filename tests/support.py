"""Helpers every area of the test-suite shares: this process's descriptors, other processes' ends.

Each wait is bounded and woken by the kernel (a pidfd) where it can be, not a sleep loop.
"""

from __future__ import annotations

import os
import select

import psutil


def open_fds() -> dict[int, str]:
    """This process's open file descriptors and what each points to (not the one
    ``listdir`` used to read the list)."""
    fds: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the directory handle listdir used, closed meanwhile
            continue
    return fds


def gone(pid: int) -> bool:
    """The process has terminated (a zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """Wait, bounded, for ``pid`` to terminate (a zombie counts as gone): woken by a pidfd."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return gone(pid)
