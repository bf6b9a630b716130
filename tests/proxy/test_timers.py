"""The engine's timer queue, on a real event loop, with each kind of alarm.

Timing checks carry tolerances of tens of milliseconds: precision is measured by
the benchmarks (figure 4), not asserted here. What is asserted exactly is what
the queue promises: order, cancellation, that a timerfd never fires early, and
that timers of a removed toxic or a closed connection are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.proxy.loop import new_event_loop
from chaosnet.proxy.timers import (
    COMPACT_MIN,
    PASS_BUDGET_S,
    Alarm,
    LoopAlarm,
    TimerfdAlarm,
    TimerQueue,
    best_alarm,
)
from tests.proxy.support import (
    Api,
    Upstream,
    connect,
    listen_address,
    recv_all,
    recv_exactly,
    wait_for,
)

T = TypeVar("T")
Factory = Callable[[asyncio.AbstractEventLoop, Callable[[], None]], Alarm]
LINUX = sys.platform.startswith("linux")
ALARMS = [
    pytest.param(TimerfdAlarm, id="timerfd", marks=pytest.mark.skipif(not LINUX, reason="Linux")),
    pytest.param(LoopAlarm, id="loop"),
]
WAIT_S = 5.0


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = new_event_loop()
    yield running
    running.close()


def run(loop: asyncio.AbstractEventLoop, main: Coroutine[Any, Any, T]) -> T:
    return loop.run_until_complete(asyncio.wait_for(main, WAIT_S))


class Recorder:
    """Callbacks that note their name and the time they ran; a future per expected count."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int) -> None:
        self.ran: list[tuple[str, float]] = []
        self.expected = expected
        self.done: asyncio.Future[None] = loop.create_future()

    def callback(self, name: str) -> Callable[[], None]:
        def ran() -> None:
            self.ran.append((name, time.monotonic()))
            if len(self.ran) == self.expected and not self.done.done():
                self.done.set_result(None)

        return ran

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.ran]


def no_errors(exc: BaseException) -> None:
    raise AssertionError(f"a timer callback failed: {exc!r}")


@pytest.mark.parametrize("alarm", ALARMS)
def test_timers_run_in_due_order_and_ties_in_scheduling_order(
    loop: asyncio.AbstractEventLoop, alarm: Factory
) -> None:
    async def main() -> list[str]:
        queue = TimerQueue(loop, no_errors, alarm)
        recorder = Recorder(loop, 5)
        base = time.monotonic() + 0.02
        queue.call_at(base + 0.010, recorder.callback("c"))
        queue.call_at(base, recorder.callback("a1"))
        queue.call_at(base + 0.005, recorder.callback("b"))
        queue.call_at(base, recorder.callback("a2"))  # same time as a1: after it
        queue.call_at(base - 1.0, recorder.callback("past"))  # already due: first
        await recorder.done
        queue.close()
        return recorder.names

    assert run(loop, main()) == ["past", "a1", "a2", "b", "c"]


@pytest.mark.parametrize("alarm", ALARMS)
def test_a_timer_never_runs_before_it_is_due(
    loop: asyncio.AbstractEventLoop, alarm: Factory
) -> None:
    delays = [0.001 * i for i in range(1, 31)]

    async def main() -> list[float]:
        queue = TimerQueue(loop, no_errors, alarm)
        recorder = Recorder(loop, len(delays))
        start = time.monotonic()
        dues = [start + delay for delay in delays]
        for index, due in enumerate(dues):
            queue.call_at(due, recorder.callback(str(index)))
        await recorder.done
        queue.close()
        return [ran - dues[int(name)] for name, ran in recorder.ran]

    lateness = run(loop, main())
    early_allowed = TimerfdAlarm.slack if alarm is TimerfdAlarm else LoopAlarm.slack
    assert min(lateness) >= -early_allowed - 1e-6, lateness
    assert max(lateness) < 0.05, lateness  # generous: this is not a precision test


@pytest.mark.parametrize("alarm", ALARMS)
def test_cancelled_timers_never_run(loop: asyncio.AbstractEventLoop, alarm: Factory) -> None:
    async def main() -> tuple[list[str], int]:
        queue = TimerQueue(loop, no_errors, alarm)
        recorder = Recorder(loop, 2)
        base = time.monotonic() + 0.01
        first = queue.call_at(base, recorder.callback("cancelled first"))
        queue.call_at(base + 0.002, recorder.callback("kept"))
        middle = queue.call_at(base + 0.004, recorder.callback("cancelled middle"))
        queue.call_at(base + 0.006, recorder.callback("last"))
        first.cancel()
        middle.cancel()
        middle.cancel()  # idempotent
        pending = len(queue)
        await recorder.done
        await asyncio.sleep(0.02)  # anything still armed would have run by now
        queue.close()
        return recorder.names, pending

    names, pending = run(loop, main())
    assert names == ["kept", "last"]
    assert pending == 2


def test_cancelling_a_timer_that_ran_changes_nothing(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> int:
        queue = TimerQueue(loop, no_errors)
        recorder = Recorder(loop, 1)
        timer = queue.call_at(time.monotonic(), recorder.callback("ran"))
        later = queue.call_at(time.monotonic() + 60, recorder.callback("later"))
        await recorder.done
        assert not timer.pending
        timer.cancel()
        count = len(queue)
        later.cancel()
        queue.close()
        return count

    assert run(loop, main()) == 1


def test_many_cancelled_timers_are_compacted_away(loop: asyncio.AbstractEventLoop) -> None:
    """Connections that close cancel their far-future timers; the heap must not keep them."""

    async def main() -> tuple[int, int]:
        queue = TimerQueue(loop, no_errors)
        far = time.monotonic() + 3600
        timers = [queue.call_at(far + i, lambda: None) for i in range(4 * COMPACT_MIN)]
        for timer in timers[:-1]:
            timer.cancel()
        sizes = len(queue), len(queue._heap)
        queue.close()
        return sizes

    live, stored = run(loop, main())
    assert live == 1
    assert stored <= 2 * COMPACT_MIN + 1


def test_a_failing_callback_is_reported_and_the_others_still_run(
    loop: asyncio.AbstractEventLoop,
) -> None:
    errors: list[BaseException] = []

    def boom() -> None:
        raise RuntimeError("toxic bug")

    async def main() -> list[str]:
        queue = TimerQueue(loop, errors.append)
        recorder = Recorder(loop, 2)
        due = time.monotonic() + 0.005
        queue.call_at(due, recorder.callback("before"))
        queue.call_at(due, boom)
        queue.call_at(due, recorder.callback("after"))
        await recorder.done
        queue.close()
        return recorder.names

    assert run(loop, main()) == ["before", "after"]
    assert [str(exc) for exc in errors] == ["toxic bug"]


@pytest.mark.parametrize("alarm", ALARMS)
def test_timers_scheduled_by_a_timer_run_too(
    loop: asyncio.AbstractEventLoop, alarm: Factory
) -> None:
    """A chain of re-arming timers (how bandwidth pacing and slicer delays work)."""

    async def main() -> int:
        queue = TimerQueue(loop, no_errors, alarm)
        done: asyncio.Future[None] = loop.create_future()
        count = 0

        def step() -> None:
            nonlocal count
            count += 1
            if count == 20:
                done.set_result(None)
            else:
                queue.call_at(time.monotonic() + 0.0005, step)

        queue.call_at(time.monotonic(), step)
        await done
        queue.close()
        return count

    assert run(loop, main()) == 20


def test_a_long_pass_yields_to_the_loop_and_finishes_later(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Due timers that take longer than one pass's budget leave the loop a turn between."""
    slow = PASS_BUDGET_S * 2

    async def main() -> tuple[int, list[int]]:
        queue = TimerQueue(loop, no_errors)
        recorder = Recorder(loop, 6)
        seen: list[int] = []  # how many timers had run, at each loop iteration

        def tick() -> None:
            seen.append(len(recorder.ran))
            if not recorder.done.done():
                loop.call_soon(tick)

        def slow_callback(name: str) -> Callable[[], None]:
            record = recorder.callback(name)

            def run_slowly() -> None:
                record()
                end = time.monotonic() + slow
                while time.monotonic() < end:
                    pass

            return run_slowly

        due = time.monotonic()
        for index in range(6):
            queue.call_at(due, slow_callback(str(index)))
        tick()
        await recorder.done
        queue.close()
        return len(recorder.ran), seen

    ran, seen = run(loop, main())
    assert ran == 6
    assert any(0 < count < 6 for count in seen), seen  # the loop turned mid-way


@pytest.mark.skipif(not LINUX, reason="timerfd is Linux only")
def test_linux_gets_a_timerfd_and_close_releases_it(loop: asyncio.AbstractEventLoop) -> None:
    before = set(os.listdir("/proc/self/fd"))

    async def main() -> str:
        queue = TimerQueue(loop, no_errors)
        queue.call_at(time.monotonic() + 3600, lambda: None)
        kind = queue.kind
        queue.close()
        return kind

    assert run(loop, main()) == "TimerfdAlarm"
    assert set(os.listdir("/proc/self/fd")) <= before


def test_best_alarm_is_a_timerfd_on_linux(loop: asyncio.AbstractEventLoop) -> None:
    alarm = best_alarm(loop, lambda: None)
    try:
        assert isinstance(alarm, TimerfdAlarm if LINUX else LoopAlarm)
    finally:
        alarm.close()


# -- through the engine -------------------------------------------------------------------


def pending_timers(server: EmbeddedServer) -> int:
    return server.call_in_engine(lambda engine: len(engine.runtime.timers))


def held_bytes(server: EmbeddedServer) -> int:
    return server.call_in_engine(lambda engine: engine.runtime.budget.held)


def test_removing_a_toxic_cancels_its_timers_and_releases_what_it_held(
    server: EmbeddedServer, api: Api, echo_server: Upstream
) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "latency", attributes={"latency": 60_000})
    api.add_toxic("p", "slow_close", stream="upstream", attributes={"delay": 60_000})
    with connect(address) as sock:
        sock.sendall(b"held")
        wait_for(lambda: pending_timers(server) == 1 and held_bytes(server) == 4)
        assert api.delete("/proxies/p/toxics/latency_downstream").status == 204
        assert recv_exactly(sock, 4) == b"held"
        assert pending_timers(server) == 0
        assert held_bytes(server) == 0
        sock.shutdown(socket.SHUT_WR)  # the slow_close toxic now holds the FIN with a 60 s timer
        wait_for(lambda: pending_timers(server) == 1)
        assert api.delete("/proxies/p/toxics/slow_close_upstream").status == 204
        assert recv_exactly(sock, 1) == b""  # the held FIN went through, echoed back
    assert pending_timers(server) == 0


def test_closing_a_connection_cancels_its_timers_and_returns_its_bytes(
    server: EmbeddedServer, api: Api, echo_server: Upstream
) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "latency", attributes={"latency": 60_000})
    api.add_toxic("p", "limit_time", attributes={"duration": 60_000})
    with connect(address) as sock:
        sock.sendall(b"x" * 1000)
        wait_for(lambda: held_bytes(server) == 1000)
        assert pending_timers(server) == 2  # the latency's and the limit_time's
    api.post("/proxies/p", {"enabled": False})  # closes the connection from the proxy side
    wait_for(lambda: pending_timers(server) == 0)
    assert held_bytes(server) == 0


def test_the_engine_uses_a_timerfd_on_linux(server: EmbeddedServer) -> None:
    kind = server.call_in_engine(lambda engine: engine.runtime.timers.kind)
    assert kind == ("TimerfdAlarm" if LINUX else "LoopAlarm")


def test_compaction_during_a_pass_keeps_the_count_right(loop: asyncio.AbstractEventLoop) -> None:
    """A timer callback that cancels many others (a proxy stopping) compacts mid-pass."""

    async def main() -> tuple[list[str], int]:
        queue = TimerQueue(loop, no_errors)
        recorder = Recorder(loop, 2)
        far = time.monotonic() + 3600
        doomed = [queue.call_at(far + i, lambda: None) for i in range(4 * COMPACT_MIN)]
        kept = queue.call_at(far + 1e6, lambda: None)

        def cancel_all() -> None:
            recorder.callback("cancel_all")()
            for timer in doomed:
                timer.cancel()

        due = time.monotonic()
        queue.call_at(due, cancel_all)
        queue.call_at(due, recorder.callback("next"))
        await recorder.done
        count = len(queue)
        kept.cancel()
        queue.close()
        return recorder.names, count

    names, count = run(loop, main())
    assert names == ["cancel_all", "next"]
    assert count == 1


#: The toxics that hold data behind a timer (``toxics.base.Holding``), set to hold long.
HOLDING = [
    pytest.param("latency", {"latency": 60_000}, id="latency"),
    pytest.param("bandwidth", {"rate": 1}, id="bandwidth"),
    pytest.param("slicer", {"average_size": 1, "delay": 60_000_000}, id="slicer"),
]
PAYLOAD = bytes(range(256)) * 16


@contextlib.contextmanager
def held_by(
    server: EmbeddedServer, api: Api, upstream: Upstream, kind: str, attributes: dict[str, int]
) -> Iterator[socket.socket]:
    """A connection whose replies a ``kind`` toxic on proxy ``p`` is holding (timer armed)."""
    address = listen_address(api.create_proxy("p", upstream.address))
    api.add_toxic("p", kind, attributes=attributes)
    with connect(address) as sock:
        sock.sendall(PAYLOAD)
        wait_for(lambda: pending_timers(server) == 1 and held_bytes(server) > 0)
        yield sock


@pytest.mark.parametrize(("kind", "attributes"), HOLDING)
def test_removing_a_holding_toxic_passes_on_everything_in_order(
    server: EmbeddedServer,
    api: Api,
    echo_server: Upstream,
    kind: str,
    attributes: dict[str, int],
) -> None:
    with held_by(server, api, echo_server, kind, attributes) as sock:
        assert api.delete(f"/proxies/p/toxics/{kind}_downstream").status == 204
        assert recv_exactly(sock, len(PAYLOAD)) == PAYLOAD
        assert (pending_timers(server), held_bytes(server)) == (0, 0)


@pytest.mark.parametrize(("kind", "attributes"), HOLDING)
def test_closing_a_connection_drops_what_a_holding_toxic_held(
    server: EmbeddedServer,
    api: Api,
    echo_server: Upstream,
    kind: str,
    attributes: dict[str, int],
) -> None:
    with held_by(server, api, echo_server, kind, attributes) as sock:
        api.post("/proxies/p", {"enabled": False})
        wait_for(lambda: pending_timers(server) == 0)
        assert held_bytes(server) == 0
        received = recv_all(sock)
    assert len(received) < len(PAYLOAD)  # what was held never arrived
