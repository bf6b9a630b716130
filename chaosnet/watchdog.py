"""What is watched while a client runs: a hang (and where it is stuck), and hammering.

The scenario runner watches its workload thread request by request
(``max_request_time``); the pytest plugin watches each test that uses chaosnet
fixtures (``--chaosnet-hang-timeout``). Both report the stuck thread's stack:
its innermost frame outside the standard library and chaosnet, then the frames.
The plugin also warns when a test opened connections through one proxy faster
than ``--chaosnet-hammer-rate`` per second (a retry loop without backoff).
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from contextlib import suppress

from chaosnet.leaks import frames_of, render_site

STACK_FRAMES = 10


def stuck_at(thread: threading.Thread) -> tuple[str, str]:
    """Where ``thread`` is now: ``"stuck at file:line in function"``, and its stack
    (innermost last, at most STACK_FRAMES frames)."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return "(it has ended)", ""
    site = render_site(frames_of(frame), verb="stuck")
    stack = "".join(traceback.format_stack(frame)[-STACK_FRAMES:])
    return (site[0] if site else "stuck (where is unknown)"), stack.rstrip("\n")


class HangWatch:
    """Fires once when ``thread`` is still busy ``limit`` seconds after ``start``.

    It records where the thread is (``where``, ``stack``), then calls ``unblock``
    (the plugin disables the test's proxies, so a client blocked on one of them
    gets its error and the test ends). ``stop`` ends the watch; the watcher thread
    is gone when it returns.
    """

    def __init__(
        self, limit: float, unblock: Callable[[], None], thread: threading.Thread | None = None
    ) -> None:
        self.limit = limit
        self.thread = thread or threading.current_thread()
        self.unblock = unblock
        self.where: str | None = None
        self.stack: str | None = None
        self._done = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch, name="chaosnet-hang-watch", daemon=True
        )

    @property
    def fired(self) -> bool:
        return self.where is not None

    @property
    def watcher(self) -> threading.Thread:
        return self._watcher

    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        self._done.set()
        if self._watcher.is_alive() and self._watcher is not threading.current_thread():
            self._watcher.join()

    def describe(self) -> str:
        return (
            f"the test was still running after {self.limit:g}s (--chaosnet-hang-timeout); "
            f"its thread {self.thread.name!r} was {self.where}; its proxies were disabled "
            f"to unblock it:\n{self.stack}"
        )

    def _watch(self) -> None:
        if self._done.wait(self.limit):
            return
        self.where, self.stack = stuck_at(self.thread)
        with suppress(Exception):  # a failing unblock must not hide the report
            self.unblock()


class HammeringWarning(UserWarning):
    """A client opened connections through one proxy faster than the configured rate."""


def peak_rate(opens: Sequence[float], window: float = 1.0) -> int:
    """The most of ``opens`` (sorted times, seconds) that fall within ``window`` seconds."""
    most, start = 0, 0
    for end, opened in enumerate(opens):
        while opened - opens[start] > window:
            start += 1
        most = max(most, end - start + 1)
    return most


def hammering(proxy: str, opens: Sequence[float], limit: float) -> str | None:
    """A warning's text when more than ``limit`` connections opened within one second."""
    most = peak_rate(sorted(opens))
    if limit <= 0 or most <= limit:
        return None
    return (
        f"proxy {proxy}: {most} connections opened within one second (more than "
        f"--chaosnet-hammer-rate {limit:g}/s): a retry loop without backoff hammers the server"
    )
