"""What a scenario run produced: its verdict, expectations with observed values, timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chaosnet.control import ConnectionLogInfo
from chaosnet.scenario.model import Scenario
from chaosnet.scenario.timeline import TimelineEvent
from chaosnet.scenario.workloads import RequestRecord

Status = Literal["passed", "failed", "error"]


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation: what was asked, what was seen, and whether it held."""

    name: str
    passed: bool
    expected: str
    observed: Any  # JSON-serialisable
    detail: str = ""
    #: When it was broken, in seconds since the workload started: the request or outage
    #: that broke it; the workload's end for what is only judged then; None when it held.
    failed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "expected": self.expected,
            "observed": self.observed,
            "detail": self.detail,
            "failed_at": None if self.failed_at is None else round(self.failed_at, 6),
        }


@dataclass
class ScenarioResult:
    name: str
    path: Path
    seed: int
    backend: str
    faults: list[str]
    status: Status = "error"
    error: str | None = None
    expectations: list[ExpectationResult] = field(default_factory=list)
    events: list[TimelineEvent] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)
    planned_requests: int = 0
    workload_started: bool = False
    elapsed: float = 0.0  # the workload's wall time
    duration: float = 0.0  # the whole scenario, setup and teardown included
    spec: Scenario | None = None  # what was run (rows and faults of the HTML report)
    started_at: float | None = None  # Unix time the workload started (aligns proxy logs)
    #: Each proxy's connection log as the run left it, and its listening "host:port".
    connections: dict[str, ConnectionLogInfo] = field(default_factory=dict)
    proxy_addresses: dict[str, str] = field(default_factory=dict)
    replay: str | None = None  # the command that replays it, when not ``chaosnet run``

    @property
    def answered(self) -> int:
        return sum(1 for r in self.requests if r.ok)

    @property
    def retries(self) -> int:
        """Attempts beyond the first, over all requests."""
        return sum(max(0, r.attempts - 1) for r in self.requests)

    @property
    def failures(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if not e.passed]

    def conclude(self) -> None:
        """Set the status from the error and the expectations."""
        if self.error is not None:
            self.status = "error"
        elif self.failures:
            self.status = "failed"
        else:
            self.status = "passed"

    def replay_command(self) -> str:
        if self.replay is not None:
            return self.replay
        return (
            f"chaosnet run {self.path} --seed {self.seed} -k {self.name} --backend {self.backend}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": str(self.path),
            "status": self.status,
            "seed": self.seed,
            "backend": self.backend,
            "error": self.error,
            "faults": self.faults,
            "elapsed": round(self.elapsed, 6),
            "duration": round(self.duration, 6),
            "counts": {
                "planned": self.planned_requests,
                "requests": len(self.requests),
                "answered": self.answered,
                "failed": len(self.requests) - self.answered,
                "retries": self.retries,
                "attempts": sum(r.attempts for r in self.requests),
            },
            "expectations": [e.to_json() for e in self.expectations],
            "timeline": [e.to_json() for e in self.events],
            "replay": self.replay_command(),
        }
