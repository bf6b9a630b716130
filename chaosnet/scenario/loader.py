"""Find scenario files, parse and validate them completely, before anything starts.

Every problem in every file is collected (YAML syntax, schema, cross-references,
timeline, callables, backend support) and reported together as
``file:line:col: message`` lines; nothing is run unless there are none.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chaosnet.errors import ChaosnetError
from chaosnet.scenario import SUFFIXES
from chaosnet.scenario.checks import check_backend, check_scenario
from chaosnet.scenario.errors import translate
from chaosnet.scenario.model import Scenario
from chaosnet.scenario.positions import Positions, Problem, parse_yaml

MAX_FILE_BYTES = 1_000_000


class ScenarioInvalid(ChaosnetError):
    """One or more scenario files are wrong; ``problems`` says where and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (str(p.file), p.line, p.col))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class LoadedScenario:
    """A valid scenario, with where it came from (for reports and later errors)."""

    path: Path
    spec: Scenario
    positions: Positions
    workload: Callable[..., Any] | None  # the imported callable, for callable workloads

    @property
    def name(self) -> str:
        return self.spec.name or self.path.stem

    def extensions(self) -> list[tuple[str, tuple[Any, ...]]]:
        from chaosnet.scenario.checks import extensions_used

        return extensions_used(self.spec)


def discover(paths: Iterable[Path]) -> list[Path]:
    """The scenario files named by ``paths``: files as given, folders searched recursively."""
    found: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            if not files:
                problems.append(f"{path}: no scenario files (*.yaml, *.yml) in this folder")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    if problems:
        raise ChaosnetError("\n".join(problems))
    return list(dict.fromkeys(found))  # a file named twice runs once


def load_file(
    path: Path, *, backend_extensions: Collection[str] | None = None, backend: str = "embedded"
) -> tuple[LoadedScenario | None, list[Problem]]:
    """Parse and check one file; the scenario is None when there are problems (in line order)."""
    scenario, problems = _load(path, backend_extensions, backend)
    return scenario, sorted(problems, key=lambda p: (p.line, p.col))


def _load(
    path: Path, backend_extensions: Collection[str] | None, backend: str
) -> tuple[LoadedScenario | None, list[Problem]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(path, 1, 1, f"cannot read: {exc.strerror or exc}")]
    if len(raw) > MAX_FILE_BYTES:
        return None, [Problem(path, 1, 1, f"too large for a scenario ({len(raw)} bytes)")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(path, 1, 1, f"not UTF-8 text: {exc.reason} at byte {exc.start}")]
    document = parse_yaml(text, path)
    if document.problems and document.data is None:
        return None, document.problems
    problems = list(document.problems)
    if not isinstance(document.data, dict):
        got = "an empty file" if document.data is None else type(document.data).__name__
        return None, [*problems, Problem(path, 1, 1, f"a scenario is a mapping, got {got}")]
    try:
        spec = Scenario.model_validate(document.data)
    except ValidationError as exc:
        problems += translate(Scenario, exc.errors(), document.data, document.positions)
        return None, problems
    checked = check_scenario(spec, path, document.positions)
    problems += checked.problems
    if backend_extensions is not None:
        problems += check_backend(spec, document.positions, backend_extensions, backend)
    if problems:
        return None, problems
    return LoadedScenario(path, spec, document.positions, checked.workload), []


def load_paths(
    paths: Iterable[Path],
    *,
    backend_extensions: Collection[str] | None = None,
    backend: str = "embedded",
) -> list[LoadedScenario]:
    """Load every scenario under ``paths``; raise :class:`ScenarioInvalid` listing all problems.

    ``backend_extensions`` is the set of chaosnet extensions the backend supports
    (None: do not check); a scenario needing any other is refused here.
    """
    scenarios: list[LoadedScenario] = []
    problems: list[Problem] = []
    for path in discover(paths):
        scenario, found = load_file(path, backend_extensions=backend_extensions, backend=backend)
        problems += found
        if scenario is not None:
            scenarios.append(scenario)
    problems += _duplicate_names(scenarios)
    if problems:
        raise ScenarioInvalid(problems)
    return scenarios


def _duplicate_names(scenarios: Sequence[LoadedScenario]) -> list[Problem]:
    first: dict[str, LoadedScenario] = {}
    problems = []
    for scenario in scenarios:
        other = first.setdefault(scenario.name, scenario)
        if other is not scenario:
            problems.append(
                scenario.positions.problem(
                    ("name",),
                    f"scenario name {scenario.name!r} is also used by {other.path}; "
                    "names must be unique in a run",
                )
            )
    return problems
