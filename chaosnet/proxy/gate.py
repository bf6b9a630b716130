"""Aiming a toxic at messages: the stage that stands in for a toxic on a proxy with a protocol.

A toxic with message targeting (``skip_messages``, ``max_messages``,
``message_scope``), a message toxic, or ``corrupt body_only`` sits in its
direction's chain inside a :class:`MessageGate`. The gate frames the bytes it
receives with its own framer -- the stream as the toxics before it left it, so a
slicer or a latency before it changes nothing -- and hands the toxic only the
targeted messages' bytes (of those, only the parts the toxic wants: bodies for
``corrupt body_only``). Every other byte passes unchanged, but in order: while the
toxic holds bytes it was given (a latency, a stall), later bytes wait behind them.

The toxic is created at the first byte of the first targeted message, so a toxic
that acts at a point in time (``reset_peer``, ``timeout``, ``limit_time``) counts
from there. Messages are counted per connection, or with ``message_scope: proxy``
across every connection of the proxy since the toxic was added.

Once the connection is desynchronized (or the gate's own framer loses the
protocol, as after a ``corrupt`` before it), nothing more is targeted: bytes pass
unchanged behind whatever the toxic still holds.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chaosnet.proxy.framers.base import UNFRAMED, Part
from chaosnet.proxy.toxics.base import End, Pipe, Toxic

if TYPE_CHECKING:
    from chaosnet.proxy.framers.base import Framer
    from chaosnet.proxy.messages import MessageSession, StreamTracker
    from chaosnet.proxy.timers import Timer
    from chaosnet.proxy.toxics.base import Receiver, ToxicSpec

Item = tuple[bytes, Part | None, bool] | End


class Direction(Pipe, Protocol):
    """What a gate needs from the direction it sits in (``chaosnet.proxy.direction``)."""

    tracker: StreamTracker | None
    in_flight: int


class MessageGate(Toxic):
    __slots__ = (
        "base",
        "direction",
        "framer",
        "given",
        "inner",
        "pumping",
        "queue",
        "returned",
        "session",
        "targeted",
    )

    def __init__(self, spec: ToxicSpec, pipe: Direction, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        assert pipe.tracker is not None, "a gate needs a connection with a protocol"
        session = pipe.tracker.session
        self.direction = pipe
        self.session: MessageSession = session
        stream: str = pipe.stream
        self.framer: Framer = session.protocol.framer(stream, session.shared, primary=False)
        self.inner: Toxic | None = None
        self.queue: deque[Item] = deque()
        self.given = 0  # bytes handed to the toxic
        self.returned = 0  # bytes it passed on or dropped
        self.targeted = False  # the message being read is targeted
        self.pumping = False
        self.base = self._messages_before(pipe, session)

    def _messages_before(self, direction: Direction, session: MessageSession) -> int:
        """How many messages of this stream passed before the gate's first byte.

        A gate added to a live connection frames from its first byte on, so it must start
        at a message boundary: nothing read still in the chain, no message half read.
        Otherwise it never targets anything on this connection (new ones are fine).
        """
        tracker = session.tracker(direction.stream)
        if direction.in_flight or tracker.current is not None:
            self.framer.error = "toxic added while a message was passing"
            return 0
        return tracker.count if direction.stream == "upstream" else session.client_count

    # -- what comes in ---------------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        framer = self.framer
        if self.session.desynchronized is not None or framer.error is not None:
            self.queue.append((data, None, False))
        else:
            self._sort(data, framer.scan(data))
        self._pump()

    def _sort(self, data: bytes, parts: list[Part]) -> None:
        """Queue the chunk's pieces, each marked targeted or not; untargeted runs coalesce."""
        spec, cls, queue = self.spec, self.spec.cls, self.queue
        run_start = -1
        for part in parts:
            if part.offset == 0 and part.kind != UNFRAMED:
                self.targeted = self._targets(part.message + self.base)
            wanted = self.targeted and part.kind != UNFRAMED and cls.wants(part, spec.attributes)
            if wanted:
                if run_start >= 0:
                    queue.append((data[run_start : part.start], None, False))
                    run_start = -1
                queue.append((data[part.start : part.end], part, True))
            elif run_start < 0:
                run_start = part.start
        if run_start >= 0:
            queue.append((data[run_start:] if run_start else data, None, False))

    def _targets(self, message: int) -> bool:
        spec = self.spec
        if spec.message_scope == "proxy":
            index = spec.messages_seen
            spec.messages_seen += 1
        else:
            index = message
        if not spec.targets_message(index):
            return False
        self.session.acted(self.direction.stream, message, spec.name)
        return True

    def on_end(self, end: End) -> None:
        self.queue.append(end)
        self._pump()

    # -- what goes out -------------------------------------------------------------------------

    def _pump(self) -> None:
        # Not re-entered from the toxic passing bytes on: it must finish one piece first.
        if self.pumping:
            return
        self.pumping = True
        try:
            self._pump_queue()
        finally:
            self.pumping = False

    def _pump_queue(self) -> None:
        queue = self.queue
        while queue and not self.ended:
            item = queue[0]
            if isinstance(item, End):
                if self.inner is not None:
                    queue.popleft()
                    self.inner.on_end(item)
                elif self._idle():
                    queue.popleft()
                    self.emit_end(item)
                else:
                    return
                continue
            data, part, targeted = item
            if targeted:
                queue.popleft()
                inner = self.inner or self._create()
                self.given += len(data)
                if part is not None and self.spec.cls.protocols:  # a message toxic
                    if self.base:  # indexes as the connection counts them
                        part = part._replace(message=part.message + self.base)
                    inner.on_part(data, part)
                else:
                    inner.on_data(data)
            elif self._idle():
                queue.popleft()
                self.emit(data)
            else:
                return

    def _idle(self) -> bool:
        # A hanging toxic (truncate_* with then: hang) holds the stream: nothing passes it.
        return self.given == self.returned and not getattr(self.inner, "hanging", False)

    def _create(self) -> Toxic:
        inner = self.spec.cls(self.spec, GatePipe(self), GateOutput(self))
        self.inner = inner
        return inner

    def inner_passed(self, count: int) -> None:
        self.returned += count
        if self.queue and self._idle():
            self._pump()

    # -- the toxic's life ----------------------------------------------------------------------

    def on_update(self) -> None:
        if self.inner is not None:
            self.inner.on_update()

    def on_remove(self) -> None:
        if self.inner is not None:
            self.inner.on_remove()
        self.given = self.returned  # whatever the toxic still holds is released or gone
        while self.queue and not self.ended:
            item = self.queue.popleft()
            if isinstance(item, End):
                self.emit_end(item)
            else:
                self.emit(item[0])

    def on_close(self) -> None:
        if self.inner is not None:
            self.inner.on_close()
        self.queue.clear()


class GateOutput:
    """Where the gated toxic passes bytes on: through the gate, counted."""

    __slots__ = ("gate",)

    def __init__(self, gate: MessageGate) -> None:
        self.gate = gate

    def on_data(self, data: bytes) -> None:
        gate = self.gate
        gate.emit(data)
        gate.inner_passed(len(data))

    def on_end(self, end: End) -> None:
        self.gate.emit_end(end)


class GatePipe:
    """The gated toxic's view of its direction: the direction's, with its drops counted."""

    __slots__ = ("gate", "stream")

    def __init__(self, gate: MessageGate) -> None:
        self.gate = gate
        self.stream: str = gate.direction.stream

    @property
    def session(self) -> MessageSession:
        return self.gate.session

    def now(self) -> float:
        return self.gate.direction.now()

    def is_due(self, when: float) -> bool:
        return self.gate.direction.is_due(when)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return self.gate.direction.call_at(when, callback)

    def dropped(self, count: int) -> None:
        self.gate.direction.dropped(count)
        self.gate.inner_passed(count)

    def rng(self, spec: ToxicSpec) -> random.Random:
        return self.gate.direction.rng(spec)

    @property
    def opened_at(self) -> float:
        return self.gate.direction.opened_at
