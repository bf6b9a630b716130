"""What an exploration leaves: the minimal failing scenario file, and the lines it prints."""

from __future__ import annotations

from pathlib import Path

import yaml

from chaosnet.explore.schedule import Schedule
from chaosnet.explore.session import Exploration
from chaosnet.scenario.loader import LoadedScenario

SHOWN_COMBINATIONS = 8


def default_out(scenario: LoadedScenario) -> Path:
    """Beside the input: ``name.yaml`` -> ``name-minimal.yaml``."""
    return scenario.path.with_name(f"{scenario.path.stem}-minimal{scenario.path.suffix}")


def minimal_scenario(scenario: LoadedScenario, schedule: Schedule, *, seed: int) -> str:
    """The original file with the schedule as its timeline, and without ``explore:``.

    It is an ordinary scenario: ``chaosnet run`` replays it as a regression test.
    Anything else the file says (servers, proxies, client, expectations) is kept.
    """
    data = yaml.safe_load(scenario.path.read_text(encoding="utf-8"))
    data.pop("explore", None)
    data["name"] = f"{scenario.name}-minimal"
    found = f"Found by chaosnet explore (seed {seed}): {schedule.describe()}."
    data["description"] = f"{found} {data.get('description', '')}".strip()
    data["client"]["workload"] = scenario.spec.client.workload  # as explored (--workload)
    data["timeline"] = [*(data.get("timeline") or []), *schedule.steps()]
    header = (
        f"# The smallest fault schedule chaosnet explore found that fails {scenario.name}.\n"
        f"# Made from {scenario.path.name} with --seed {seed}; run it with chaosnet run.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_minimal(path: Path, scenario: LoadedScenario, schedule: Schedule, *, seed: int) -> None:
    path.write_text(minimal_scenario(scenario, schedule, seed=seed), encoding="utf-8")


def summary_lines(outcome: Exploration) -> list[str]:
    """How the exploration went: examples, time, rate, and what it covered or found."""
    lines = [
        f"{outcome.examples} example{'s' if outcome.examples != 1 else ''} in "
        f"{outcome.seconds:.1f}s ({outcome.per_second:.1f} examples/s), stopped by "
        f"{_stopped(outcome)}"
    ]
    if outcome.unconfirmed:
        lines.append(
            f"{outcome.unconfirmed} failing example{'s' if outcome.unconfirmed != 1 else ''} "
            "passed when run again and were not kept (timing-sensitive)"
        )
    failure = outcome.failure
    if failure is None:
        lines.append("no failure: the client survived every generated schedule")
        lines += coverage_lines(outcome)
        return lines
    lines.append(
        f"FAILED: the smallest failing schedule has {len(failure.schedule)} "
        f"fault{'s' if len(failure.schedule) != 1 else ''} (of {outcome.failures_seen} failing "
        f"example{'s' if outcome.failures_seen != 1 else ''} seen):"
    )
    lines += [f"  - {fault.describe()}" for fault in failure.schedule]
    if outcome.verified is False:
        lines.append(
            "  (no failing schedule failed every time it was run again: timing-sensitive; "
            "the smallest is written anyway)"
        )
    elif outcome.verified:
        lines.append("  (it failed every time it was run again)")
    if failure.result.error is not None:
        lines.append(f"  error: {failure.result.error.splitlines()[0]}")
    lines += [
        f"  FAIL {e.name}: {(e.detail.splitlines() or [e.expected])[0]}"
        for e in failure.result.failures
    ]
    return lines


def coverage_lines(outcome: Exploration) -> list[str]:
    kinds = ", ".join(f"{kind} x{count}" for kind, count in outcome.kinds.most_common())
    lines = [f"fault kinds: {kinds or 'none'}"]
    combos = outcome.combinations.most_common(SHOWN_COMBINATIONS)
    if combos:
        shown = ", ".join(f"{' + '.join(c)} x{n}" for c, n in combos)
        more = len(outcome.combinations) - len(combos)
        lines.append(f"combinations: {shown}" + (f" (+{more} more)" if more > 0 else ""))
    else:
        lines.append("combinations: none (every schedule had one fault)")
    return lines


def _stopped(outcome: Exploration) -> str:
    return {
        "examples": "--max-examples (or Hypothesis ran out of new schedules)",
        "budget": "the time budget",
        "failure": "a failure (shrunk)",
        "interrupt": "Ctrl-C",
    }[outcome.stopped_by]
