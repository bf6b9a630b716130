"""One timer queue for the whole engine, woken by a ``timerfd`` where Linux has one.

Every timed toxic (latency, bandwidth pacing, slicer delays, slow_close, timeout,
reset_peer, limit_time) schedules here instead of creating a loop timer per
chunk. The queue is a heap of due times (``time.monotonic()`` seconds); equal
times run in the order they were scheduled. One alarm is armed for the earliest:

- :class:`TimerfdAlarm` (Linux): a ``timerfd`` on ``CLOCK_MONOTONIC`` -- the clock
  ``time.monotonic()`` reads -- armed at the absolute due time with nanosecond
  resolution and watched by the loop with ``add_reader``. It never fires early,
  so a timer runs at its due time, not before. Python 3.11 has no
  ``os.timerfd_create`` (3.13 has), hence ctypes.
- :class:`LoopAlarm` (elsewhere): the loop's own ``call_later``. uvloop rounds it
  to whole milliseconds and fires up to a millisecond early, so this alarm runs
  timers due within ``LOOP_SLACK_S`` and re-arms for the others.

A uvloop ``call_at`` fired between 1.1 ms early and 0.9-2.8 ms late for a 50 ms
timer; a timerfd 0.08 ms late at p50 and 0.28 ms at p99, never early (see
docs/performance.md). A pass runs the due timers for at most ``PASS_BUDGET_S``
and then lets the loop turn, so a burst of due timers cannot stall the control
API; the rest run on the next iteration.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop, TimerHandle

Callback = Callable[[], None]
ErrorSink = Callable[[BaseException], None]


class Guard(Protocol):
    """Runs a callback on behalf of its owner (a link: a failure resets that connection)."""

    def guarded(self, callback: Callback) -> None: ...


PASS_BUDGET_S = 0.001
LOOP_SLACK_S = 0.0005  # how early a LoopAlarm may run a timer: uvloop rounds to 1 ms
COMPACT_MIN = 256  # cancelled entries kept before the heap is rebuilt without them

_CLOCK_MONOTONIC = 1
_TFD_TIMER_ABSTIME = 1
_TFD_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # Linux defines the TFD_ flags as these
_TFD_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class Timer:
    """A scheduled callback; :meth:`cancel` is idempotent and a no-op once it ran."""

    __slots__ = ("callback", "guard", "queue")

    def __init__(self, queue: TimerQueue, callback: Callback, guard: Guard | None) -> None:
        self.queue = queue
        self.callback: Callback | None = callback
        self.guard = guard

    @property
    def pending(self) -> bool:
        return self.callback is not None

    def cancel(self) -> None:
        if self.callback is not None:
            self.callback = None
            self.queue._cancelled_one()


class Alarm(Protocol):
    """Wakes the queue at (or, within ``slack``, before) one due time."""

    slack: float

    def arm(self, when: float) -> None: ...

    def disarm(self) -> None: ...

    def close(self) -> None: ...


class TimerQueue:
    def __init__(
        self,
        loop: AbstractEventLoop,
        report: ErrorSink,
        alarm: Callable[[AbstractEventLoop, Callback], Alarm] | None = None,
    ) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._cancelled = 0
        self._armed_for: float | None = None
        self._running = False
        self._report = report
        self._alarm = (alarm or best_alarm)(loop, self._run)
        self.slack = self._alarm.slack

    @property
    def kind(self) -> str:
        return type(self._alarm).__name__

    def __len__(self) -> int:
        """Timers still to run (cancelled ones excluded)."""
        return len(self._heap) - self._cancelled

    def is_due(self, when: float) -> bool:
        """Whether a timer for ``when`` would run now."""
        return when <= time.monotonic() + self.slack

    def call_at(self, when: float, callback: Callback, guard: Guard | None = None) -> Timer:
        """Run ``callback`` at ``when`` (``time.monotonic()`` seconds), after earlier timers.

        With ``guard``, ``guard.guarded(callback)`` runs instead (it handles failures).
        """
        timer = Timer(self, callback, guard)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        if not self._running and (self._armed_for is None or when < self._armed_for):
            self._arm(when)
        return timer

    def close(self) -> None:
        self._alarm.close()
        for _, _, timer in self._heap:
            timer.callback = None
        self._heap.clear()
        self._cancelled = 0

    # -- internals -------------------------------------------------------------------

    def _arm(self, when: float) -> None:
        self._armed_for = when
        self._alarm.arm(when)

    def _cancelled_one(self) -> None:
        self._cancelled += 1
        if self._cancelled > COMPACT_MIN and self._cancelled * 2 > len(self._heap):
            # In place: a pass in progress holds this very list.
            self._heap[:] = [entry for entry in self._heap if entry[2].callback is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def _run(self) -> None:
        """Run every timer due now (within the alarm's slack), then re-arm."""
        self._armed_for = None
        self._running = True
        heap = self._heap
        clock = time.monotonic
        started = clock()
        limit = started + self.slack
        try:
            while heap:
                when, _, timer = heap[0]
                callback = timer.callback
                if callback is None:
                    heapq.heappop(heap)
                    self._cancelled -= 1
                    continue
                if when > limit:
                    break
                if clock() - started > PASS_BUDGET_S:
                    break  # the rest on the next loop iteration (the alarm is in the past)
                heapq.heappop(heap)
                timer.callback = None
                try:
                    if timer.guard is None:
                        callback()
                    else:
                        timer.guard.guarded(callback)
                except Exception as exc:  # a callback's failure must not stop the others
                    self._report(exc)
        finally:
            self._running = False
            self._rearm()

    def _rearm(self) -> None:
        heap = self._heap
        while heap and heap[0][2].callback is None:
            heapq.heappop(heap)
            self._cancelled -= 1
        if heap:
            self._arm(heap[0][0])
        else:
            self._alarm.disarm()


# -- alarms ------------------------------------------------------------------------------


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class TimerfdAlarm:
    """A ``timerfd`` (CLOCK_MONOTONIC, absolute times) watched by the event loop."""

    slack = 0.0

    def __init__(self, loop: AbstractEventLoop, fire: Callback) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        )
        create = libc.timerfd_create
        create.argtypes = (ctypes.c_int, ctypes.c_int)
        fd = create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"timerfd_create: {os.strerror(code)}")
        self._fd = fd
        self._spec = _Itimerspec()
        self._spec_ref = ctypes.byref(self._spec)
        self._loop = loop
        try:
            # No read() of the expiration count: the queue re-arms (or disarms) after every
            # pass, and timerfd_settime clears it, so the descriptor is not readable again
            # until the next due time. One syscall less per wake-up.
            loop.add_reader(fd, fire)
        except BaseException:
            os.close(fd)
            raise

    def arm(self, when: float) -> None:
        seconds = int(when)
        value = self._spec.it_value
        value.tv_sec = seconds
        value.tv_nsec = max(1, int((when - seconds) * 1e9))  # 0/0 would disarm it
        self._set()

    def disarm(self) -> None:
        value = self._spec.it_value
        value.tv_sec = 0
        value.tv_nsec = 0
        self._set()

    def _set(self) -> None:
        if self._fd < 0:
            return  # closed with the engine: nothing runs any more
        if self._settime(self._fd, _TFD_TIMER_ABSTIME, self._spec_ref, None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"timerfd_settime: {os.strerror(code)}")

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1


class LoopAlarm:
    """The event loop's own timer: portable, millisecond-grained under uvloop."""

    slack = LOOP_SLACK_S

    def __init__(self, loop: AbstractEventLoop, fire: Callback) -> None:
        self._loop = loop
        self._fire = fire
        self._handle: TimerHandle | None = None

    def arm(self, when: float) -> None:
        self.disarm()
        self._handle = self._loop.call_later(max(0.0, when - time.monotonic()), self._on_timer)

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _on_timer(self) -> None:
        self._handle = None
        self._fire()

    def close(self) -> None:
        self.disarm()


def best_alarm(loop: AbstractEventLoop, fire: Callback) -> Alarm:
    """A timerfd on Linux; the loop's timer where there is none (or it cannot be made)."""
    if sys.platform.startswith("linux"):
        try:
            return TimerfdAlarm(loop, fire)
        except (OSError, AttributeError, NotImplementedError):
            pass  # no timerfd here, or a loop without add_reader
    return LoopAlarm(loop, fire)
