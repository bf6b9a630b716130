"""A toxic chain: the stages one way of a connection (or of a datagram flow) runs through.

Both transports have one: a TCP link's two
:class:`~chaosnet.proxy.direction.Direction` objects and a datagram flow's two
:class:`~chaosnet.proxy.datagram.flow.Path` objects are each a :class:`Chain`.
A chain keeps its stages in order, links each stage to the next and the last one
to itself (the chain is also the sink), and is the ``Pipe`` its stages use: the
clock, the engine's timer queue (a timer callback that raises goes to the chain's
owner, which closes that connection or flow only), the toxics' seeded random
sources, and the count of bytes it holds, kept in the engine's
:class:`~chaosnet.proxy.budget.BufferBudget`.

What differs between the transports stays in the subclass: the stage class a
toxic's spec makes there (``transport``; a TCP direction also wraps a
message-targeted toxic in a gate), what follows a stage's removal, what giving
bytes back does (a paused direction may read again), and the sink itself.

:class:`ChainPair` is the owner's side, shared by a link and a flow: its two
chains, one per stream, and adding, removing and updating a toxic on them.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from chaosnet.proxy import seeding

if TYPE_CHECKING:
    from chaosnet.proxy.connlog import ConnectionRecord
    from chaosnet.proxy.runtime import Runtime
    from chaosnet.proxy.timers import Timer
    from chaosnet.proxy.toxics.base import End, Receiver, Toxic, ToxicSpec, Transport


class ChainOwner(Protocol):
    """What a chain needs from the connection or flow it belongs to."""

    @property
    def running(self) -> bool:
        """False once it closed: a chain then passes nothing on."""

    @property
    def seq(self) -> int:
        """Its number in its proxy's accept order."""

    @property
    def opened_at(self) -> float:
        """When the proxy opened it (``time.monotonic()``)."""

    @property
    def proxy_name(self) -> str: ...

    def guarded(self, callback: Callable[[], None]) -> None:
        """Run a callback of its own; a failure closes this connection or flow only."""


Owner = TypeVar("Owner", bound=ChainOwner)


class Chain(ABC, Generic[Owner]):
    """One way's toxic chain and the ``Pipe`` its stages use; the subclass is the sink."""

    transport: ClassVar[Transport]

    __slots__ = (
        "budget",
        "head",
        "in_flight",
        "owner",
        "rngs",
        "seed",
        "stages",
        "stream",
        "timers",
    )

    def __init__(self, owner: Owner, runtime: Runtime, stream: str) -> None:
        self.owner = owner
        self.timers = runtime.timers
        self.budget = runtime.budget
        self.seed = runtime.seed
        self.stream: str = stream
        self.stages: list[Toxic] = []
        self.head: Receiver = self  # the first stage, or the sink itself without toxics
        self.in_flight = 0  # bytes read but neither sent nor dropped, counted in the budget
        self.rngs: dict[str, random.Random] | None = None

    # -- the sink: what the last stage hands on ---------------------------------------

    @abstractmethod
    def on_data(self, data: bytes) -> None: ...

    @abstractmethod
    def on_end(self, end: End) -> None: ...

    # -- what toxics may use (the Pipe protocol) ----------------------------------------

    def now(self) -> float:
        # Not loop.time(): uvloop's clock has millisecond steps, which would release a
        # delayed chunk up to a millisecond early.
        return time.monotonic()

    def is_due(self, when: float) -> bool:
        return when <= time.monotonic() + self.timers.slack

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return self.timers.call_at(when, callback, self.owner)  # a failure closes the owner

    def dropped(self, count: int) -> None:
        self._release(count)

    def rng(self, spec: ToxicSpec) -> random.Random:
        if self.rngs is None:
            self.rngs = {}
        found = self.rngs.get(spec.name)
        if found is None:
            owner = self.owner
            found = seeding.derive(
                spec.effective_seed(self.seed),
                owner.proxy_name,
                spec.name,
                spec.index_of(owner.seq),
                self.stream,
                "data",
            )
            self.rngs[spec.name] = found
        return found

    @property
    def opened_at(self) -> float:
        return self.owner.opened_at

    # -- the chain ------------------------------------------------------------------------

    def insert_stage(self, index: int, spec: ToxicSpec) -> None:
        after: Receiver = self.stages[index] if index < len(self.stages) else self
        stage = self.new_stage(spec, after)
        self.stages.insert(index, stage)
        if index == 0:
            self.head = stage
        else:
            self.stages[index - 1].next = stage

    def new_stage(self, spec: ToxicSpec, after: Receiver) -> Toxic:
        """The stage ``spec`` makes on this chain, passing on to ``after``."""
        return spec.cls.stage(self.transport)(spec, self, after)

    def find_stage(self, name: str) -> Toxic | None:
        for stage in self.stages:
            if stage.spec.name == name:
                return stage
        return None

    def remove_stage(self, stage: Toxic) -> None:
        stage.on_remove()  # what it held goes on now
        self.unlink(stage)

    def unlink(self, stage: Toxic) -> bool:
        """Take ``stage`` out of the chain; False if it was not in it."""
        if stage not in self.stages:
            return False
        index = self.stages.index(stage)
        del self.stages[index]
        if index == 0:
            self.head = self.stages[0] if self.stages else self
        else:
            self.stages[index - 1].next = stage.next
        return True

    def close_stages(self) -> None:
        """The owner closed: every stage drops what it holds, and the budget gets it back."""
        for stage in self.stages:
            stage.on_close()
        if self.in_flight:
            self.budget.give_back(self.in_flight, self.in_flight)
            self.in_flight = 0

    # -- held bytes ---------------------------------------------------------------------

    def _hold(self, count: int) -> None:
        self.budget.take(self.in_flight, count)
        self.in_flight += count

    @abstractmethod
    def _release(self, count: int) -> None:
        """``count`` held bytes were sent or dropped."""


Pathway = TypeVar("Pathway", bound="Chain[Any]")


class ChainPair(ABC, Generic[Pathway]):
    """A connection or flow with a chain per stream: toxic management acts on it here.

    The subclass sets ``seq``, ``up``, ``down``, ``toxics``, ``record``, ``runtime``
    and ``running``, and says in :meth:`fail` what an exception closes.
    """

    __slots__ = ()

    seq: int
    up: Pathway
    down: Pathway
    toxics: set[str]  # the names of the toxics applied here
    record: ConnectionRecord
    runtime: Runtime
    running: bool

    @property
    @abstractmethod
    def proxy_name(self) -> str: ...

    @abstractmethod
    def fail(self, exc: BaseException) -> None:
        """An exception escaped the engine: record it, report it, close this one only."""

    def direction(self, stream: str) -> Pathway:
        return self.up if stream == "upstream" else self.down

    def apply(self, spec: ToxicSpec, index: int) -> None:
        """Insert ``spec``'s stage at ``index`` of its stream's chain."""
        self.toxics.add(spec.name)
        if spec.name not in self.record.toxics:
            self.record.toxics.append(spec.name)
            self.runtime.counters.toxic_applied(self.proxy_name, spec.type_name)
        self.direction(spec.stream).insert_stage(index, spec)

    def unapply(self, spec: ToxicSpec) -> None:
        self.toxics.discard(spec.name)
        chain = self.direction(spec.stream)
        stage = chain.find_stage(spec.name)
        if stage is not None:
            chain.remove_stage(stage)

    def update(self, spec: ToxicSpec) -> None:
        stage = self.direction(spec.stream).find_stage(spec.name)
        if stage is not None:
            stage.on_update()

    def guarded(self, callback: Callable[[], None]) -> None:
        """Run a callback of this one's (a timer, a socket's readiness); an exception
        fails this connection or flow only."""
        if not self.running:
            return
        try:
            callback()
        except Exception as exc:
            self.fail(exc)
