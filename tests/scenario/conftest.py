"""Helpers for the scenario tests: write a scenario file, load it, list its problems."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaosnet.backends import open_backend
from chaosnet.control import ControlClient
from chaosnet.scenario.loader import LoadedScenario, load_file
from chaosnet.scenario.positions import Problem
from chaosnet.scenario.result import ScenarioResult
from chaosnet.scenario.runner import run_scenario
from chaosnet.scenario.timeline import TimelineEvent
from chaosnet.scenario.workloads import RequestRecord
from chaosnet.servers.lifecycle import RealServer

#: A valid scenario to start from; tests replace or add parts.
MINIMAL = """\
servers:
  echo: {builtin: framed_echo}
proxies:
  main: {server: echo}
client:
  workload: framed
  endpoints: main
  requests: 5
  timeout: 500ms
expect:
  all_answered: true
"""

WriteScenario = Callable[..., Path]


@pytest.fixture
def write_scenario(tmp_path: Path) -> WriteScenario:
    """Write YAML text (dedented) to a file in tmp_path; returns its path."""

    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def problems_of(path: Path) -> list[str]:
    """The problems of one file as ``line:col: message`` (the file name stripped)."""
    _, problems = load_file(path)
    return [_short(p) for p in problems]


def _short(problem: Problem) -> str:
    return f"{problem.line}:{problem.col}: {problem.message}"


class RecordingListener:
    """Keeps what the runner reports, for assertions."""

    def __init__(self) -> None:
        self.events: list[TimelineEvent] = []
        self.servers: dict[str, RealServer] = {}
        self.on_workload_started: Callable[[], None] = lambda: None

    def scenario_started(self, scenario: LoadedScenario, seed: int) -> None: ...

    def server_started(self, scenario: LoadedScenario, name: str, server: RealServer) -> None:
        self.servers[name] = server

    def workload_started(self, scenario: LoadedScenario) -> None:
        self.on_workload_started()

    def request_done(self, scenario: LoadedScenario, record: RequestRecord) -> None: ...

    def event(self, scenario: LoadedScenario, event: TimelineEvent) -> None:
        self.events.append(event)

    def scenario_finished(self, result: ScenarioResult) -> None: ...


class Embedded:
    """An embedded control server shared by the scenario tests."""

    def __init__(self) -> None:
        self.backend = open_backend("embedded", seed=1)
        self.backend.start()
        self.control = ControlClient(self.backend.url, backend="embedded")

    def close(self) -> None:
        self.control.close()
        self.backend.stop()


@pytest.fixture(scope="session")
def embedded() -> Iterator[Embedded]:
    server = Embedded()
    yield server
    server.close()


RunText = Callable[..., ScenarioResult]


@pytest.fixture
def run_text(embedded: Embedded, write_scenario: WriteScenario) -> RunText:
    """Write a scenario and run it on the embedded backend; returns its result."""

    def run(
        text: str,
        *,
        seed: int = 7,
        name: str = "scenario.yaml",
        listener: RecordingListener | None = None,
    ) -> ScenarioResult:
        scenario, problems = load_file(write_scenario(text, name))
        assert problems == [], problems
        assert scenario is not None
        return run_scenario(
            scenario,
            embedded.control,
            seed=seed,
            backend="embedded",
            listener=listener or RecordingListener(),
            take_backend_errors=embedded.backend.take_errors,
            in_process_proxy=True,
        )

    return run
