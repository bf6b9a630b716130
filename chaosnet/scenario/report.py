"""What a run shows: a live display on a terminal, a plain line log otherwise, a summary.

The live display (rich) has a progress bar per scenario and prints timeline
events as they fire. Without a terminal, one line per event, greppable and
stable. Both end with the same summary table (scenario, faults, requests,
retries, result, and the seed of every failure) and, for each scenario that
did not pass, its failed expectations and its timeline.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from chaosnet.scenario.loader import LoadedScenario
from chaosnet.scenario.result import ScenarioResult
from chaosnet.scenario.timeline import TimelineEvent
from chaosnet.scenario.units import format_duration
from chaosnet.scenario.workloads import RequestRecord
from chaosnet.servers.lifecycle import RealServer

PLAIN_WIDTH = 120
SLOW_STEP_S = 0.05  # steps that take longer show how long (a server start)
_STYLE = {"passed": "green", "failed": "red", "error": "red"}


def _clock(seconds: float) -> str:
    return f"{seconds:7.3f}s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _took(event: TimelineEvent) -> str:
    return f" (took {format_duration(event.duration)})" if event.duration >= SLOW_STEP_S else ""


def _request_kind(record: RequestRecord) -> str:
    if record.failed:
        return f"failed: {record.error}: {record.message}"
    return "answered after retries" if record.attempts > 1 else "answered"


def _request_lines(requests: Sequence[RequestRecord]) -> list[tuple[float, str]]:
    """Consecutive requests that ended the same way, as one line each."""
    lines: list[tuple[float, str]] = []
    ordered = sorted(requests, key=lambda r: r.index)
    start = 0
    while start < len(ordered):
        kind = _request_kind(ordered[start])
        end = start
        while end + 1 < len(ordered) and _request_kind(ordered[end + 1]) == kind:
            end += 1
        group = ordered[start : end + 1]
        first, last = group[0].index, group[-1].index
        which = f"request {first}" if first == last else f"requests {first}-{last}"
        attempts = max(r.attempts for r in group)
        extra = f" (up to {_plural(attempts, 'attempt')})" if attempts > 1 else ""
        lines.append((group[0].started, f"{which} {kind}{extra}"))
        start = end + 1
    return lines


def timeline_lines(result: ScenarioResult) -> list[str]:
    """The run as it happened: steps fired and how the requests fared, in time order."""
    if not result.workload_started:
        return ["(the workload did not start)"]
    entries: list[tuple[float, int, str]] = [(0.0, 0, "workload started")]
    for event in result.events:
        status = "" if event.ok else f"  FAILED: {event.error}"
        entries.append(
            (event.time, 1, f"{event.trigger}: {event.description}{_took(event)}{status}")
        )
    entries += [(t, 2, text) for t, text in _request_lines(result.requests)]
    entries.append(
        (
            result.elapsed,
            3,
            f"workload finished: {result.answered}/{result.planned_requests} answered, "
            f"{_plural(result.retries, 'retry').replace('retrys', 'retries')}",
        )
    )
    entries.sort(key=lambda item: (item[0], item[1]))
    return [f"{_clock(t)}  {text}" for t, _, text in entries]


def expectation_lines(result: ScenarioResult) -> list[str]:
    """One line per expectation: held or not, and what was seen (its detail's first line)."""
    return [
        f"{'ok  ' if e.passed else 'FAIL'} {e.name}: {(e.detail.splitlines() or [''])[0]}"
        for e in result.expectations
    ]


def failure_text(result: ScenarioResult) -> str:
    """Why a scenario did not pass, its timeline, and how to replay it."""
    lines = [
        f"scenario {result.name} {result.status.upper()} "
        f"(seed {result.seed}, backend {result.backend})",
        f"  file: {result.path}",
        f"  replay: {result.replay_command()}",
    ]
    if result.error is not None:
        lines.append("  error:")
        lines += [f"    {line}" for line in result.error.splitlines()]
    for expectation in result.failures:
        lines.append(f"  expectation {expectation.name} did not hold: {expectation.expected}")
        lines += [f"    {line}" for line in expectation.detail.splitlines()]
    lines.append("  timeline:")
    lines += [f"    {line}" for line in timeline_lines(result)]
    return "\n".join(lines)


def summary_table(results: Sequence[ScenarioResult]) -> Table:
    table = Table(title="chaosnet scenarios", title_justify="left")
    table.add_column("scenario")
    table.add_column("faults")
    table.add_column("requests", justify="right")
    table.add_column("retries", justify="right")
    table.add_column("result")
    table.add_column("seed", justify="right")
    for result in results:
        table.add_row(
            result.name,
            ", ".join(result.faults) or "-",
            f"{result.answered}/{result.planned_requests}",
            str(result.retries),
            Text(result.status.upper(), style=_STYLE[result.status]),
            "" if result.status == "passed" else str(result.seed),
        )
    return table


def totals_line(results: Sequence[ScenarioResult], seconds: float, seed: int) -> str:
    counts = {
        status: sum(1 for r in results if r.status == status)
        for status in ("passed", "failed", "error")
    }
    parts = [f"{counts['passed']} passed"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    if counts["error"]:
        parts.append(_plural(counts["error"], "error"))
    return f"{', '.join(parts)} in {seconds:.2f}s (seed {seed})"


class Reporter:
    """Plain line log; the base of the live display."""

    def __init__(self, stream: IO[str] | None = None, *, console: Console | None = None) -> None:
        self.stream = stream or sys.stdout
        self.console = console or Console(
            file=self.stream, width=PLAIN_WIDTH, force_terminal=False, highlight=False
        )
        self._lock = threading.Lock()
        #: The table printed at the end (``chaosnet check`` shows its report card).
        self.summary: Callable[[Sequence[ScenarioResult]], Any] = summary_table
        #: Called with each scenario's result before it is reported (e.g. its replay command).
        self.prepare: Callable[[LoadedScenario, ScenarioResult], None] | None = None
        self._scenarios: dict[str, LoadedScenario] = {}

    def finishing(self, result: ScenarioResult) -> None:
        scenario = self._scenarios.get(result.name)
        if self.prepare is not None and scenario is not None:
            self.prepare(scenario, result)

    def line(self, text: str) -> None:
        with self._lock:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    # -- the run ------------------------------------------------------------------------

    def run_started(self, backend: str, seed: int, scenarios: Sequence[LoadedScenario]) -> None:
        self.line(
            f"chaosnet run: backend {backend}, seed {seed}, {_plural(len(scenarios), 'scenario')}"
        )

    def run_finished(self, results: Sequence[ScenarioResult], seconds: float, seed: int) -> None:
        self.close_display()
        with self._lock:
            self.console.print(self.summary(results))
        for result in results:
            if result.status != "passed":
                self.line("")
                self.line(failure_text(result))
        self.line(totals_line(results, seconds, seed))

    def interrupted(self) -> None:
        self.close_display()
        self.line("interrupted: servers stopped, proxies removed")

    def close_display(self) -> None:
        """End any live display (the plain log has none)."""

    # -- one scenario ----------------------------------------------------------------------

    def scenario_started(self, scenario: LoadedScenario, seed: int) -> None:
        self._scenarios[scenario.name] = scenario
        self.line(f"{scenario.name}: starting ({scenario.path})")

    def server_started(self, scenario: LoadedScenario, name: str, server: RealServer) -> None:
        host, port = server.address
        self.line(f"{scenario.name}: server {name} ready on {host}:{port} (pid {server.pid})")

    def workload_started(self, scenario: LoadedScenario) -> None:
        client = scenario.spec.client
        pace = f" at {client.rate:g}/s" if client.rate else ""
        self.line(
            f"{scenario.name}: workload {client.workload} started: "
            f"{_plural(client.requests, 'request')}{pace}"
        )

    def request_done(self, scenario: LoadedScenario, record: RequestRecord) -> None:
        """The plain log does not list every request; the summary counts them."""

    def event(self, scenario: LoadedScenario, event: TimelineEvent) -> None:
        status = "" if event.ok else f" FAILED: {event.error}"
        self.line(
            f"{scenario.name}: {_clock(event.time).strip()} {event.trigger}: "
            f"{event.description}{_took(event)}{status}"
        )

    def scenario_finished(self, result: ScenarioResult) -> None:
        self.finishing(result)
        self.line(
            f"{result.name}: {result.status.upper()} in {format_duration(result.duration)} "
            f"({result.answered}/{result.planned_requests} answered, "
            f"{result.retries} retries)"
        )
        for line in expectation_lines(result):
            self.line(f"{result.name}:   {line}")


class LiveReporter(Reporter):
    """A rich live display: a progress bar per scenario, timeline events as they fire."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        console = Console(file=stream or sys.stdout, highlight=False, force_terminal=True)
        super().__init__(stream, console=console)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started = False

    def line(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def run_started(self, backend: str, seed: int, scenarios: Sequence[LoadedScenario]) -> None:
        super().run_started(backend, seed, scenarios)
        self.progress.start()
        self._started = True

    def close_display(self) -> None:
        if self._started:
            self.progress.stop()
            self._started = False

    def scenario_started(self, scenario: LoadedScenario, seed: int) -> None:
        self._scenarios[scenario.name] = scenario
        self._tasks[scenario.name] = self.progress.add_task(
            scenario.name, total=scenario.spec.client.requests, status="starting"
        )

    def server_started(self, scenario: LoadedScenario, name: str, server: RealServer) -> None:
        self.progress.update(self._tasks[scenario.name], status=f"server {name} ready")

    def workload_started(self, scenario: LoadedScenario) -> None:
        self.progress.update(self._tasks[scenario.name], status="running")

    def request_done(self, scenario: LoadedScenario, record: RequestRecord) -> None:
        self.progress.advance(self._tasks[scenario.name])

    def event(self, scenario: LoadedScenario, event: TimelineEvent) -> None:
        mark = "[green]>[/]" if event.ok else "[red]x[/]"
        error = "" if event.ok else f" [red]{escape(event.error or '')}[/]"
        self.progress.console.print(
            f"{mark} {escape(scenario.name)} {_clock(event.time).strip()} "
            f"[bold]{event.trigger}[/]: {escape(event.description)}{_took(event)}{error}",
            highlight=False,
        )

    def scenario_finished(self, result: ScenarioResult) -> None:
        self.finishing(result)
        task = self._tasks.get(result.name)
        if task is not None:
            style = _STYLE[result.status]
            self.progress.update(task, status=f"[{style}]{result.status.upper()}[/]")
        for line in expectation_lines(result):
            self.line(f"  {result.name}: {line}")


def make_reporter(stream: IO[str] | None = None, *, live: bool | None = None) -> Reporter:
    """Live on a terminal (or when asked), plain lines otherwise."""
    out = stream or sys.stdout
    if live is None:
        live = out.isatty()
    return LiveReporter(out) if live else Reporter(out)
