"""Retry policies: backoff with jitter, a deadline budget, error classification.

A :class:`RetryPolicy` is configuration only: share it between calls and threads (every
retried call gets its own run state; a seeded policy shares one random sequence).
Three shapes, each sync and async::

    policy = RetryPolicy(attempts=5, deadline=3.0)

    @policy                                   # decorator (sync or async function)
    def fetch() -> bytes: ...

    policy.call(fetch)                        # caller
    await policy.acall(afetch)

    for attempt in policy.retrying():         # attempt loop (async: ``async for`` over
        with attempt:                         # ``policy.aretrying()``)
            attempt.endpoint = ("127.0.0.1", 4000)
            sock.settimeout(attempt.remaining)
            ...

Rules:

- Backoff: ``"full_jitter"`` (default; AWS "Exponential Backoff and Jitter": a uniform
  draw in ``[0, min(cap, initial * multiplier**n)]`` where ``n`` counts the waits so
  far), ``"decorrelated_jitter"`` (``min(cap, uniform(initial, 3 * previous))``),
  ``"exponential"`` (no jitter) or ``"constant"`` (``initial`` every time).
- ``deadline`` is a budget in seconds on a monotonic clock, from the start of the first
  attempt. No wait starts that would reach it: such a wait is skipped, the next attempt
  starts at once with the whole remaining budget, and it is the last one (a delay the
  classifier asked for is not skipped: the policy gives up instead). Inside an
  attempt, ``attempt.remaining`` is the budget left (``None`` without a deadline), for
  socket timeouts. ``acall`` (and the async decorator) also enforces it with
  ``asyncio.timeout``; sync code cannot be interrupted, so it must use the budget.
- Classification (``retry_on``): exception types, or a predicate returning ``True``
  (retry with backoff), ``False`` (give up at once) or a number (retry after exactly
  that many seconds, e.g. a server's Retry-After). The default is :func:`is_transient`.
  Only ``Exception`` is ever caught: ``CancelledError``, ``KeyboardInterrupt`` and
  ``SystemExit`` pass straight through, and :class:`UnsafeToRetry` is never retried
  whatever the classification says.
- An attempt may set ``attempt.endpoint`` (recorded) and ``attempt.skip_backoff`` (the
  next attempt goes elsewhere, e.g. a fallback endpoint: no wait before it).
- A non-retryable error propagates unchanged (with a note listing the earlier
  attempts, if any). Running out of attempts or time raises :class:`RetryError`, whose
  ``.attempts`` records every attempt; its ``__cause__`` is the last error.
- Each retry is logged at WARNING and each give-up at ERROR on the ``chaosnet.retry``
  logger; ``on_retry`` / ``on_giveup`` hooks get a :class:`RetryDetails`.
- ``clock``, ``sleep``, ``async_sleep`` and ``rng`` are injectable; ``seed`` makes the
  jitter sequence reproducible. :func:`no_waits` turns every wait off (for test suites).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import inspect
import logging
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, NoReturn, ParamSpec, TypeVar, overload

from chaosnet.address import Address, format_address
from chaosnet.picklable import Picklable

__all__ = [
    "Attempt",
    "AttemptRecord",
    "Backoff",
    "Endpoint",
    "RetryDetails",
    "RetryError",
    "RetryPolicy",
    "UnsafeToRetry",
    "is_transient",
    "no_waits",
    "waits_disabled",
]

P = ParamSpec("P")
T = TypeVar("T")

Endpoint = Address  # the name it had before ``chaosnet.address``; kept for one release
Backoff = Literal["full_jitter", "decorrelated_jitter", "exponential", "constant"]
Classifier = Callable[[Exception], bool | float]
RetryOn = type[Exception] | tuple[type[Exception], ...] | Classifier
Hook = Callable[["RetryDetails"], object]

DEFAULT_CAP = 2.0  # seconds; the default cap is this, or ``initial`` if larger
BACKOFFS: tuple[Backoff, ...] = ("full_jitter", "decorrelated_jitter", "exponential", "constant")

log = logging.getLogger("chaosnet.retry")


# --- classification -------------------------------------------------------------------

_TRANSIENT_TYPES = (
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    TimeoutError,  # also socket.timeout and asyncio.TimeoutError
    asyncio.IncompleteReadError,  # a stream cut short, like IncompleteFrame
)
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
    }
)


class UnsafeToRetry(Exception):
    """Base for errors that say retrying would be wrong; no policy ever retries them."""

    transient = False


def is_transient(exc: BaseException) -> bool:
    """Would trying again (on a new connection) plausibly succeed?

    True for refused/reset/aborted connections, broken pipes, timeouts, a truncated
    frame (``IncompleteFrame``, ``asyncio.IncompleteReadError``), a connection closed
    mid-request (``ConnectionClosed``) and unreachable networks. False for
    everything else: ``FrameTooLarge``, argument and permission errors, unknown host
    names, and never for ``CancelledError``, ``KeyboardInterrupt`` or ``SystemExit``.
    An exception class may state its own answer with a ``transient = True/False``
    class attribute.
    """
    if not isinstance(exc, Exception):
        return False
    stated = getattr(exc, "transient", None)
    if isinstance(stated, bool):
        return stated
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, socket.gaierror):
        return exc.errno == socket.EAI_AGAIN  # "temporary failure in name resolution"
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def _classifier(retry_on: RetryOn) -> Classifier:
    if isinstance(retry_on, tuple | type):
        types = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        for kind in types:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise TypeError(f"retry_on: {kind!r} is not an exception type")

        def matches(exc: Exception) -> bool:
            return isinstance(exc, types)

        return matches
    if callable(retry_on):
        return retry_on
    raise TypeError(f"retry_on must be exception types or a predicate, got {retry_on!r}")


# --- the testing switch ---------------------------------------------------------------

_no_waits_lock = threading.Lock()
_no_waits_depth = 0


@contextmanager
def no_waits() -> Iterator[None]:
    """Turn every retry wait off while active, in every thread (for test suites).

    Nestable and thread-safe. Deadlines still count real time; only sleeps are skipped
    (attempt records show a wait of 0).
    """
    global _no_waits_depth
    with _no_waits_lock:
        _no_waits_depth += 1
    try:
        yield
    finally:
        with _no_waits_lock:
            _no_waits_depth -= 1


def waits_disabled() -> bool:
    """True while a :func:`no_waits` block is active anywhere in the process."""
    return _no_waits_depth > 0


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One finished (failed) attempt, as kept in :attr:`RetryError.attempts`."""

    number: int  # 1-based
    error: BaseException
    started_at: float  # policy clock
    duration: float  # seconds the attempt ran
    waited_before: float  # seconds slept before it
    waited_after: float  # seconds slept after it (0 for the last one)
    endpoint: Endpoint | None

    def describe(self, origin: float) -> str:
        where = f" {format_address(*self.endpoint)}" if self.endpoint else ""
        text = (
            f"#{self.number}{where} at +{self.started_at - origin:.3f}s "
            f"({self.duration:.3f}s): {type(self.error).__name__}: {self.error}"
        )
        return text + (f"; waited {self.waited_after:.3f}s" if self.waited_after else "")


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """What a hook learns about a retry (``giving_up`` False) or a give-up (True)."""

    name: str
    attempt: int  # number of the attempt that failed
    error: BaseException
    wait: float  # seconds until the next attempt (0 when giving up)
    elapsed: float  # since the first attempt started
    remaining: float | None  # deadline budget left, None without a deadline
    endpoint: Endpoint | None
    giving_up: bool
    attempts: tuple[AttemptRecord, ...]


class RetryError(Picklable, Exception):
    """Retrying gave up: attempts or time ran out. ``__cause__`` is the last error."""

    transient = False
    _init_fields = ("name", "reason", "attempts")

    def __init__(self, name: str, reason: str, attempts: Sequence[AttemptRecord]) -> None:
        self.name = name
        self.reason = reason
        self.attempts = list(attempts)
        origin = attempts[0].started_at if attempts else 0.0
        lines = [r.describe(origin) for r in attempts]
        super().__init__(
            f"{name}: gave up after {len(attempts)} attempt(s) ({reason})\n  " + "\n  ".join(lines)
        )

    @property
    def last_error(self) -> BaseException | None:
        return self.attempts[-1].error if self.attempts else None


# --- the policy -----------------------------------------------------------------------


def _hooks(value: Hook | Sequence[Hook] | None) -> tuple[Hook, ...]:
    if value is None:
        return ()
    if callable(value):
        return (value,)
    return tuple(value)


class RetryPolicy:
    """How to retry: how often, how long, how long to wait between, and on what."""

    __slots__ = (
        "_async_sleep",
        "_classify",
        "_clock",
        "_on_giveup",
        "_on_retry",
        "_rng",
        "_sleep",
        "attempts",
        "backoff",
        "cap",
        "deadline",
        "initial",
        "multiplier",
        "retry_on",
        "seed",
    )

    def __init__(
        self,
        attempts: int | None = 5,
        deadline: float | None = None,
        backoff: Backoff = "full_jitter",
        *,
        initial: float = 0.05,
        cap: float | None = None,
        multiplier: float = 2.0,
        retry_on: RetryOn = is_transient,
        on_retry: Hook | Sequence[Hook] | None = None,
        on_giveup: Hook | Sequence[Hook] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
        seed: int | None = None,
    ) -> None:
        if cap is None:
            cap = max(DEFAULT_CAP, initial)
        _validate(attempts, deadline, backoff, initial, cap, multiplier)
        if rng is not None and seed is not None:
            raise ValueError("pass either rng or seed, not both")
        self.attempts = attempts
        self.deadline = deadline
        self.backoff: Backoff = backoff
        self.initial = float(initial)
        self.cap = float(cap)
        self.multiplier = float(multiplier)
        self.retry_on = retry_on
        self.seed = seed
        self._classify = _classifier(retry_on)
        self._on_retry = _hooks(on_retry)
        self._on_giveup = _hooks(on_giveup)
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._rng = rng if rng is not None else random.Random(seed)

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(attempts={self.attempts}, deadline={self.deadline}, "
            f"backoff={self.backoff!r}, initial={self.initial}, cap={self.cap})"
        )

    def is_retryable(self, exc: BaseException) -> bool:
        """Would this policy retry ``exc`` (budget permitting)?"""
        return self._verdict(exc) is not False

    def _verdict(self, exc: BaseException) -> bool | float:
        if not isinstance(exc, Exception) or isinstance(exc, UnsafeToRetry):
            return False
        verdict = self._classify(exc)
        if isinstance(verdict, bool):
            return verdict
        if isinstance(verdict, int | float) and verdict >= 0:
            return float(verdict)
        raise TypeError(f"retry_on predicate returned {verdict!r}; expected a bool or a delay")

    # -- the three shapes --

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (sync or ``async def``) so every call is retried."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def retried_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(fn, *args, **kwargs)

            return retried_async

        clock = self._clock

        @functools.wraps(fn)
        def retried(*args: P.args, **kwargs: P.kwargs) -> Any:
            started = clock()
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                return self._call_again(exc, started, fn, *args, **kwargs)

        return retried

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``, retried."""
        started = self._clock()
        try:
            return fn(*args, **kwargs)  # the success path costs one clock read
        except Exception as exc:
            return self._call_again(exc, started, fn, *args, **kwargs)

    def _call_again(
        self,
        first: Exception,
        started: float,
        fn: Callable[P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """The retries after attempt 1 (started at ``started``) failed with ``first``."""
        for attempt in _Attempts(_Run(self, _name_of(fn), started), first_error=first):
            with attempt:
                return fn(*args, **kwargs)
        raise AssertionError("unreachable: the loop returns or raises")

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``await fn(*args, **kwargs)``, retried; the deadline also bounds each attempt."""
        started = self._clock()
        try:  # attempt 1 without the loop machinery: the success path stays cheap
            if self.deadline is None:
                return await fn(*args, **kwargs)
            async with asyncio.timeout(self.deadline):
                return await fn(*args, **kwargs)
        except Exception as exc:
            first = exc
        async for attempt in _AsyncAttempts(_Run(self, _name_of(fn), started), first):
            with attempt:
                remaining = attempt.remaining
                if remaining is None:
                    return await fn(*args, **kwargs)
                async with asyncio.timeout(remaining):
                    return await fn(*args, **kwargs)
        raise AssertionError("unreachable: the loop returns or raises")

    def retrying(self, name: str = "operation") -> _Attempts:
        """Attempt loop: ``for attempt in policy.retrying(): with attempt: ...``."""
        return _Attempts(_Run(self, name, self._clock()))

    def aretrying(self, name: str = "operation") -> _AsyncAttempts:
        """Async attempt loop: ``async for attempt in policy.aretrying(): with attempt: ...``."""
        return _AsyncAttempts(_Run(self, name, self._clock()))

    # -- backoff --

    def _backoff(self, waits: int, previous: float) -> float:
        """The wait before retry number ``waits + 1``, ``previous`` being the last wait."""
        kind = self.backoff
        if kind == "constant":
            return self.initial
        if kind == "decorrelated_jitter":
            upper = max(self.initial, 3.0 * (previous or self.initial))
            return min(self.cap, self._rng.uniform(self.initial, upper))
        ceiling = min(self.cap, self.initial * self.multiplier ** min(waits, 64))
        if kind == "exponential":
            return ceiling
        return self._rng.uniform(0.0, ceiling)


def _validate(
    attempts: int | None,
    deadline: float | None,
    backoff: str,
    initial: float,
    cap: float,
    multiplier: float,
) -> None:
    if attempts is None and deadline is None:
        raise ValueError("RetryPolicy needs attempts or a deadline: unbounded retrying")
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int)):
        raise TypeError(f"attempts must be an int or None, got {attempts!r}")
    if attempts is not None and attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if deadline is not None and not deadline > 0:
        raise ValueError(f"deadline must be > 0 seconds, got {deadline!r}")
    if backoff not in BACKOFFS:
        raise ValueError(f"backoff must be one of {', '.join(BACKOFFS)}; got {backoff!r}")
    if not initial >= 0:
        raise ValueError(f"initial must be >= 0 seconds, got {initial!r}")
    if not cap >= initial:
        raise ValueError(f"cap ({cap!r}) must be >= initial ({initial!r})")
    if not multiplier >= 1:
        raise ValueError(f"multiplier must be >= 1, got {multiplier!r}")


def _name_of(fn: Callable[..., object]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


# --- one retried operation ------------------------------------------------------------


class Attempt:
    """One try inside an attempt loop; use it as ``with attempt:``."""

    __slots__ = ("_run", "_wait", "endpoint", "number", "skip_backoff", "started_at")

    def __init__(self, run: _Run, number: int, started_at: float) -> None:
        self._run = run
        self._wait: float | None = None  # set when the attempt failed and will be retried
        self.number = number
        self.started_at = started_at
        self.endpoint: Endpoint | None = None  # which endpoint this attempt hit
        # Set True when the next attempt goes elsewhere (failover): no backoff then.
        self.skip_backoff = False

    def __repr__(self) -> str:
        return f"<Attempt #{self.number} of {self._run.name}>"

    @property
    def remaining(self) -> float | None:
        """Seconds left of the policy's deadline (never negative), None without one."""
        deadline = self._run.deadline_at
        if deadline is None:
            return None
        return max(0.0, deadline - self._run.clock())

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        self._wait = self._run.failed(self, exc)  # raises RetryError when giving up
        return self._wait is not None


class _Run:
    """The state of one retried operation: its attempts so far and its budget."""

    __slots__ = (
        "attempt",
        "clock",
        "deadline_at",
        "final",
        "name",
        "policy",
        "previous_wait",
        "records",
        "started",
        "waited",
        "waits",
    )

    def __init__(self, policy: RetryPolicy, name: str, started: float) -> None:
        self.policy = policy
        self.name = name
        self.clock = policy._clock
        self.started = started
        self.deadline_at = None if policy.deadline is None else started + policy.deadline
        self.records: list[AttemptRecord] = []
        self.attempt: Attempt | None = None
        self.waits = 0  # backoff waits so far (the exponent)
        self.previous_wait = 0.0
        self.waited = 0.0  # the wait just before the current attempt
        self.final = False  # the current attempt is the last one the budget allows

    def begin(self, started: float | None = None) -> Attempt:
        number = len(self.records) + 1
        self.attempt = Attempt(self, number, self.clock() if started is None else started)
        return self.attempt

    def failed(self, attempt: Attempt, exc: Exception) -> float | None:
        """The wait before the next attempt, None to let ``exc`` propagate, or raise."""
        now = self.clock()
        verdict = self.policy._verdict(exc)
        if verdict is False:
            self._record(attempt, exc, now, 0.0)
            if len(self.records) > 1:
                exc.add_note(self._history("not retryable"))
            return None
        policy = self.policy
        if policy.attempts is not None and attempt.number >= policy.attempts:
            self._give_up(attempt, exc, now, f"all {policy.attempts} attempts failed")
        left = None if self.deadline_at is None else self.deadline_at - now
        if self.final or (left is not None and left <= 0):
            self._give_up(attempt, exc, now, f"the {policy.deadline}s deadline ran out")
        wait = self._next_wait(attempt, verdict)
        if left is not None and wait >= left:  # no wait may reach the deadline
            if verdict is not True:
                reason = f"the requested wait of {wait:.3f}s would cross the deadline"
                self._give_up(attempt, exc, now, reason)
            wait = 0.0  # skip the backoff: one last attempt, with all the budget left
            self.final = True
        if waits_disabled():
            wait = 0.0
        self._record(attempt, exc, now, wait)
        self.waited = wait
        self._report(False, attempt, exc, wait, now)
        return wait

    def _next_wait(self, attempt: Attempt, verdict: bool | float) -> float:
        if verdict is not True:
            return float(verdict)  # the classifier named the delay
        if attempt.skip_backoff:
            return 0.0
        wait = self.policy._backoff(self.waits, self.previous_wait)
        self.waits += 1
        self.previous_wait = wait
        return wait

    def _record(self, attempt: Attempt, exc: BaseException, now: float, wait: float) -> None:
        before = self.waited if self.records else 0.0
        self.records.append(
            AttemptRecord(
                attempt.number,
                exc,
                attempt.started_at,
                now - attempt.started_at,
                before,
                wait,
                attempt.endpoint,
            )
        )

    def _give_up(self, attempt: Attempt, exc: Exception, now: float, reason: str) -> NoReturn:
        self._record(attempt, exc, now, 0.0)
        error = RetryError(self.name, reason, self.records)
        self._report(True, attempt, exc, 0.0, now, error)
        raise error from exc

    def _history(self, reason: str) -> str:
        origin = self.records[0].started_at
        lines = [r.describe(origin) for r in self.records]
        return f"{self.name}: {reason}; attempts:\n  " + "\n  ".join(lines)

    def _report(
        self,
        giving_up: bool,
        attempt: Attempt,
        exc: Exception,
        wait: float,
        now: float,
        error: RetryError | None = None,
    ) -> None:
        remaining = None if self.deadline_at is None else max(0.0, self.deadline_at - now)
        details = RetryDetails(
            self.name,
            attempt.number,
            exc,
            wait,
            now - self.started,
            remaining,
            attempt.endpoint,
            giving_up,
            tuple(self.records),
        )
        if error is not None:
            log.error("%s", error)
        else:
            where = f" on {format_address(*attempt.endpoint)}" if attempt.endpoint else ""
            limit = self.policy.attempts or "-"
            log.warning(
                "%s: attempt %d/%s failed%s with %s: %s; retrying in %.3fs",
                self.name,
                attempt.number,
                limit,
                where,
                type(exc).__name__,
                exc,
                wait,
            )
        for hook in self.policy._on_giveup if giving_up else self.policy._on_retry:
            hook(details)


class _Attempts:
    """Sync attempt iterator: yields attempts until one succeeds (or a give-up raises)."""

    __slots__ = ("_first_error", "_run")

    def __init__(self, run: _Run, first_error: Exception | None = None) -> None:
        self._run = run
        self._first_error = first_error

    def __iter__(self) -> Iterator[Attempt]:
        run = self._run
        attempt = run.begin(run.started)
        if self._first_error is not None:  # a fast path already ran attempt 1
            wait = run.failed(attempt, self._first_error)
            if wait is None:
                raise self._first_error
            self._first_error = None
            attempt._wait = wait
        else:
            yield attempt
        while attempt._wait is not None:
            if attempt._wait > 0:
                run.policy._sleep(attempt._wait)
            attempt = run.begin()
            yield attempt


class _AsyncAttempts:
    """Async attempt iterator; waits with the policy's ``async_sleep``."""

    __slots__ = ("_first_error", "_next", "_run")

    def __init__(self, run: _Run, first_error: Exception | None = None) -> None:
        self._run = run
        self._first_error = first_error
        self._next: Attempt | None = None

    def __aiter__(self) -> _AsyncAttempts:
        return self

    async def __anext__(self) -> Attempt:
        run = self._run
        previous = run.attempt
        if previous is None:
            attempt = run.begin(run.started)
            if self._first_error is None:
                return attempt
            error, self._first_error = self._first_error, None
            attempt._wait = run.failed(attempt, error)
            if attempt._wait is None:
                raise error
            previous = attempt
        if previous._wait is None:
            raise StopAsyncIteration
        if previous._wait > 0:
            await run.policy._async_sleep(previous._wait)
        return run.begin()
