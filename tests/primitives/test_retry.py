"""chaosnet.retry: classification, backoff, deadline budget, the three shapes, hooks."""

from __future__ import annotations

import asyncio
import errno
import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable

import pytest

from chaosnet.connection import ConnectionClosed, RequestMayHaveBeenDelivered
from chaosnet.framing import FrameTooLarge, IncompleteFrame
from chaosnet.retry import (
    RetryDetails,
    RetryError,
    RetryPolicy,
    UnsafeToRetry,
    is_transient,
    no_waits,
    waits_disabled,
)


class FakeTime:
    """An injectable clock whose sleeps only move time forward."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy_with(fake: FakeTime, **kwargs: object) -> RetryPolicy:
    return RetryPolicy(
        clock=fake.clock,
        sleep=fake.sleep,
        async_sleep=fake.async_sleep,
        **kwargs,  # type: ignore[arg-type]
    )


def failing(errors: list[BaseException], result: str = "ok") -> Callable[[], str]:
    """A function raising each of ``errors`` in turn, then returning ``result``."""
    pending = list(errors)

    def fn() -> str:
        if pending:
            raise pending.pop(0)
        return result

    return fn


# --- classification -------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(),
        ConnectionResetError(),
        ConnectionAbortedError(),
        BrokenPipeError(),
        TimeoutError(),
        socket.timeout(),  # noqa: UP041 - the alias users still catch
        IncompleteFrame("body", 10, b"abc"),
        asyncio.IncompleteReadError(b"ab", 10),
        ConnectionClosed("closed mid-request"),
        OSError(errno.EHOSTUNREACH, "no route"),
        socket.gaierror(socket.EAI_AGAIN, "temporary failure"),
    ],
    ids=type,
)
def test_transient_errors(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        FrameTooLarge(10, 5),
        ValueError("bad argument"),
        TypeError("bad argument"),
        PermissionError(errno.EACCES, "denied"),
        socket.gaierror(socket.EAI_NONAME, "name not known"),
        asyncio.CancelledError(),
        KeyboardInterrupt(),
        SystemExit(1),
        RetryError("x", "gave up", []),
        RequestMayHaveBeenDelivered(("127.0.0.1", 1), ConnectionResetError()),
        EOFError(),
    ],
    ids=type,
)
def test_permanent_errors(exc: BaseException) -> None:
    assert not is_transient(exc)


# --- backoff --------------------------------------------------------------------------


def test_full_jitter_is_the_default_and_stays_under_the_exponential_ceiling() -> None:
    fake = FakeTime()
    policy = policy_with(fake, attempts=8, initial=0.1, cap=0.5, seed=1)
    assert policy.backoff == "full_jitter"
    assert policy.call(failing([TimeoutError()] * 7)) == "ok"
    ceilings = [min(0.5, 0.1 * 2**k) for k in range(7)]
    assert len(fake.sleeps) == 7
    assert all(0 <= s <= c for s, c in zip(fake.sleeps, ceilings, strict=True))
    assert len(set(fake.sleeps)) == 7  # jittered, not constant


def test_a_seed_makes_jitter_reproducible() -> None:
    runs = []
    for seed in (7, 7, 8):
        fake = FakeTime()
        policy_with(fake, attempts=6, seed=seed).call(failing([TimeoutError()] * 5))
        runs.append(fake.sleeps)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_decorrelated_jitter_stays_between_initial_and_three_times_the_last_wait() -> None:
    fake = FakeTime()
    policy = policy_with(
        fake, attempts=10, backoff="decorrelated_jitter", initial=0.1, cap=1.0, seed=3
    )
    policy.call(failing([TimeoutError()] * 9))
    previous = 0.1
    for wait in fake.sleeps:
        assert 0.1 <= wait <= min(1.0, 3 * previous) + 1e-12
        previous = wait


def test_exponential_and_constant_backoff() -> None:
    fake = FakeTime()
    policy_with(fake, attempts=5, backoff="exponential", initial=0.1, cap=0.5).call(
        failing([TimeoutError()] * 4)
    )
    assert fake.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.5])
    fake = FakeTime()
    policy_with(fake, attempts=3, backoff="constant", initial=0.3).call(
        failing([TimeoutError()] * 2)
    )
    assert fake.sleeps == [0.3, 0.3]


# --- giving up ------------------------------------------------------------------------


def test_retry_error_records_every_attempt() -> None:
    fake = FakeTime()
    errors: list[BaseException] = [ConnectionRefusedError(111, "refused"), TimeoutError("slow")]
    errors.append(ConnectionResetError(104, "reset"))
    policy = policy_with(fake, attempts=3, backoff="exponential", initial=0.1)
    with pytest.raises(RetryError) as caught:
        policy.call(failing(errors))
    error = caught.value
    assert [r.number for r in error.attempts] == [1, 2, 3]
    assert [type(r.error) for r in error.attempts] == [type(e) for e in errors]
    assert [r.waited_before for r in error.attempts] == pytest.approx([0, 0.1, 0.2])
    assert [r.waited_after for r in error.attempts] == pytest.approx([0.1, 0.2, 0])
    assert [r.started_at - 1000 for r in error.attempts] == pytest.approx([0, 0.1, 0.3])
    assert error.__cause__ is errors[-1]
    assert error.last_error is errors[-1]
    assert "all 3 attempts failed" in str(error)
    for text in ("refused", "slow", "reset", "ConnectionRefusedError", "#3"):
        assert text in str(error)
    assert pickle.loads(pickle.dumps(error)).attempts[0].number == 1


def test_a_permanent_error_propagates_unchanged_with_the_history_as_a_note() -> None:
    fake = FakeTime()
    permanent = FrameTooLarge(100, 10)
    fn = failing([TimeoutError("slow"), permanent])
    with pytest.raises(FrameTooLarge) as caught:
        policy_with(fake, attempts=5).call(fn)
    assert caught.value is permanent
    assert "TimeoutError: slow" in caught.value.__notes__[0]
    assert len(fake.sleeps) == 1


def test_a_first_permanent_error_costs_one_call_and_no_note() -> None:
    calls = []

    def fn() -> None:
        calls.append(1)
        raise ValueError("bad argument")

    with pytest.raises(ValueError, match="bad argument") as caught:
        RetryPolicy(attempts=5).call(fn)
    assert calls == [1]
    assert not getattr(caught.value, "__notes__", None)


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(2), asyncio.CancelledError()])
def test_interrupts_are_never_retried_whatever_retry_on_says(exc: BaseException) -> None:
    calls = []

    def fn() -> None:
        calls.append(1)
        raise exc

    with pytest.raises(type(exc)):
        RetryPolicy(attempts=5, retry_on=lambda e: True).call(fn)
    assert calls == [1]


def test_unsafe_to_retry_is_never_retried_whatever_retry_on_says() -> None:
    unsafe = UnsafeToRetry("would duplicate a payment")
    with pytest.raises(UnsafeToRetry):
        RetryPolicy(attempts=5, retry_on=Exception).call(failing([unsafe]))


def test_retry_on_types_and_predicates() -> None:
    fake = FakeTime()
    policy = policy_with(fake, attempts=3, retry_on=(KeyError, LookupError))
    assert policy.call(failing([KeyError("k")])) == "ok"
    with pytest.raises(ConnectionResetError):  # transient by default, but not listed
        policy.call(failing([ConnectionResetError()]))

    def retry_after(exc: Exception) -> bool | float:
        return 0.25 if isinstance(exc, ValueError) else False

    fake = FakeTime()
    assert policy_with(fake, attempts=3, retry_on=retry_after).call(
        failing([ValueError(), ValueError()])
    )
    assert fake.sleeps == [0.25, 0.25]  # the predicate's delay, not the backoff
    with pytest.raises(TimeoutError):
        policy_with(fake, attempts=3, retry_on=retry_after).call(failing([TimeoutError()]))


# --- deadline -------------------------------------------------------------------------


def test_no_wait_crosses_the_deadline_the_last_attempt_gets_the_rest() -> None:
    fake = FakeTime()
    policy = policy_with(fake, attempts=10, deadline=1.0, backoff="exponential", initial=0.2)
    budgets: list[float | None] = []
    with pytest.raises(RetryError) as caught:  # noqa: PT012
        for attempt in policy.retrying("slow op"):
            with attempt:
                budgets.append(attempt.remaining)
                fake.now += 0.3  # every attempt takes 0.3 s, then fails
                raise TimeoutError
    # t=0: #1 fails at .3, waits .2; #2 .5-.8 fails; a .4 wait would end at 1.2 > 1.0:
    # skipped, #3 starts at once with the .2 left; it fails at 1.1 and that is the end.
    assert fake.sleeps == pytest.approx([0.2])
    assert budgets == pytest.approx([1.0, 0.5, 0.2])
    assert len(caught.value.attempts) == 3
    assert "deadline" in caught.value.reason


def test_a_requested_delay_that_crosses_the_deadline_gives_up() -> None:
    fake = FakeTime()
    policy = policy_with(fake, attempts=5, deadline=1.0, retry_on=lambda e: 5.0)
    with pytest.raises(RetryError, match="would cross the deadline"):
        policy.call(failing([ValueError()]))
    assert fake.sleeps == []


def test_acall_enforces_the_deadline_on_a_hanging_attempt() -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        policy = RetryPolicy(attempts=50, deadline=0.2, initial=0.01, cap=0.02)
        started = time.monotonic()
        with pytest.raises(RetryError) as caught:
            await policy.acall(hangs)
        assert 0.15 < time.monotonic() - started < 2.0
        assert isinstance(caught.value.last_error, TimeoutError)

    asyncio.run(main())


# --- the three shapes -----------------------------------------------------------------


def test_decorator_sync_and_async() -> None:
    fake = FakeTime()
    policy = policy_with(fake, attempts=3)
    sync_calls: list[int] = []
    async_calls: list[int] = []

    @policy
    def fetch(x: int) -> int:
        """Fetch."""
        sync_calls.append(x)
        if len(sync_calls) < 2:
            raise ConnectionResetError
        return x * 2

    @policy
    async def afetch(x: int) -> int:
        async_calls.append(x)
        if len(async_calls) < 3:
            raise ConnectionRefusedError
        return x * 3

    assert fetch(2) == 4
    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch."
    assert asyncio.run(afetch(2)) == 6
    assert (sync_calls, async_calls) == ([2, 2], [2, 2, 2])


def test_call_and_acall_pass_arguments_and_succeed_without_waiting() -> None:
    fake = FakeTime()
    policy = policy_with(fake, attempts=3, deadline=5.0)

    async def add(a: int, *, b: int) -> int:
        return a + b

    assert policy.call(lambda a, b: a + b, 1, b=2) == 3
    assert asyncio.run(policy.acall(add, 1, b=2)) == 3
    assert fake.sleeps == []


def test_attempt_loop_records_endpoints_and_skip_backoff() -> None:
    fake = FakeTime()
    policy = policy_with(fake, attempts=3, backoff="constant", initial=0.5)
    with pytest.raises(RetryError) as caught:  # noqa: PT012
        for attempt in policy.retrying("connect"):
            with attempt:
                attempt.endpoint = ("127.0.0.1", 1000 + attempt.number)
                attempt.skip_backoff = attempt.number == 1  # fail over for free once
                assert attempt.remaining is None
                raise ConnectionRefusedError
    assert [r.endpoint for r in caught.value.attempts] == [
        ("127.0.0.1", 1001),
        ("127.0.0.1", 1002),
        ("127.0.0.1", 1003),
    ]
    assert fake.sleeps == [0.5]  # no wait after #1, the backoff after #2
    assert "127.0.0.1:1003" in str(caught.value)


def test_attempt_loop_stops_after_a_success() -> None:
    seen = []
    for attempt in RetryPolicy(attempts=5).retrying():
        with attempt:
            seen.append(attempt.number)
    assert seen == [1]


def test_async_attempt_loop() -> None:
    fake = FakeTime()
    policy = policy_with(fake, attempts=4, backoff="constant", initial=0.1)

    async def main() -> list[int]:
        seen = []
        async for attempt in policy.aretrying("async op"):
            with attempt:
                seen.append(attempt.number)
                if attempt.number < 3:
                    raise ConnectionResetError
        return seen

    assert asyncio.run(main()) == [1, 2, 3]
    assert fake.sleeps == [0.1, 0.1]


# --- hooks, logging -------------------------------------------------------------------


def test_hooks_get_details_and_logging_reports_retries_and_the_give_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime()
    retries: list[RetryDetails] = []
    give_ups: list[RetryDetails] = []
    policy = policy_with(
        fake, attempts=3, deadline=10.0, on_retry=retries.append, on_giveup=[give_ups.append]
    )
    caplog.set_level(logging.WARNING, logger="chaosnet.retry")
    with pytest.raises(RetryError):
        policy.call(failing([TimeoutError("t1"), TimeoutError("t2"), TimeoutError("t3")]))
    assert [d.attempt for d in retries] == [1, 2]
    assert not any(d.giving_up for d in retries)
    assert [str(d.error) for d in retries] == ["t1", "t2"]
    assert retries[1].wait == fake.sleeps[1]
    assert retries[1].remaining == pytest.approx(10.0 - fake.sleeps[0])
    assert len(give_ups) == 1
    assert give_ups[0].giving_up
    assert len(give_ups[0].attempts) == 3
    levels = [r.levelno for r in caplog.records if r.name == "chaosnet.retry"]
    assert levels == [logging.WARNING, logging.WARNING, logging.ERROR]
    assert "attempt 1/3 failed with TimeoutError: t1" in caplog.records[0].getMessage()


# --- the testing switch ---------------------------------------------------------------


def test_no_waits_turns_waits_off_in_every_thread_and_nests() -> None:
    slow = RetryPolicy(attempts=3, backoff="constant", initial=30.0)  # 60 s if it waited
    results: list[str] = []

    def worker() -> None:
        results.append(slow.call(failing([TimeoutError(), TimeoutError()])))

    with no_waits():
        with no_waits():
            assert waits_disabled()
        assert waits_disabled()
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert results == ["ok"] * 4
    assert not waits_disabled()


def test_no_waits_records_zero_waits() -> None:
    with no_waits(), pytest.raises(RetryError) as caught:
        RetryPolicy(attempts=2, initial=5.0, cap=5.0).call(failing([TimeoutError()] * 2))
    assert [r.waited_after for r in caught.value.attempts] == [0.0, 0.0]


def test_no_waits_is_thread_safe_under_concurrent_entry() -> None:
    barrier = threading.Barrier(8)

    def enter_and_leave() -> None:
        barrier.wait(5)
        for _ in range(200):
            with no_waits():
                pass

    threads = [threading.Thread(target=enter_and_leave) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not waits_disabled()


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": None}, "needs attempts or a deadline"),
        ({"attempts": 0}, "attempts must be >= 1"),
        ({"deadline": 0}, "deadline must be > 0"),
        ({"backoff": "fibonacci"}, "backoff must be one of"),
        ({"initial": 1.0, "cap": 0.5}, "cap"),
        ({"multiplier": 0.5}, "multiplier must be >= 1"),
        ({"seed": 1, "rng": __import__("random").Random()}, "either rng or seed"),
    ],
)
def test_bad_policies_are_rejected_with_the_field_named(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_predicate_returning_nonsense_is_reported() -> None:
    policy = RetryPolicy(attempts=2, retry_on=lambda e: "yes")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="expected a bool or a delay"):
        policy.call(failing([ValueError()]))
