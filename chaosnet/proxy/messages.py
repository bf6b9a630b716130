"""Messages on a proxy with a protocol: per-connection framing, reply order, and the message log.

Each connection of such a proxy has one :class:`MessageSession`: a framer per
direction that sees the bytes as they are read (before any toxic), the log records
of its messages, and the order in which replies go back to the client when an
``inject_reply`` toxic answers requests itself.

``GET /proxies/{name}/messages`` returns::

    {"history": 1000, "total": 5321, "messages": [record, ...]}

``total`` counts every message the proxy has seen; ``messages`` holds the newest
``history`` records, oldest first. A record (this format is stable: checks that
count requests on the wire read it)::

    connection  int    the connection's id, as in /connections
    stream      str    "upstream" (requests, client -> server) or "downstream" (replies)
    index       int    0-based, per connection and stream, in the order the proxy read them
    size        int    bytes of it read so far (final once complete)
    at          float  Unix time its first byte was read
    complete    bool   its last byte was read (false: still arriving, or the stream ended
                       or broke inside it)
    summary     str    "GET /path" or "200" (http1), the command name or "+OK" / "-ERR" /
                       the type (resp), "N bytes" (line, length_prefix)
    toxics      [str]  the toxics that acted on it
    interim     true   only on a message that is not a reply of its own: an HTTP 1xx
                       response, a RESP3 push
    injected    true   only on a reply made by inject_reply (never read from the server)
    forwarded   false  only on a request inject_reply kept from the server
    discarded   true   only on a server reply inject_reply replaced (forward: true)

Upstream records are what the client sent: a request ``forwarded: false`` never
reached the server, so "how many times did this request go over the wire" counts
the upstream records without it. Downstream records are what the server sent, plus
the injected replies, in the order the client got them.

A stream that breaks its protocol marks the connection *desynchronized* (its
connection record says why); from then on its bytes pass unchanged, uncounted, and
no message toxic acts on it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chaosnet.proxy.framers.base import FINAL, INTERIM, Buffer, Framer

if TYPE_CHECKING:
    from chaosnet.proxy.connlog import ConnectionRecord
    from chaosnet.proxy.framers import Protocol

#: What the downstream chain gets while replies are injected: server bytes, an injected
#: reply ``(payload,)``, or a count of server bytes dropped.
Piece = bytes | int | tuple[bytes]
RECENT = 64  # records a session keeps at hand for toxics to mark; older ones are only in the log


class MessageRecord:
    # One is made per message at up to a few 100,000 a second: the usual values are class
    # attributes, and an instance sets only what differs (no __slots__, on purpose).
    complete = False
    summary: str | None = None
    toxics: list[str] | None = None
    interim = False
    injected = False
    forwarded = True
    discarded = False

    def __init__(self, connection: int, stream: str, index: int, at: float = 0.0) -> None:
        self.connection = connection
        self.stream = stream
        self.index = index
        self.size = 0
        self.at = at or time.time()

    def ended(self, last: int, summary: str | None) -> None:
        """Its last byte was read (``last``: ``FINAL``, or ``INTERIM`` for an HTTP 1xx or a
        RESP push); ``summary`` is the framer's, if it gave one."""
        self.complete = True
        self.interim = last == INTERIM
        if summary is not None:
            self.summary = summary

    def acted(self, toxic: str) -> None:
        if self.toxics is None:
            self.toxics = [toxic]
        elif toxic not in self.toxics:
            self.toxics.append(toxic)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "connection": self.connection,
            "stream": self.stream,
            "index": self.index,
            "size": self.size,
            "at": self.at,
            "complete": self.complete,
            "summary": self.summary or f"{self.size} bytes",
            "toxics": list(self.toxics or ()),
        }
        for flag, value, usual in (
            ("interim", self.interim, False),
            ("injected", self.injected, False),
            ("forwarded", self.forwarded, True),
            ("discarded", self.discarded, False),
        ):
            if value != usual:
                body[flag] = value
        return body


class MessageLog:
    """A proxy's newest ``history`` message records, and how many it has seen."""

    def __init__(self, history: int) -> None:
        self.history = history
        self.total = 0
        self.records: deque[MessageRecord] = deque(maxlen=history)

    def add(self, record: MessageRecord) -> None:
        self.total += 1
        self.records.append(record)

    def to_json(self, connection: int | None = None) -> dict[str, Any]:
        records = self.records
        return {
            "history": self.history,
            "total": self.total,
            "messages": [
                r.to_json() for r in records if connection is None or r.connection == connection
            ],
        }


class Injection:
    """A reply an ``inject_reply`` toxic made for request ``request``."""

    __slots__ = ("forward", "payload", "record", "toxic")

    def __init__(self, payload: bytes, forward: bool, toxic: str) -> None:
        self.payload = payload
        self.forward = forward  # the server got the request: its own reply is discarded
        self.toxic = toxic
        self.record: MessageRecord | None = None


class MessageSession:
    """One connection's framing, message records and reply order."""

    def __init__(self, protocol: Protocol, record: ConnectionRecord, log: MessageLog) -> None:
        self.protocol = protocol
        self.shared = protocol.shared()
        self.connection = record
        record.framed = True
        self.log = log
        self.desynchronized: str | None = None
        self.up = StreamTracker(self, "upstream")
        self.down = StreamTracker(self, "downstream")
        # Reply order, once a reply has been injected (see route()).
        self.injections: dict[int, Injection] = {}
        self.client_next = 0  # the request whose reply goes to the client next
        self.server_next = 0  # the request the server's next reply answers
        self.deliver: Callable[[bytes], None] | None = None  # into the downstream chain
        # Downstream records in the order the client gets them (what downstream toxics see).
        self.client_replies: deque[MessageRecord] = deque(maxlen=RECENT)
        self.client_count = 0

    def tracker(self, stream: str) -> StreamTracker:
        return self.up if stream == "upstream" else self.down

    def desync(self, stream: str, reason: str) -> None:
        if self.desynchronized is None:
            self.desynchronized = f"{stream}: {reason}"
            self.connection.desync = self.desynchronized

    # -- what toxics mark ----------------------------------------------------------------------

    def record_for(self, stream: str, index: int) -> MessageRecord | None:
        """The record of message ``index`` as the toxics of ``stream`` count them."""
        if stream == "upstream":
            recent, base = self.up.recent, self.up.count - len(self.up.recent)
        else:
            recent = self.client_replies
            base = self.client_count - len(recent)
        at = index - base
        return recent[at] if 0 <= at < len(recent) else None

    def acted(self, stream: str, index: int, toxic: str) -> None:
        record = self.record_for(stream, index)
        if record is not None:
            record.acted(toxic)

    def _client_reply(self, record: MessageRecord) -> None:
        self.client_count += 1
        self.client_replies.append(record)

    # -- injected replies --------------------------------------------------------------------------

    @property
    def routing(self) -> bool:
        return bool(self.injections)

    def inject(self, request: int, payload: bytes, forward: bool, toxic: str) -> None:
        """Answer request ``request`` with ``payload``, in its turn among the replies."""
        self.injections[request] = Injection(payload, forward, toxic)
        upstream = self.record_for("upstream", request)
        if upstream is not None:
            upstream.acted(toxic)
            upstream.forwarded = forward
        if not forward and self.protocol.name == "http1":
            from chaosnet.proxy.framers.http1 import Exchange

            assert isinstance(self.shared, Exchange)
            self.shared.skip(request)
        out: list[Piece] = []
        self._advance(out)
        if self.deliver is not None:
            for piece in out:
                assert isinstance(piece, tuple)
                self.deliver(piece[0])

    def _advance(self, out: list[Piece]) -> None:
        """Emit the injected replies whose turn has come."""
        injection = self.injections.get(self.client_next)
        while injection is not None:
            record = MessageRecord(self.connection.id, "downstream", self.down.count)
            record.size = len(injection.payload)
            record.complete = record.injected = True
            record.summary = f"injected by {injection.toxic}"
            record.acted(injection.toxic)
            self.down.count += 1
            self.log.add(record)
            self._client_reply(record)
            out.append((injection.payload,))
            if not injection.forward:
                del self.injections[self.client_next]
            else:
                injection.payload = b""  # sent; its server reply is still to be discarded
                injection.record = record
            self.client_next += 1
            injection = self.injections.get(self.client_next)

    def _server_request(self) -> int:
        """The request the server's next reply answers: skip those it never got."""
        injections = self.injections
        while True:
            found = injections.get(self.server_next)
            if found is None or found.forward:
                return self.server_next
            self.server_next += 1


class StreamTracker:
    """One direction's framer as the proxy reads: counts, records, desynchronization."""

    __slots__ = (
        "count",
        "current",
        "discarding",
        "framer",
        "recent",
        "request",
        "session",
        "stream",
    )

    def __init__(self, session: MessageSession, stream: str) -> None:
        self.session = session
        self.stream = stream
        framer: Framer = session.protocol.framer(stream, session.shared)
        if framer.summarises:
            framer.summaries = []
        framer.coarse = True  # it only counts and measures messages
        self.framer = framer
        self.count = 0  # records made for this stream
        self.current: MessageRecord | None = None  # the message being read
        self.recent: deque[MessageRecord] = deque(maxlen=RECENT)
        self.request = -1  # downstream, routing: the request the current reply answers
        self.discarding = False

    def observe(self, data: Buffer, start: int, end: int) -> None:
        """Frame ``data[start:end]``: count and log the messages in it."""
        if self.session.desynchronized is not None:
            return
        framer = self.framer
        parts = framer.scan(data, start, end)
        summaries = framer.summaries
        pending = iter(summaries or ())  # one per message that ended in this scan
        current = self.current
        downstream = self.stream == "downstream"
        now = time.time()  # one read, one time
        for part in parts:
            if part.offset == 0 and part.kind != "unframed":
                current = self._start(now)
                if downstream:
                    self.request = self.session.server_next
            if current is None:
                continue
            current.size += part.end - part.start
            if part.last:
                current.ended(part.last, next(pending, None))
                current = None
                if downstream and part.last == FINAL:  # keep the reply order's count
                    self.session.server_next = self.session.client_next = self.request + 1
        self.current = current
        if summaries:
            summaries.clear()
        if framer.error is not None:
            self._desync(framer.error)

    def _start(self, now: float = 0.0) -> MessageRecord:
        record = MessageRecord(self.session.connection.id, self.stream, self.count, now)
        self.count += 1
        self.recent.append(record)
        log = self.session.log  # MessageLog.add, inlined: once per message
        log.total += 1
        log.records.append(record)
        if self.stream == "upstream":
            self.session.connection.messages_upstream += 1
        else:
            self.session.connection.messages_downstream += 1
            if not self.session.routing:
                self.session._client_reply(record)
        return record

    def _desync(self, reason: str) -> None:
        self.session.desync(self.stream, reason)
        if self.current is not None and self.current.summary is None:
            self.current.summary = framer_summary(self.framer, self.current)

    def eof(self) -> None:
        if self.session.desynchronized is not None:
            return
        ended = self.framer.eof()
        current = self.current
        if current is not None:
            if ended is not None:
                current.complete = True
            if self.framer.summaries:
                current.summary = self.framer.summaries.pop()
            elif current.summary is None:
                current.summary = framer_summary(self.framer, current)
            self.current = None

    def route(self, data: bytes) -> list[Piece]:
        """Downstream, once a reply was injected: the server's bytes with replies spliced in.

        Returns what goes into the chain, in order: the server's bytes, ``(payload,)``
        for an injected reply, and ints for bytes dropped (a discarded server reply).
        """
        session = self.session
        if session.desynchronized is not None:
            return [data]
        parts = self.framer.scan(data, 0, len(data))
        summaries = self.framer.summaries
        pending = iter(summaries or ())
        out: list[Piece] = []
        for part in parts:
            if part.kind == "unframed":
                out.append(data[part.start : part.end])
                continue
            if part.offset == 0:
                self._reply_starts(out)
            current = self.current
            assert current is not None
            size = part.end - part.start
            current.size += size
            out.append(size if self.discarding else data[part.start : part.end])
            if part.last:
                current.ended(part.last, next(pending, None))
                if part.last == FINAL:
                    self._reply_ends(out)
                self.current = None
        if summaries:
            summaries.clear()
        if self.framer.error is not None:
            self._desync(self.framer.error)
        return out

    def _reply_starts(self, out: list[Piece]) -> None:
        session = self.session
        record = self._start()
        self.current = record
        self.request = session._server_request()
        injection = session.injections.get(self.request)
        self.discarding = injection is not None and injection.forward
        if self.discarding:
            record.discarded = True
            assert injection is not None
            record.acted(injection.toxic)
        else:
            session._advance(out)  # injected replies due before this one
            session._client_reply(record)

    def _reply_ends(self, out: list[Piece]) -> None:
        session = self.session
        session.server_next = self.request + 1
        if self.discarding:
            session.injections.pop(self.request, None)
            self.discarding = False
        else:
            session.client_next = self.request + 1
        session._advance(out)


def framer_summary(framer: Framer, record: MessageRecord) -> str | None:
    summary = framer.summary() if framer.summarises else ""
    return summary or None
