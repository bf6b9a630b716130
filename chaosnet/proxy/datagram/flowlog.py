"""The flow log of a datagram proxy: ``GET /proxies/{name}/connections`` for flows.

The envelope is the connection log's (``opened``, ``open``, ``history``,
``connections``, and ``?wait_open=N`` waits on flows); each record is a flow::

    id                    int    1, 2, 3 ... in the order flows were created, per proxy
    client                str    the client's "host:port" (the flow's key)
    opened_at             float  Unix time of the flow's first datagram
    closed_at             float  Unix time it was closed, null while open
    closed_by             str    "idle" (flow_timeout passed without a datagram either
                                 way), "toxic <name>" (a timeout toxic's time limit),
                                 or "proxy" (disabled, deleted, changed, stopped, or an
                                 internal error); null while open
    close_kind            null   always (a flow has no FIN or RST)
    datagrams_upstream    int    datagrams sent to the upstream (client -> server)
    datagrams_downstream  int    datagrams sent to the client (server -> client)
    bytes_upstream        int    their bytes, as sent (after truncation)
    bytes_downstream      int
    toxics                [str]  names of the toxics that applied to it, in order
    toxic_counts          {name: {"dropped", "duplicated", "reordered", "truncated",
                                  "corrupted": int}}  what each applied toxic did, in
                                 datagrams (a duplicate counts the extra copies)
    send_errors           int    datagrams the proxy could not send (the destination's
                                 buffer was full, or an ICMP error such as nothing
                                 listening upstream); only when > 0
    overflow              int    datagrams dropped because the engine's buffer budget
                                 was full (toxics held too much); only when > 0
    error                 str    the last send error or an internal error; else absent

Counts are live for open flows and frozen when the flow closes.
"""

from __future__ import annotations

from typing import Any, Protocol

from chaosnet.proxy.connlog import ConnectionLog, ConnectionRecord


class Path(Protocol):
    """A flow's direction, as its record reads it: what it sent on."""

    datagrams: int
    bytes: int


COUNTS = ("dropped", "duplicated", "reordered", "truncated", "corrupted")


class FlowRecord(ConnectionRecord):
    __slots__ = ("frozen", "overflow", "paths", "send_errors", "toxic_counts")

    def __init__(self, conn_id: int, client: str) -> None:
        super().__init__(conn_id, client)
        self.paths: tuple[Path, Path] | None = None
        self.frozen = (0, 0, 0, 0)
        self.toxic_counts: dict[str, dict[str, int]] = {}
        self.send_errors = 0
        self.overflow = 0

    def counted(self, toxic: str, what: str, count: int = 1) -> None:
        counts = self.toxic_counts.get(toxic)
        if counts is None:
            counts = self.toxic_counts[toxic] = dict.fromkeys(COUNTS, 0)
        counts[what] += count

    def totals(self) -> tuple[int, int, int, int]:
        """(datagrams upstream, datagrams downstream, bytes upstream, bytes downstream)."""
        if self.paths is None:
            return self.frozen
        up, down = self.paths
        return up.datagrams, down.datagrams, up.bytes, down.bytes

    def freeze(self) -> None:
        """The flow closed: keep its counts, drop the reference to it."""
        self.frozen = self.totals()
        self.paths = None

    def to_json(self) -> dict[str, Any]:
        datagrams_up, datagrams_down, bytes_up, bytes_down = self.totals()
        body: dict[str, Any] = {
            "id": self.id,
            "client": self.client,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
            "close_kind": None,
            "datagrams_upstream": datagrams_up,
            "datagrams_downstream": datagrams_down,
            "bytes_upstream": bytes_up,
            "bytes_downstream": bytes_down,
            "toxics": list(self.toxics),
            "toxic_counts": {name: dict(counts) for name, counts in self.toxic_counts.items()},
        }
        if self.send_errors:
            body["send_errors"] = self.send_errors
        if self.overflow:
            body["overflow"] = self.overflow
        if self.error is not None:
            body["error"] = self.error
        return body


class FlowLog(ConnectionLog):
    record_type = FlowRecord

    def opening_flow(self, client: str) -> FlowRecord:
        record = self.opening(client)
        assert isinstance(record, FlowRecord)
        return record
