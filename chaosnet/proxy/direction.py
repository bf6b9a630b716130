"""One direction of a proxied connection: read the source, run the toxic chain, write.

The no-toxic path is the hot one. It reads into a buffer shared by the whole
engine (``recv_into``: no allocation, no page faults) and sends straight from it;
only an unsent remainder is copied, and reading pauses until it is written. The
read size adapts per direction, from 64 KiB up to 1 MiB while the destination
takes everything it is given and back down when it does not, so a bulk transfer
gets large reads and a thousand slow readers do not each hold a megabyte (and
while the engine is over its buffer budget, reads are 64 KiB).
``os.splice`` was measured as an alternative and was slower on loopback (the
receiver pays for page-fragment buffers), see docs/proxy.md.

With toxics the direction reads 64 KiB chunks (Toxiproxy reads 32 KiB), hands
them to the first stage, and the last stage hands them back to the direction,
which is also the chain's sink. Flow control counts ``in_flight`` bytes -- read
but neither written nor dropped -- and stops reading above ``HIGH_WATER`` until
it falls to ``LOW_WATER`` (0 without toxics), so a slow reader or a long latency
never makes the proxy buffer without bound. The engine's
:class:`~chaosnet.proxy.budget.BufferBudget` adds up every direction's count and,
over its limit, pauses the directions holding more than their share.
The chain itself, the ``Pipe`` its toxics use and that count are a
:class:`~chaosnet.proxy.chain.Chain`'s, as on a datagram flow's paths.

A direction knows its connection only as a :class:`DirectionOwner` (the link:
whether it runs, how to close it) and gets everything engine-wide from the
:class:`~chaosnet.proxy.runtime.Runtime` it is handed, so it can be built and
tested on its own.

Every callback here is called by the event loop with nothing above it to catch
an exception, so each one runs through :meth:`Direction._guarded`, which hands an
exception to the owner; the owner records it, resets that one connection and
reports it to the engine's error list.
"""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Protocol, TypeVar

from chaosnet.proxy.budget import MAX_READ, MIN_READ
from chaosnet.proxy.chain import Chain, ChainOwner
from chaosnet.proxy.gate import MessageGate
from chaosnet.proxy.toxics.base import End, Receiver, Toxic, ToxicSpec

if TYPE_CHECKING:
    from chaosnet.proxy.messages import StreamTracker
    from chaosnet.proxy.runtime import Runtime

MAX_IOV = 64
Data = TypeVar("Data")  # what a socket's send takes: one buffer, or a list for sendmsg


class DirectionOwner(ChainOwner, Protocol):
    """What a direction needs from its connection (a :class:`~chaosnet.proxy.link.Link`)."""

    def source_ended(self, side: str) -> None:
        """``side`` (the direction's source) sent FIN."""

    def half_closed(self) -> None:
        """The direction passed its source's FIN on to its destination."""

    def close(self, by: str, kind: str) -> None:
        """Close the whole connection (``kind`` ``fin`` or ``rst``)."""

    def aborted(self, side: str, exc: OSError) -> None:
        """A socket error on ``side``."""

    def fail(self, exc: BaseException) -> None:
        """An exception escaped the direction: record it, reset the connection."""


class Direction(Chain[DirectionOwner]):
    transport = "tcp"

    __slots__ = (
        "buffer",
        "deferring",
        "dest_name",
        "dst",
        "forwarded",
        "half_closed",
        "out",
        "paused",
        "pending_end",
        "poller",
        "read_size",
        "reading",
        "received",
        "source_name",
        "src",
        "src_fd",
        "src_open",
        "tracker",
        "writing",
    )

    def __init__(
        self,
        owner: DirectionOwner,
        runtime: Runtime,
        src: socket.socket,
        dst: socket.socket,
        stream: str,
    ) -> None:
        super().__init__(owner, runtime, stream)
        self.poller = runtime.poller
        self.buffer = runtime.buffer
        self.read_size = MIN_READ
        self.src = src
        self.dst = dst
        self.src_fd = src.fileno()
        # On a proxy with a protocol: frames what is read, for the message log and targeting.
        self.tracker: StreamTracker | None = None
        self.source_name = "client" if stream == "upstream" else "upstream"
        self.dest_name = "upstream" if stream == "upstream" else "client"
        self.out: deque[bytes | memoryview] = deque()
        self.forwarded = 0
        self.received = 0  # bytes read from src (forwarded counts those written to dst)
        self.reading = False
        self.writing = False
        self.paused = False
        self.src_open = True
        self.pending_end: End | None = None
        self.half_closed = False
        self.deferring = False  # queue instead of sending (set while a toxic is removed)

    # -- the chain ----------------------------------------------------------------

    def new_stage(self, spec: ToxicSpec, after: Receiver) -> Toxic:
        if spec.framed:
            return MessageGate(spec, self, after)
        return super().new_stage(spec, after)

    def remove_stage(self, stage: Toxic) -> None:
        # What the stage held is passed on now but sent by the writer in the poller's
        # turns, so removing a toxic from many busy connections stays cheap.
        self.deferring = True
        try:
            stage.on_remove()
        finally:
            self.deferring = False
        if self.unlink(stage):
            self._maybe_resume()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._start_reading()

    def shut(self) -> None:
        """Stop all I/O and timers; the link closes the sockets."""
        self._stop_reading()
        if self.writing:
            self.writing = False
            self.poller.clear_writer(self.dst.fileno())
        self.out.clear()
        self.close_stages()  # what it held is gone: given back to the engine's budget

    def _start_reading(self) -> None:
        if not self.reading and self.src_open and not self.paused and self.owner.running:
            self.reading = True
            self.poller.set_reader(self.src_fd, partial(self._guarded, self._read))

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.poller.clear_reader(self.src_fd)

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run a poller callback (nothing above it catches): an exception fails the owner."""
        try:
            step()
        except Exception as exc:
            self.owner.fail(exc)

    # -- reading --------------------------------------------------------------------

    def _read(self) -> None:
        fast = self.head is self and not self.out
        if not fast and self.in_flight and self.budget.must_pause(self.in_flight):
            self._pause()  # over the engine's budget and holding more than its share
            return
        if not fast:
            view = self.buffer.small
        elif self.budget.over_limit():
            view = self.buffer.small  # the engine is over its budget: small reads only
        else:
            view = self.buffer.view[: self.read_size]
        try:
            count = self.src.recv_into(view)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.owner.aborted(self.source_name, exc)
            return
        self.received += count
        if count == 0:
            self._source_eof()
        elif self.tracker is not None:
            self._framed(view, count, fast)
        elif fast:
            self._forward(view, count)
        else:
            self._hold(count)
            self.head.on_data(bytes(view[:count]))
            if self.budget.must_pause(self.in_flight):
                self._pause()

    def _framed(self, view: memoryview, count: int, fast: bool) -> None:
        """Read on a proxy with a protocol: the tracker frames (and may re-route) the bytes."""
        tracker = self.tracker
        assert tracker is not None
        if not tracker.session.routing:
            tracker.observe(self.buffer.array, 0, count)
            if fast:
                self._forward(view, count)
                return
            data = bytes(view[:count])
            self._hold(count)
            self.head.on_data(data)
        else:
            self._hold(count)
            for piece in tracker.route(bytes(view[:count])):
                if isinstance(piece, int):
                    self._release(piece)  # a server reply an injected one replaced
                elif isinstance(piece, tuple):
                    self.inject(piece[0])
                else:
                    self.head.on_data(piece)
        if self.budget.must_pause(self.in_flight):
            self._pause()

    def inject(self, payload: bytes) -> None:
        """A reply made by the proxy (inject_reply) enters the chain as if it was read."""
        if self.owner.running and payload:
            self._hold(len(payload))
            self.head.on_data(payload)

    def _forward(self, view: memoryview, count: int) -> None:
        """No toxic, nothing queued: send straight from the read buffer."""
        sent = self._sent(self.dst.send, view[:count])
        if sent is None:
            return
        if sent < count:
            self._hold(count - sent)
            self._queue(bytes(view[sent:count]))
            self._pause()
            self.read_size = max(MIN_READ, self.read_size // 2)
        elif count == self.read_size and count < MAX_READ:
            self.read_size = count * 2

    def _pause(self) -> None:
        self.paused = True
        self._stop_reading()

    def _maybe_resume(self) -> None:
        if not self.paused:
            return
        # Without toxics, read again once the backlog is written.
        ready = self.in_flight <= 0 if self.head is self else self.budget.may_resume(self.in_flight)
        if ready:
            self.paused = False
            self._start_reading()

    def _release(self, count: int) -> None:
        if not self.owner.running:
            return  # shut() gave everything back already
        self.budget.give_back(self.in_flight, count)
        self.in_flight -= count
        if self.paused:
            self._maybe_resume()

    def _source_eof(self) -> None:
        self.src_open = False
        self._stop_reading()
        self.owner.source_ended(self.source_name)
        if self.tracker is not None:
            self.tracker.eof()
        self.head.on_end(End("eof", self.source_name))

    # -- the sink: what the last stage hands on -------------------------------------------

    def on_data(self, data: bytes) -> None:
        if not data or not self.owner.running:
            return
        if self.out or self.pending_end is not None or self.deferring:
            self._queue(data)
            return
        sent = self._sent(self.dst.send, data)
        if sent is None:
            return
        if sent < len(data):
            self._queue(memoryview(data)[sent:])
        self._release(sent)

    def on_end(self, end: End) -> None:
        if not self.owner.running:
            return
        if self.out and end.kind != "rst":
            self.pending_end = end  # after the queued data
            return
        self._finish(end)

    def _finish(self, end: End) -> None:
        if end.kind == "eof":
            self.half_closed = True
            with contextlib.suppress(OSError):  # a peer already gone shows on the other side
                self.dst.shutdown(socket.SHUT_WR)
            self.owner.half_closed()
        else:
            self.owner.close(end.by, end.kind)

    def _queue(self, data: bytes | memoryview) -> None:
        self.out.append(data)
        if not self.writing:
            self.writing = True
            self.poller.set_writer(self.dst.fileno(), partial(self._guarded, self._write))

    def _write(self) -> None:
        out = self.out
        while out:
            single = len(out) == 1
            batch = [out[i] for i in range(1 if single else min(len(out), MAX_IOV))]
            offered = sum(len(part) for part in batch)
            if single:
                sent = self._sent(self.dst.send, batch[0])
            else:
                sent = self._sent(self.dst.sendmsg, batch)
            if sent is None:
                return
            if not sent:
                break  # the destination is full: the poller calls again
            self._consume(sent)
            self._release(sent)
            if not self.owner.running:
                return
            if sent < offered:
                break
        if not out and self.writing:
            self.writing = False
            self.poller.clear_writer(self.dst.fileno())
            if self.pending_end is not None:
                end, self.pending_end = self.pending_end, None
                self._finish(end)

    def _sent(self, send: Callable[[Data], int], data: Data) -> int | None:
        """How much of ``data`` the destination took (0: it is full, try later); None if
        its socket failed (the owner was told)."""
        try:
            sent = send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self.owner.aborted(self.dest_name, exc)
            return None
        self.forwarded += sent
        return sent

    def _consume(self, sent: int) -> None:
        """Drop the first ``sent`` bytes from the queue."""
        out = self.out
        while sent:
            head = out[0]
            if len(head) <= sent:
                sent -= len(head)
                out.popleft()
            else:
                out[0] = memoryview(head)[sent:]
                sent = 0
