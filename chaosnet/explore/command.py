"""``chaosnet explore FILE``: the work behind the command.

Exit status: 0 no failure within the budget, 1 a failure was found (and the
minimal failing scenario written), 2 bad input (the file, its envelope, an
option, a backend that lacks a fault kind), 130 on Ctrl-C and 143 on SIGTERM
(what was found so far is still written).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from chaosnet.errors import ChaosnetError
from chaosnet.explore.output import default_out, summary_lines, write_minimal
from chaosnet.explore.session import (
    DEFAULT_BUDGET_S,
    DEFAULT_MAX_EXAMPLES,
    Example,
    Exploration,
    Explorer,
)
from chaosnet.interrupts import exit_status as interrupted_status
from chaosnet.interrupts import sigterm_interrupts
from chaosnet.scenario.commands import (
    EXIT_FAILED,
    EXIT_OK,
    _print_problems,
    _supported,
    backend_label,
    import_workload,
    report_paths,
    request_settings,
    started_target,
    static_extensions,
    with_workload,
    write_reports,
)
from chaosnet.scenario.loader import LoadedScenario, ScenarioInvalid, load_paths
from chaosnet.scenario.units import parse_duration

DEFAULT_DATABASE = Path(".hypothesis") / "chaosnet-explore"
PROGRESS_EVERY = 10


@dataclass(frozen=True)
class ExploreRequest:
    path: Path
    budget: str | float = DEFAULT_BUDGET_S
    max_examples: int = DEFAULT_MAX_EXAMPLES
    seed: str | int | None = None
    out: Path | None = None
    backend: str | None = None
    database: Path | None = DEFAULT_DATABASE  # None: no example database
    toxiproxy_bin: Path | None = None
    docker_image: str | None = None
    workload: str | None = None  # module:function in place of the file's client workload
    reports: Sequence[Sequence[str]] = ()  # (FORMAT, FILE): the minimal failure's picture


def explore_command(
    request: ExploreRequest, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    budget = _budget(request.budget)
    settings = request_settings(request)
    label = backend_label(settings.backend)
    reports = report_paths(request.reports)
    try:
        (scenario,) = load_paths([request.path])
        if request.workload is not None:
            workload = import_workload(request.workload, named=f"--workload {request.workload}")
            scenario = with_workload(scenario, request.workload, workload)
        if scenario.spec.explore is None:
            raise ChaosnetError(
                f"{scenario.path}: no explore: section, so there is nothing to generate "
                "(see docs/scenarios.md, 'Exploring')"
            )
        known = static_extensions(settings.backend)
        if known is not None:
            _supported([scenario], known, label, "fail", out)
    except ScenarioInvalid as exc:
        return _print_problems(exc, err)
    seed = settings.seed
    assert seed is not None
    target = request.out or default_out(scenario)
    print(
        f"chaosnet explore {scenario.path}: backend {label}, seed {seed}, budget {budget:g}s",
        file=out,
    )
    explorer: Explorer | None = None
    try:
        with sigterm_interrupts(), started_target(settings, seed) as run_target:
            _supported([scenario], run_target.control.extensions, label, "fail", out)
            explorer = Explorer(
                scenario,
                run_target.control,
                seed=seed,
                backend=run_target.backend,
                budget=budget,
                max_examples=request.max_examples,
                database=request.database,
                take_backend_errors=run_target.take_backend_errors,
                in_process_proxy=run_target.in_process_proxy,
                on_example=_progress(out),
            )
            explorer.explore()
    except ScenarioInvalid as exc:
        return _print_problems(exc, err)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what was found
        if explorer is not None:
            _finish(explorer, scenario, target, seed, out)
            _write_reports(reports, explorer.outcome, target, label)
        return interrupted_status(exc)
    status = _finish(explorer, scenario, target, seed, out)
    _write_reports(reports, explorer.outcome, target, label)
    return status


def _finish(
    explorer: Explorer, scenario: LoadedScenario, target: Path, seed: int, out: IO[str]
) -> int:
    outcome = explorer.outcome
    for line in summary_lines(outcome):
        print(line, file=out)
    if outcome.failure is None:
        return EXIT_OK
    write_minimal(target, scenario, outcome.failure.schedule, seed=seed)
    print(f"written: {target}", file=out)
    print(f"replay: chaosnet run {target} --seed {seed}", file=out)
    return EXIT_FAILED


def _write_reports(
    reports: Sequence[tuple[str, Path]], outcome: Exploration, target: Path, label: str
) -> None:
    """The minimal failing example's run, replayed from the scenario written for it."""
    if outcome.failure is None:
        results = []
    else:
        minimal = outcome.failure.result
        results = [dataclasses.replace(minimal, path=target, name=f"{minimal.name}-minimal")]
    write_reports(
        reports,
        results,
        backend=label,
        seed=outcome.seed,
        seconds=outcome.seconds,
        command="chaosnet explore",
    )


def _progress(out: IO[str]) -> Callable[[Example], None]:
    found = False

    def show(example: Example) -> None:
        nonlocal found
        if example.failed and not found:
            found = True
            print(f"example {example.number} FAILED: {example.schedule.describe()}", file=out)
            print("shrinking ...", file=out)
        elif example.number % PROGRESS_EVERY == 0 and not found:
            print(f"{example.number} examples, no failure yet", file=out)
        out.flush()

    return show


def _budget(value: str | float) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ChaosnetError(f"--budget {value}: {exc}") from None
    if seconds <= 0:
        raise ChaosnetError(f"--budget {value}: give a positive time, e.g. 60s")
    return seconds
