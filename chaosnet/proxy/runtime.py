"""What every part of the engine shares, in one object handed down explicitly.

The engine makes one :class:`Runtime` and gives it to each proxy, which gives it
to each link, which gives it to its two directions; nothing reaches up through
its parents for it. It holds the event loop, the data plane's poller, the timer
queue for toxics, the engine-wide buffer budget and read buffer, the server's
seed, the metrics counters, the connection-log size, and the error report.

The :class:`ErrorReport` is the one thread-safe door: an exception that escapes
engine internals (a toxic raised, a callback failed) is kept there until the
embedding test harness drains it, and optionally echoed to stderr.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from dataclasses import dataclass

from chaosnet.proxy.budget import DEFAULT_LIMIT, MAX_READ, READ_SIZE, BufferBudget
from chaosnet.proxy.connlog import DEFAULT_HISTORY
from chaosnet.proxy.counters import Counters
from chaosnet.proxy.poller import Poller
from chaosnet.proxy.timers import TimerQueue
from chaosnet.seeds import fresh_seed

MAX_KEPT_ERRORS = 100


class ErrorReport:
    """Exceptions that escaped the engine, kept (at most ``MAX_KEPT_ERRORS``) until taken."""

    def __init__(self, echo: bool = False) -> None:
        self._echo = echo
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def report(self, exc: BaseException) -> None:
        with self._lock:
            if len(self._errors) < MAX_KEPT_ERRORS:
                self._errors.append(exc)
        if self._echo:
            print(f"chaosnet serve: internal error: {exc!r}", file=sys.stderr, flush=True)

    def take(self) -> list[BaseException]:
        with self._lock:
            errors, self._errors = self._errors, []
        return errors


class ReadBuffer:
    """The engine's one read buffer; the loop thread consumes it before reading again."""

    def __init__(self) -> None:
        self.array = bytearray(MAX_READ)  # framers search it in place (find, no copy)
        self.view = memoryview(self.array)
        self.small = self.view[:READ_SIZE]


@dataclass(frozen=True, eq=False)
class Runtime:
    loop: asyncio.AbstractEventLoop
    seed: int
    poller: Poller
    timers: TimerQueue
    budget: BufferBudget
    buffer: ReadBuffer
    counters: Counters
    errors: ErrorReport
    history: int = DEFAULT_HISTORY  # records each proxy's connection log keeps

    @classmethod
    def create(
        cls,
        loop: asyncio.AbstractEventLoop,
        *,
        seed: int | None = None,
        history: int = DEFAULT_HISTORY,
        buffer_limit: int = DEFAULT_LIMIT,
        echo_errors: bool = False,
    ) -> Runtime:
        """A runtime on ``loop``; a fresh seed when none is given."""
        errors = ErrorReport(echo_errors)
        return cls(
            loop=loop,
            seed=fresh_seed() if seed is None else seed,
            poller=Poller(loop),
            timers=TimerQueue(loop, errors.report),
            budget=BufferBudget(buffer_limit),
            buffer=ReadBuffer(),
            counters=Counters(),
            errors=errors,
            history=history,
        )

    def report(self, exc: BaseException) -> None:
        self.errors.report(exc)

    def close(self) -> None:
        """Release the poller's epoll set and the timer queue's alarm."""
        self.poller.close()
        self.timers.close()
