"""``chaosnet check module:function``: the battery of faults against a client of your own.

Each scenario of the battery (``chaosnet/battery/``, shipped in the package;
``scenarios/`` in a checkout is the same files) or of the given paths runs as
written -- servers, proxies, timeline, expectations, client settings -- with
its client replaced by the callable, which gets the same
:class:`~chaosnet.scenario.workloads.WorkloadContext` a scenario's callable
gets. Only the scenarios whose server kind the callable speaks run (``--kind``,
default ``framed``). A request running longer than ``max_request_time`` (the
file's, else 5 s) fails its scenario at once with the client's stack, and a
client that raises fails it too: under ``check`` the client is what is judged.

Exit status: 0 the client survived every fault, 1 it failed some, 2 bad input
(an unknown callable or kind, an invalid file) or a scenario that could not run.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rich.table import Table
from rich.text import Text

from chaosnet.errors import ChaosnetError
from chaosnet.scenario.commands import (
    _print_problems,
    _run_all,
    import_workload,
    report_paths,
    request_settings,
    run_reported,
    with_workload,
)
from chaosnet.scenario.loader import LoadedScenario, ScenarioInvalid, load_paths
from chaosnet.scenario.model import BUILTIN_WORKLOADS
from chaosnet.scenario.result import ScenarioResult
from chaosnet.scenario.select import select
from chaosnet.scenario.workloads import scenario_kind

#: The battery: every fault chaosnet has, each with what a correct client must do.
BATTERY = Path(__file__).resolve().parents[1] / "battery"
#: The watchdog's limit for scenarios that set none: a hung client fails in seconds.
DEFAULT_REQUEST_LIMIT_S = 5.0
KINDS = BUILTIN_WORKLOADS


@dataclass(frozen=True)
class CheckRequest:
    """What ``chaosnet check`` was asked to do (raw option values, parsed here)."""

    workload: str  # module:function
    paths: Sequence[Path] = ()
    kinds: Sequence[str] = field(default_factory=lambda: ["framed"])
    backend: str | None = None
    seed: str | int | None = None
    reports: Sequence[Sequence[str]] = ()  # (FORMAT, FILE) pairs
    junit: Path | None = None
    keyword: str | None = None
    live: bool | None = None


def battery_files() -> list[Path]:
    return sorted(BATTERY.glob("*.yaml"))


def check_command(
    request: CheckRequest, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    unknown = [k for k in request.kinds if k not in KINDS]
    if unknown:
        raise ChaosnetError(f"--kind {unknown[0]}: unknown kind (use {', '.join(KINDS)})")
    client = import_workload(request.workload, named=request.workload)
    settings = request_settings(request)
    reports = report_paths(request.reports)
    try:
        chosen = _scenarios(request)
    except ScenarioInvalid as exc:
        return _print_problems(exc, err)
    if not chosen:
        raise ChaosnetError(
            f"no scenario of kind {' or '.join(request.kinds)} to run"
            + (f" matching -k {request.keyword!r}" if request.keyword else "")
        )
    seed = settings.seed
    assert seed is not None
    kinds = {scenario.path: scenario_kind(scenario.spec) for scenario in chosen}  # as written
    replay = _replayer(request, settings.backend, seed, kinds)
    chosen = [with_workload(scenario, request.workload, client) for scenario in chosen]

    def run(results: list[ScenarioResult]) -> None:
        _run_all(
            chosen,
            settings,
            seed,
            out,
            request.live,
            results,
            judge_client=True,  # its crash fails its scenario (1); a run that could not happen is 2
            request_time_limit=DEFAULT_REQUEST_LIMIT_S,
            summary=report_card,
            prepare=replay,
        )

    return run_reported(
        run,
        settings,
        reports,
        junit_path=request.junit,
        stderr=err,
        command=f"chaosnet check {request.workload}",
    )


def _scenarios(request: CheckRequest) -> list[LoadedScenario]:
    loaded = load_paths(request.paths or battery_files())
    fitting = [s for s in loaded if scenario_kind(s.spec) in request.kinds]
    return select(fitting, request.keyword)


def _replayer(
    request: CheckRequest, backend: str, seed: int, kinds: Mapping[Path, str | None]
) -> Callable[[LoadedScenario, ScenarioResult], None]:
    """Each result's replay command; ``kinds`` is each file's kind as written, the one
    ``--kind`` chose it by."""

    def set_replay(scenario: LoadedScenario, result: ScenarioResult) -> None:
        kind = kinds[scenario.path]
        words = ["chaosnet", "check", request.workload]
        if request.paths:
            words.append(str(result.path))
        words += ["--seed", str(seed), "-k", result.name, "--backend", backend]
        if kind:
            words += ["--kind", kind]
        result.replay = shlex.join(words)

    return set_replay


def why(result: ScenarioResult) -> str:
    """One line: the first expectation that did not hold and what was seen, or the error."""
    if result.status == "error":
        return f"could not run: {(result.error or '').splitlines()[0]}"
    failure = next(iter(result.failures), None)
    if failure is None:
        held = ", ".join(e.name for e in result.expectations)
        return f"held: {held}"
    first = (failure.detail.splitlines() or [failure.expected])[0]
    more = len(result.failures) - 1
    return f"{failure.name}: {first}" + (f" (and {more} more)" if more else "")


_VERDICT = {"passed": ("survived", "green"), "failed": ("FAILED", "red"), "error": ("ERROR", "red")}


def report_card(results: Sequence[ScenarioResult]) -> Table:
    """One row per fault: survived or not, why, and the command that replays it."""
    table = Table(title="chaosnet check: report card", title_justify="left")
    table.add_column("fault")
    table.add_column("scenario")
    table.add_column("verdict")
    table.add_column("why")
    table.add_column("replay")
    for result in results:
        word, style = _VERDICT[result.status]
        table.add_row(
            ", ".join(result.faults) or "-",
            result.name,
            Text(word, style=style),
            why(result),
            "" if result.status == "passed" else result.replay_command(),
        )
    return table
