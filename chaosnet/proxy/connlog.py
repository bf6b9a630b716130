"""Per-proxy connection log: exact counters plus a bounded history of records.

``GET /proxies/{name}/connections`` returns::

    {"opened": 3, "open": 1, "history": 1000, "connections": [record, ...]}

``opened`` counts every connection the proxy accepted (reset-on-accept ones too;
the listener's own filler connections are never counted) and ``open`` those not yet
closed; both are exact. ``connections`` holds the newest ``history`` records, oldest
first. A record::

    id                int    1, 2, 3 ... in accept order, per proxy
    client            str    the client's "host:port"
    opened_at         float  Unix time the proxy accepted it
    closed_at         float  Unix time it was fully closed, null while open
    bytes_upstream    int    bytes written to the upstream server (client -> server)
    bytes_downstream  int    bytes written to the client (server -> client)
    closed_by         str    who closed first: "client", "upstream", "toxic <name>",
                             or "proxy" (disabled, deleted, changed, stopped, or an
                             internal error); null while nobody has
    close_kind        str    how that first close was made: "fin" (orderly) or "rst"
                             (reset); null while nobody has closed
    toxics            [str]  names of the toxics that applied to it (toxicity and
                             skip/max targeting passed), in the order they applied
    error             str    why the proxy closed it, when it was an error
                             (e.g. the upstream refused); otherwise absent

On a proxy with a protocol (see ``messages.py``) a record also has::

    messages_upstream    int   requests read from the client (started, complete or not)
    messages_downstream  int   replies read from the server
    desynchronized       bool  a stream broke its protocol: from then on its bytes
                               passed unframed and no message toxic acted on it
    desync               str   which stream and why, when desynchronized

Byte counts are live for open connections. A half-close (one side sent FIN and
the other is still sending) leaves the connection open; ``closed_by`` already
names who sent that first FIN.

``?wait_open=N&timeout_ms=T`` makes the request wait (at most T ms) until exactly N
connections are open before answering: a test that closed its client waits for the
proxy to see the close on an event, not by polling.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

DEFAULT_HISTORY = 1000


class ConnectionRecord:
    __slots__ = (
        "bytes_counter",
        "client",
        "close_kind",
        "closed_at",
        "closed_by",
        "desync",
        "error",
        "framed",
        "id",
        "messages_downstream",
        "messages_upstream",
        "opened_at",
        "toxics",
    )

    def __init__(self, conn_id: int, client: str) -> None:
        self.id = conn_id
        self.client = client
        self.opened_at = time.time()
        self.closed_at: float | None = None
        self.closed_by: str | None = None
        self.close_kind: str | None = None
        self.error: str | None = None
        self.toxics: list[str] = []
        self.framed = False  # the proxy had a protocol when it was accepted
        self.messages_upstream = 0
        self.messages_downstream = 0
        self.desync: str | None = None
        # Returns (bytes_upstream, bytes_downstream); live while the link runs.
        self.bytes_counter: Callable[[], tuple[int, int]] = _no_bytes

    def first_close(self, by: str, kind: str) -> None:
        """Remember who closed first; later closes do not overwrite it."""
        if self.closed_by is None:
            self.closed_by = by
            self.close_kind = kind

    def to_json(self) -> dict[str, Any]:
        upstream, downstream = self.bytes_counter()
        body: dict[str, Any] = {
            "id": self.id,
            "client": self.client,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "bytes_upstream": upstream,
            "bytes_downstream": downstream,
            "closed_by": self.closed_by,
            "close_kind": self.close_kind,
            "toxics": list(self.toxics),
        }
        if self.error is not None:
            body["error"] = self.error
        if self.framed:
            body["messages_upstream"] = self.messages_upstream
            body["messages_downstream"] = self.messages_downstream
            body["desynchronized"] = self.desync is not None
            if self.desync is not None:
                body["desync"] = self.desync
        return body


def _no_bytes() -> tuple[int, int]:
    return 0, 0


class ConnectionLog:
    record_type: type[ConnectionRecord] = ConnectionRecord  # a flow log keeps flow records

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        self.history = history
        self.opened = 0
        self.open = 0
        self._records: deque[ConnectionRecord] = deque(maxlen=history)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def opening(self, client: str) -> ConnectionRecord:
        self.opened += 1
        self.open += 1
        record = self.record_type(self.opened, client)
        self._records.append(record)
        self._wake()
        return record

    async def wait_open(self, count: int, timeout: float) -> None:
        """Return once exactly ``count`` connections are open, or after ``timeout`` s."""
        if self.open == count:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((count, waiter))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters = [(c, w) for c, w in self._waiters if w is not waiter]

    def _wake(self) -> None:
        for count, waiter in self._waiters:
            if count == self.open and not waiter.done():
                waiter.set_result(None)

    def closed(self, record: ConnectionRecord, by: str, kind: str) -> None:
        if record.closed_at is not None:
            return
        record.first_close(by, kind)
        record.closed_at = time.time()
        counts = record.bytes_counter()
        record.bytes_counter = lambda: counts  # freeze: drop the reference to the link
        self.open -= 1
        self._wake()

    def to_json(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "open": self.open,
            "history": self.history,
            "connections": [record.to_json() for record in self._records],
        }
