"""What the proxies saw, read as the client's behaviour: verdicts that need no client counter.

The proxy's connection log records every connection it accepted: when, who
closed it first, bytes each way. :class:`Wire` puts those records on the
workload's clock (seconds since it started) and answers, per request or per
proxy, what the client did, whatever the client says about itself:

- **attempts**: a request's attempts are the connections opened for it (from
  the end of the previous request to its own end) plus the connection it was
  using when that one failed under it (closed by the proxy, a toxic or the
  server while the request ran). Refused connects never reach a proxy, so they
  are counted by nobody: the wire gives a lower bound, and the runner keeps the
  larger of it and the client's own count.
- **sends**: of the connections opened for a request, the ones that carried
  bytes to the server; a request sent on two connections went out twice. A proxy with a message log
  (``messages``) counts requests themselves, also on one connection.
- **outages on the wire**: runs of failed connections on one proxy (closed by
  someone other than the client before a byte came back), each with the
  connection that ended it. The gaps between their opens are the client's
  reconnect delays: their rate and whether they grow are its backoff.

Attribution assumes the workload's requests run one at a time, as
``ctx.schedule()`` hands them out.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chaosnet.control import ConnectionLogInfo
from chaosnet.scenario.workloads import RequestRecord

#: A run of failed connections shorter than this says nothing about a reconnect rate.
MIN_OUTAGE_CONNECTIONS = 3


@dataclass(frozen=True)
class WireConnection:
    """One connection a proxy accepted, on the workload's clock."""

    proxy: str
    id: int
    opened: float
    closed: float | None
    closed_by: str | None
    bytes_up: int
    bytes_down: int

    @property
    def failed(self) -> bool:
        """Ended by someone other than the client before any byte came back."""
        return (
            self.closed is not None
            and self.closed_by not in (None, "client")
            and self.bytes_down == 0
        )

    @property
    def failed_by_other(self) -> bool:
        """Closed by the proxy, a toxic or the server (not by the client)."""
        return self.closed is not None and self.closed_by not in (None, "client")


class MessageCounter(Protocol):
    """A proxy's message log, where it has one: how many requests went out in a window."""

    def requests_between(self, proxy: str, start: float, end: float) -> int: ...


@dataclass(frozen=True)
class WireOutage:
    """A run of failed connections on one proxy, and the connection that came after it."""

    proxy: str
    failed: tuple[WireConnection, ...]
    next: WireConnection | None

    @property
    def opens(self) -> list[float]:
        times = [c.opened for c in self.failed]
        return times + ([self.next.opened] if self.next is not None else [])

    @property
    def gaps(self) -> list[float]:
        """Seconds between consecutive connects: the client's reconnect delays."""
        opens = self.opens
        return [b - a for a, b in itertools.pairwise(opens)]

    @property
    def rate(self) -> float:
        """Connects per second over the outage."""
        opens = self.opens
        span = opens[-1] - opens[0]
        return (len(opens) - 1) / span if span > 0 else float("inf")

    def describe(self) -> str:
        opens = self.opens
        return (
            f"{self.proxy}: {len(self.failed)} failed connections from "
            f"{opens[0] * 1000:.1f}ms to {opens[-1] * 1000:.1f}ms"
        )


class Wire:
    """Every proxy's connections during one run, on the workload's clock."""

    def __init__(
        self,
        connections: Iterable[WireConnection],
        *,
        truncated: Iterable[str] = (),
        messages: MessageCounter | None = None,
    ) -> None:
        self.connections = sorted(connections, key=lambda c: (c.opened, c.proxy, c.id))
        #: Proxies whose log kept fewer records than connections they accepted.
        self.truncated = sorted(set(truncated))
        self.messages = messages

    @classmethod
    def from_logs(
        cls,
        logs: Mapping[str, ConnectionLogInfo],
        wall_origin: float,
        messages: MessageCounter | None = None,
    ) -> Wire:
        """``wall_origin``: the Unix time the workload started (the log's clock is Unix
        time). Connections opened before it (a stage reused from an earlier run) are left
        out."""
        connections = [
            WireConnection(
                proxy=name,
                id=record.id,
                opened=record.opened_at - wall_origin,
                closed=None if record.closed_at is None else record.closed_at - wall_origin,
                closed_by=record.closed_by,
                bytes_up=record.bytes_upstream,
                bytes_down=record.bytes_downstream,
            )
            for name, log in logs.items()
            for record in log.records
            if record.opened_at >= wall_origin  # older ones belong to an earlier run
        ]
        truncated = [name for name, log in logs.items() if log.opened > len(log.records)]
        return cls(connections, truncated=truncated, messages=messages)

    def of(self, proxy: str) -> list[WireConnection]:
        return [c for c in self.connections if c.proxy == proxy]

    # -- per request ------------------------------------------------------------------

    def per_request(
        self, requests: Sequence[RequestRecord]
    ) -> dict[int, tuple[list[WireConnection], WireConnection | None]]:
        """Per request index: the connections opened for it, and the one it was using when
        that one failed under it (or None)."""
        ordered = sorted(requests, key=lambda r: r.started)
        ends = [r.ended for r in ordered]
        found: dict[int, tuple[list[WireConnection], WireConnection | None]] = {
            r.index: ([], None) for r in ordered
        }
        for conn in self.connections:
            at = bisect.bisect_left(ends, conn.opened)  # the first request not over by then
            if at < len(ordered):
                found[ordered[at].index][0].append(conn)
        previous_ok = True
        for request in ordered:
            opened, _ = found[request.index]
            # A connection that died as the previous request failed died under that one,
            # however late the proxy noted the close.
            broken = self._broke_under(request, opened) if previous_ok else None
            found[request.index] = (opened, broken)
            previous_ok = request.ok
        return found

    def _broke_under(
        self, request: RequestRecord, opened: list[WireConnection]
    ) -> WireConnection | None:
        """The connection open before ``request`` that failed while it ran, if any."""
        before = [
            c
            for c in self.connections
            if c.opened < request.started
            and c not in opened
            and c.failed_by_other
            and c.closed is not None
            and request.started <= c.closed <= request.ended
        ]
        return before[-1] if before else None

    def attempts(self, requests: Sequence[RequestRecord]) -> dict[int, int]:
        """Per request index, the attempts the proxies saw (0: none seen)."""
        seen: dict[int, int] = {}
        for index, (opened, broken) in self.per_request(requests).items():
            count = len(opened) + (1 if broken is not None else 0)
            if count == 0 and self._in_use(requests, index):
                count = 1  # carried by a connection opened for an earlier request
            seen[index] = count
        return seen

    def _in_use(self, requests: Sequence[RequestRecord], index: int) -> bool:
        request = next(r for r in requests if r.index == index)
        return any(
            c.opened < request.started and (c.closed is None or c.closed >= request.started)
            for c in self.connections
        )

    def sends(self, requests: Sequence[RequestRecord]) -> dict[int, int]:
        """Per request index, how many times it went out to a server."""
        counted: dict[int, int] = {}
        by_index = {r.index: r for r in requests}
        for index, (opened, _) in self.per_request(requests).items():
            if self.messages is not None:
                request = by_index[index]
                counted[index] = sum(
                    self.messages.requests_between(proxy, request.started, request.ended)
                    for proxy in {c.proxy for c in self.connections}
                )
                continue
            # Only connections opened for it: whether an older one carried this request
            # before it broke, the totals of a connection log cannot tell.
            counted[index] = sum(1 for c in opened if c.bytes_up > 0)
        return counted

    # -- per proxy ----------------------------------------------------------------------

    def outages(self) -> list[WireOutage]:
        """Runs of at least MIN_OUTAGE_CONNECTIONS failed connections, per proxy."""
        found: list[WireOutage] = []
        for proxy in sorted({c.proxy for c in self.connections}):
            run: list[WireConnection] = []
            for conn in [*self.of(proxy), None]:
                if conn is not None and conn.failed:
                    run.append(conn)
                    continue
                if len(run) + (conn is not None) >= MIN_OUTAGE_CONNECTIONS and run:
                    found.append(WireOutage(proxy, tuple(run), conn))
                run = []
        return found
