"""SIGTERM handled as Ctrl-C is: an exception in the main thread, so cleanup runs.

Python turns SIGINT into :class:`KeyboardInterrupt`, which unwinds every ``finally``
(servers stopped, proxies removed); SIGTERM's default kills the process on the
spot, leaving servers and folders behind. Inside :func:`sigterm_interrupts`,
SIGTERM raises :class:`Interrupted` (a ``KeyboardInterrupt``) instead, once:
a second SIGTERM during the cleanup is ignored so the cleanup finishes. The
exit status of an interrupted command is 128 + the signal (130, 143), as a shell
reports a process killed by it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGINT_STATUS = 128 + signal.SIGINT


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def exit_status(exc: KeyboardInterrupt) -> int:
    return 128 + exc.signum if isinstance(exc, Interrupted) else SIGINT_STATUS


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within: SIGTERM raises :class:`Interrupted` in the main thread (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        signal.signal(signum, signal.SIG_IGN)  # once: let the cleanup finish
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
