"""The data of a run's picture: rows, fault bands, requests, connections and verdicts.

One :class:`Picture` per scenario (or per failing test). Every time is in seconds
since the workload started (a test: since its body started), so a band, a request
and a connection line up on one axis. The HTML page embeds exactly this data, as
JSON, and draws it; tests read it back from the page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["first try", "after retries", "failed"]
#: How a connection ended, as drawn (its exact ``closed_by`` and ``close_kind`` are kept).
Ending = Literal["FIN", "RST", "by a toxic", "by the proxy", "still open"]
OUTCOMES: tuple[Outcome, ...] = ("first try", "after retries", "failed")
ENDINGS: tuple[Ending, ...] = ("FIN", "RST", "by a toxic", "by the proxy", "still open")


def proxy_row(name: str) -> str:
    return f"proxy {name}"


def server_row(name: str) -> str:
    return f"server {name}"


@dataclass(frozen=True)
class Band:
    """A fault on one row, from the moment its step started to the moment its lifting
    step had finished; ``lifted`` is False for a fault still in place at the end."""

    row: str
    kind: str  # "toxic", "disabled", "killed", "stopped", "paused", "restart", "step failed"
    label: str  # what the band says: "latency latency_downstream", "disabled"
    start: float
    end: float
    lifted: bool
    detail: str = ""


@dataclass(frozen=True)
class Moment:
    """An instant on a row: a toxic updated, an expectation broken."""

    row: str
    at: float
    label: str
    detail: str = ""


@dataclass(frozen=True)
class RequestMark:
    """One request, drawn at its start time with its latency."""

    index: int
    start: float
    latency: float
    outcome: Outcome
    attempts: int
    endpoint: str  # "main (127.0.0.1:40123)"
    error: str = ""  # "RetryError: ...; last error: ConnectionResetError: ..."
    tries: str = ""  # each failed attempt, one per line


@dataclass(frozen=True)
class RequestBin:
    """First-try requests drawn together (see :mod:`chaosnet.picture.sample`)."""

    start: float
    end: float
    count: int
    low: float  # latencies: fastest, median, slowest
    median: float
    high: float


@dataclass(frozen=True)
class ConnectionLine:
    """One connection through a proxy, from its accept to its close."""

    proxy: str
    id: int
    opened: float
    closed: float | None  # None: still open when the log was read
    ending: Ending
    closed_by: str
    client: str
    bytes_up: int
    bytes_down: int
    toxics: str  # the toxics that applied, comma-separated


@dataclass(frozen=True)
class Verdict:
    name: str
    passed: bool
    expected: str
    detail: str
    failed_at: float | None = None


@dataclass
class Picture:
    """Everything one scenario's (or one test's) picture shows."""

    title: str
    kind: Literal["scenario", "test"]
    status: str  # "passed", "failed", "error"
    seed: int
    backend: str
    source: str  # the scenario file, or the test's node id
    replay: str
    end: float  # the workload's end: where the axis stops
    rows: list[str] = field(default_factory=list)  # proxies first, then servers
    bands: list[Band] = field(default_factory=list)
    moments: list[Moment] = field(default_factory=list)
    requests: list[RequestMark] = field(default_factory=list)
    bins: list[RequestBin] = field(default_factory=list)
    connections: list[ConnectionLine] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)  # shown in the header, in order
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. how requests were downsampled

    @property
    def start(self) -> float:
        """Where the axis begins: 0, or earlier when a connection opened before."""
        return min([0.0, *(c.opened for c in self.connections)])

    def to_json(self) -> dict[str, Any]:
        body = {
            key: value
            for key, value in asdict(self).items()
            if key not in ("bands", "moments", "requests", "bins", "connections", "verdicts")
        }
        body["start"] = self.start
        body["data"] = {
            "bands": [asdict(b) for b in self.bands],
            "moments": [asdict(m) for m in self.moments],
            "requests": [asdict(r) for r in self.requests],
            "bins": [asdict(b) for b in self.bins],
            "connections": [asdict(c) for c in self.connections],
            "verdicts": [asdict(v) for v in self.verdicts],
        }
        return body
