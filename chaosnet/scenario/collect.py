"""Scenario files as pytest items: ``pytest scenarios/`` runs each file as one test.

The plugin wires two hooks here (see ``docs/scenarios.md``)::

    def pytest_addoption(parser):
        collect.add_ini(parser)

    def pytest_collect_file(file_path, parent):
        return collect.collect_file(file_path, parent, settings=lambda: <the session's Settings>)

Files are chosen by the ini key ``chaosnet_scenarios`` (glob patterns relative
to the rootdir; default ``scenarios/**/*.yaml``). A file that does not
validate is a collection error showing ``file:line:col: message``; a failed
expectation reads like an assertion failure, followed by the run's timeline.
All scenario items of a session share one control server, started on first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chaosnet.errors import ChaosnetError
from chaosnet.scenario import SUFFIXES
from chaosnet.settings import Settings

if TYPE_CHECKING:  # the rest is imported when a scenario file is collected
    from chaosnet.backends import Backend
    from chaosnet.scenario.loader import LoadedScenario
    from chaosnet.scenario.result import ScenarioResult
    from chaosnet.scenario.runner import RunTarget

INI_KEY = "chaosnet_scenarios"
DEFAULT_GLOB = "scenarios/**/*.yaml"

SettingsProvider = Callable[[], Settings]
BackendProvider = Callable[[], "Backend"]


def add_ini(parser: pytest.Parser) -> None:
    parser.addini(
        INI_KEY,
        type="linelist",
        default=[DEFAULT_GLOB],
        help=f"glob(s), relative to the rootdir, of scenario files to collect "
        f"(default {DEFAULT_GLOB})",
    )


@cache
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex on '/'-separated paths: ``*`` stays in one folder, ``**`` spans any."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def matches(path: Path, root: Path, patterns: Iterable[str]) -> bool:
    try:
        relative = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return False
    return any(glob_regex(p).match(relative) for p in patterns)


def collect_file(
    file_path: Path,
    parent: pytest.Collector,
    *,
    settings: SettingsProvider,
    backend: BackendProvider | None = None,
) -> ScenarioFile | None:
    """The hook body: a :class:`ScenarioFile` for a file the ini globs select, else None.

    ``settings`` gives the session's settings (backend, seed); ``backend``, if
    given, the session's started control server to share (else the scenario
    items start one of their own on first use).
    """
    if file_path.suffix not in SUFFIXES:  # cheap: every file of the session comes here
        return None
    config = parent.config
    if not matches(file_path, config.rootpath, config.getini(INI_KEY)):
        return None
    node: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
    node.settings_provider = settings
    node.backend_provider = backend
    return node


class ScenarioFile(pytest.File):
    settings_provider: SettingsProvider = Settings
    backend_provider: BackendProvider | None = None

    def collect(self) -> Iterable[ScenarioItem]:
        from chaosnet.scenario.loader import ScenarioInvalid, load_file

        scenario, problems = load_file(self.path)
        if problems or scenario is None:
            raise ScenarioInvalid(problems)
        item: ScenarioItem = ScenarioItem.from_parent(self, name=scenario.name)
        item.scenario = scenario
        yield item

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, ChaosnetError):
            return str(excinfo.value)  # file:line:col: message, no traceback
        return super().repr_failure(excinfo)


class ScenarioFailed(Exception):
    def __init__(self, result: ScenarioResult, picture: str = "") -> None:
        self.result = result
        self.picture = picture  # where --chaosnet-report drew it, or why it could not
        super().__init__(f"scenario {result.name} {result.status}")


_SESSION_KEY = pytest.StashKey["_SessionServer"]()


class _SessionServer:
    """One control server (and one seed) for every scenario item of the session."""

    def __init__(self, settings: Settings, shared: BackendProvider | None) -> None:
        from chaosnet.backends import backend_from
        from chaosnet.control import ControlClient
        from chaosnet.scenario.runner import RunTarget

        self.settings = settings.with_seed()
        assert self.settings.seed is not None
        self.seed: int = self.settings.seed
        self.owned = shared is None
        if shared is not None:
            self.backend: Backend = shared()
        else:
            self.backend = backend_from(self.settings)
            self.backend.start()
        label = self.settings.backend
        control = ControlClient(self.backend.url, backend=label)
        self.target: RunTarget = RunTarget.of(self.backend, control, seed=self.seed, label=label)

    def close(self) -> None:
        self.target.control.close()
        if self.owned:
            self.backend.stop()


def _session_server(
    config: pytest.Config, settings: SettingsProvider, backend: BackendProvider | None
) -> _SessionServer:
    server = config.stash.get(_SESSION_KEY, None)
    if server is None:
        server = _SessionServer(settings(), backend)
        config.stash[_SESSION_KEY] = server
        config.add_cleanup(server.close)
    return server


class ScenarioItem(pytest.Item):
    scenario: LoadedScenario

    def runtest(self) -> None:
        from chaosnet.scenario.checks import check_backend
        from chaosnet.scenario.loader import ScenarioInvalid
        from chaosnet.scenario.runner import QuietListener

        parent = self.parent
        assert isinstance(parent, ScenarioFile)
        server = _session_server(self.config, parent.settings_provider, parent.backend_provider)
        target = server.target
        problems = check_backend(
            self.scenario.spec, self.scenario.positions, target.control.extensions, target.backend
        )
        if problems:
            raise ScenarioInvalid(problems)
        result = target.scenario_run(self.scenario, QuietListener()).run()
        self.user_properties.append(("seed", server.seed))
        if result.status != "passed":
            raise ScenarioFailed(result, _draw(self.nodeid, result, server.settings))

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, ScenarioFailed):
            picture = excinfo.value.picture
            return assertion_text(excinfo.value.result) + (f"\n{picture}" if picture else "")
        if isinstance(excinfo.value, ChaosnetError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.name}"


def _draw(nodeid: str, result: ScenarioResult, settings: Settings) -> str:
    """With ``--chaosnet-report FORMAT DIR``, the failed scenario's picture there."""
    if settings.report is None:
        return ""
    from chaosnet.picture.page import report_path
    from chaosnet.scenario import htmlreport

    kind, folder = settings.report
    path = report_path(folder, nodeid, kind)
    try:
        if kind == "png":
            htmlreport.write_image(path, [result])
        else:
            htmlreport.write(
                path,
                [result],
                backend=result.backend,
                seed=result.seed,
                seconds=result.duration,
                command="pytest",
            )
    except (ChaosnetError, OSError) as exc:
        return f"no picture: {exc}"
    return f"picture of this scenario: {path.resolve()}"


def assertion_text(result: ScenarioResult) -> str:
    """A failed scenario as pytest shows a failed assertion, then the timeline."""
    from chaosnet.scenario.report import timeline_lines

    if result.status == "error":
        head = [
            f"E   ScenarioError: {line}" if i == 0 else f"E       {line}"
            for i, line in enumerate((result.error or "").splitlines())
        ]
    else:
        names = ", ".join(e.name for e in result.failures)
        head = [f"E   AssertionError: scenario {result.name}: {names} did not hold"]
        for expectation in result.failures:
            head.append(f"E     {expectation.name}: expected {expectation.expected}")
            head += [f"E       {line}" for line in expectation.detail.splitlines()]
    lines = [
        *head,
        "",
        f"timeline (seed {result.seed}, backend {result.backend}):",
        *(f"  {line}" for line in timeline_lines(result)),
        "",
        f"replay: {result.replay_command()}",
    ]
    return "\n".join(lines)
