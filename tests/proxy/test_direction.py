"""One ``Direction`` on its own: real sockets, a real loop, a stand-in for its link.

The direction knows its connection only through the ``DirectionOwner`` protocol
and the engine only through the ``Runtime`` it is handed, so it runs here with
neither a proxy nor a link: :class:`Owner` records what the direction asks of
its connection, and the sockets are socket pairs.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from chaosnet.proxy.direction import Direction
from chaosnet.proxy.loop import new_event_loop
from chaosnet.proxy.runtime import Runtime
from chaosnet.proxy.timers import Callback
from chaosnet.proxy.toxics import REGISTRY
from chaosnet.proxy.toxics.base import Toxic, ToxicSpec

TIMEOUT_S = 5.0


@dataclass
class Owner:
    """A link as a direction sees it, recording each call."""

    running: bool = True
    seq: int = 0
    opened_at: float = field(default_factory=time.monotonic)
    proxy_name: str = "alone"
    calls: list[tuple[object, ...]] = field(default_factory=list)

    def source_ended(self, side: str) -> None:
        self.calls.append(("source_ended", side))

    def half_closed(self) -> None:
        self.calls.append(("half_closed",))

    def close(self, by: str, kind: str) -> None:
        self.running = False
        self.calls.append(("close", by, kind))

    def aborted(self, side: str, exc: OSError) -> None:
        self.running = False
        self.calls.append(("aborted", side))

    def fail(self, exc: BaseException) -> None:
        self.running = False
        self.calls.append(("fail", repr(exc)))

    def guarded(self, callback: Callback) -> None:
        if self.running:
            callback()


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    runtime: Runtime
    owner: Owner
    direction: Direction
    client: socket.socket  # writes into the direction's source
    server: socket.socket  # reads from its destination
    received: bytearray = field(default_factory=bytearray)

    def run_until(self, done: Callable[[], bool]) -> None:
        """Run the loop (reading what reaches the server) until ``done()``; bounded."""

        async def wait() -> None:
            deadline = time.monotonic() + TIMEOUT_S
            while not done():
                assert time.monotonic() < deadline, f"timed out; owner saw {self.owner.calls}"
                self._drain()
                await asyncio.sleep(0.001)

        self.loop.run_until_complete(wait())

    def _drain(self) -> None:
        try:
            while chunk := self.server.recv(65536):
                self.received += chunk
        except BlockingIOError:
            pass

    def server_saw_eof(self) -> bool:
        try:
            return self.server.recv(1) == b""
        except BlockingIOError:
            return False

    def add(self, type_name: str, **attributes: object) -> Toxic:
        toxic = REGISTRY[type_name]
        values = {attr.name: attr.default for attr in toxic.attributes} | attributes
        spec = ToxicSpec(
            name=type_name, cls=toxic, stream="upstream", toxicity=1.0, attributes=values
        )
        self.direction.insert_stage(len(self.direction.stages), spec)
        return self.direction.stages[-1]


@pytest.fixture
def rig() -> Iterator[Rig]:
    loop = new_event_loop()
    runtime = Runtime.create(loop, seed=7)
    client, src = socket.socketpair()
    dst, server = socket.socketpair()
    for sock in (src, dst, server):
        sock.setblocking(False)
    owner = Owner()
    direction = Direction(owner, runtime, src, dst, "upstream")
    direction.start()
    try:
        yield Rig(loop, runtime, owner, direction, client, server)
    finally:
        direction.shut()
        for sock in (client, src, dst, server):
            runtime.poller.forget(sock.fileno())
            sock.close()
        runtime.close()
        loop.close()


def test_bytes_pass_and_a_half_close_is_passed_on(rig: Rig) -> None:
    rig.client.sendall(b"hello")
    rig.run_until(lambda: rig.received == b"hello")
    assert (rig.direction.received, rig.direction.forwarded) == (5, 5)
    rig.client.shutdown(socket.SHUT_WR)
    rig.run_until(lambda: ("half_closed",) in rig.owner.calls)
    assert rig.owner.calls == [("source_ended", "client"), ("half_closed",)]
    assert rig.server_saw_eof()
    assert rig.runtime.budget.held == 0


def test_a_stage_holds_bytes_against_the_budget_until_it_lets_them_go(rig: Rig) -> None:
    stage = rig.add("latency", latency=60_000)
    rig.client.sendall(b"held")
    rig.run_until(lambda: rig.runtime.budget.held == 4)
    assert (rig.received, len(rig.runtime.timers)) == (b"", 1)
    rig.direction.remove_stage(stage)
    rig.run_until(lambda: rig.received == b"held")
    assert (rig.runtime.budget.held, len(rig.runtime.timers)) == (0, 0)


def test_a_toxic_cut_closes_the_connection_through_the_owner(rig: Rig) -> None:
    rig.add("limit_data", bytes=3)
    rig.client.sendall(b"hello")
    rig.run_until(lambda: not rig.owner.running)
    rig.run_until(lambda: rig.received == b"hel")
    assert rig.owner.calls == [("close", "toxic limit_data", "fin")]


class Boom(Toxic):
    type_name = "boom"
    __slots__ = ()

    def on_data(self, data: bytes) -> None:
        raise RuntimeError("boom")


def test_an_exception_in_a_stage_fails_the_owner_not_the_loop(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, "boom", Boom)
    rig.add("boom")
    rig.client.sendall(b"x")
    rig.run_until(lambda: not rig.owner.running)
    assert rig.owner.calls == [("fail", "RuntimeError('boom')")]
    assert rig.runtime.errors.take() == []  # reporting is the owner's business
