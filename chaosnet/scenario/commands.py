"""``chaosnet run`` and ``chaosnet validate``: the work behind the two commands.

Exit status: 0 every expectation held (or every file is valid), 1 an
expectation failed, 2 bad input or usage, or a scenario that could not run
(a server that does not start, a step that fails). Ctrl-C and SIGTERM stop
servers and remove proxies on the way out, the reports requested are written
with the scenarios that finished, and the exit status is 130 or 143.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from chaosnet.backends import backend_from
from chaosnet.control import ControlClient
from chaosnet.errors import ChaosnetError
from chaosnet.interrupts import exit_status as interrupted_status
from chaosnet.interrupts import sigterm_interrupts
from chaosnet.scenario import htmlreport, jsonreport, junit
from chaosnet.scenario.checks import check_backend, import_callable
from chaosnet.scenario.loader import LoadedScenario, ScenarioInvalid, load_paths
from chaosnet.scenario.report import make_reporter
from chaosnet.scenario.result import ScenarioResult
from chaosnet.scenario.runner import RunTarget
from chaosnet.scenario.select import select
from chaosnet.scenario.workloads import Workload
from chaosnet.servers import ownership
from chaosnet.settings import Settings, resolve

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
REPORT_FORMATS = ("json", "html", "png")


@dataclass(frozen=True)
class RunRequest:
    """What ``chaosnet run`` was asked to do (raw option values, parsed here)."""

    paths: Sequence[Path]
    backend: str | None = None
    seed: str | int | None = None
    reports: Sequence[Sequence[str]] = ()  # (FORMAT, FILE) pairs
    junit: Path | None = None
    keyword: str | None = None
    toxiproxy_bin: Path | None = None
    docker_image: str | None = None
    live: bool | None = None  # None: live display on a terminal only
    unsupported: str | None = None  # "skip": scenarios needing a missing extension are skipped


def backend_label(spec: str) -> str:
    """How error messages name a backend: its kind, or the URL for a remote server."""
    return spec


def static_extensions(spec: str) -> Collection[str] | None:
    """The extensions a backend kind supports, when known without starting it."""
    if spec in ("toxiproxy", "docker"):
        return frozenset()  # the real Toxiproxy has none of chaosnet's extensions
    if spec == "embedded":
        from chaosnet.proxy.api import EXTENSIONS

        return frozenset(EXTENSIONS)
    return None  # a URL: asked once connected


_FLAGS = {
    "backend": "--backend",
    "seed": "--seed",
    "toxiproxy_bin": "--toxiproxy-bin",
    "docker_image": "--docker-image",
    "unsupported": "--unsupported",
}


def _settings(backend: str | None, seed: str | int | None, **paths: object) -> Settings:
    """The environment's CHAOSNET_* settings, overridden by the command's options."""
    settings = resolve(ini=lambda _key: None)
    for name, value in {"backend": backend, "seed": seed, **paths}.items():
        if value not in (None, ""):
            settings = settings.override(f"option {_FLAGS[name]}", **{name: value})
    return settings


def request_settings(request: object) -> Settings:
    """The settings a command's request asks for (the options of ``_FLAGS`` it has), over
    the environment's, with the run's seed chosen."""
    options = {name: getattr(request, name, None) for name in _FLAGS}
    return _settings(**options).with_seed()


def import_workload(ref: str, named: str) -> Workload:
    """The callable ``ref`` (module:function, from the current directory) or a usage error;
    ``named`` is how the message names where ``ref`` came from."""
    try:
        return import_callable(ref, Path.cwd())
    except ValueError as exc:
        raise ChaosnetError(f"{named}: {exc}") from None


def with_workload(scenario: LoadedScenario, ref: str, workload: Workload) -> LoadedScenario:
    """The scenario with its client's workload replaced by ``workload``, named ``ref`` in its
    spec, so that what is shown and written of the run names the client that ran."""
    client = scenario.spec.client.model_copy(update={"workload": ref})
    spec = scenario.spec.model_copy(update={"client": client})
    return dataclasses.replace(scenario, spec=spec, workload=workload)


@contextmanager
def started_target(settings: Settings, seed: int) -> Iterator[RunTarget]:
    """The backend ``settings`` name, started, as the target of a command's runs with ``seed``.

    Containers left by killed runs go first; on the way out (a failed start included)
    the control client is closed and the backend stopped."""
    label = backend_label(settings.backend)
    ownership.reap_orphans()
    backend = backend_from(settings, seed=seed)
    quiet_retry_log()
    control: ControlClient | None = None
    try:
        backend.start()
        control = ControlClient(backend.url, backend=label)
        yield RunTarget.of(backend, control, seed=seed, label=label)
    finally:
        if control is not None:
            control.close()
        backend.stop()


def _print_problems(exc: ScenarioInvalid, stderr: IO[str]) -> int:
    for problem in exc.problems:
        print(problem, file=stderr)
    files = len({p.file for p in exc.problems})
    count = len(exc.problems)
    print(
        f"chaosnet: {count} problem{'s' if count != 1 else ''} in "
        f"{files} file{'s' if files != 1 else ''}; nothing was run",
        file=stderr,
    )
    return EXIT_USAGE


def validate_command(
    paths: Sequence[Path],
    *,
    backend: str | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    spec = _settings(backend, None).backend
    try:
        scenarios = load_paths(
            paths, backend_extensions=static_extensions(spec), backend=backend_label(spec)
        )
    except ScenarioInvalid as exc:
        return _print_problems(exc, err)
    for scenario in scenarios:
        print(f"ok {scenario.path} ({scenario.name})", file=out)
    print(f"{len(scenarios)} scenario file(s) valid for backend {spec}", file=out)
    if static_extensions(spec) is None:
        print(
            f"(the chaosnet extensions they use are checked when run: {spec} is asked then)",
            file=out,
        )
    return EXIT_OK


def report_paths(reports: Sequence[Sequence[str]]) -> list[tuple[str, Path]]:
    """Each ``--report FORMAT FILE``, checked before anything runs."""
    checked = []
    for kind, path in reports:
        if kind not in REPORT_FORMATS:
            raise ChaosnetError(
                f"--report {kind} {path}: unknown report format {kind!r} "
                f"(use {', '.join(REPORT_FORMATS)}; JUnit XML is --junit FILE)"
            )
        if kind in ("html", "png"):
            from chaosnet.picture.vega import require

            require()
        checked.append((kind, Path(path)))
    return checked


def write_reports(
    reports: Sequence[tuple[str, Path]],
    results: Sequence[ScenarioResult],
    *,
    backend: str,
    seed: int,
    seconds: float,
    command: str = "chaosnet run",
) -> None:
    """Write every report asked for; ``command`` names the run in the HTML page."""
    for kind, path in reports:
        if kind == "json":
            jsonreport.write(path, results, backend=backend, seed=seed, seconds=seconds)
        elif kind == "html":
            htmlreport.write(
                path, results, backend=backend, seed=seed, seconds=seconds, command=command
            )
        else:
            htmlreport.write_image(path, results)


def run_command(
    request: RunRequest, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    settings = request_settings(request)
    reports = report_paths(request.reports)
    label = backend_label(settings.backend)
    try:
        chosen = select(load_paths(request.paths), request.keyword)
        known = static_extensions(settings.backend)
        if known is not None:
            chosen = _supported(chosen, known, label, settings.unsupported, out)
    except ScenarioInvalid as exc:
        return _print_problems(exc, err)
    seed = settings.seed
    assert seed is not None
    return run_reported(
        lambda results: _run_all(chosen, settings, seed, out, request.live, results),
        settings,
        reports,
        junit_path=request.junit,
        stderr=err,
    )


def run_reported(
    run: Callable[[list[ScenarioResult]], None],
    settings: Settings,
    reports: Sequence[tuple[str, Path]],
    *,
    junit_path: Path | None,
    stderr: IO[str],
    command: str = "chaosnet run",
) -> int:
    """``run(results)`` under SIGTERM-as-Ctrl-C, then the reports of what finished; the
    exit status (an interrupted run is reported too, and exits 130 or 143)."""
    seed = settings.seed
    assert seed is not None
    started = time.monotonic()
    results: list[ScenarioResult] = []
    try:
        with sigterm_interrupts():
            run(results)
    except ScenarioInvalid as exc:
        return _print_problems(exc, stderr)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: report what finished
        status = interrupted_status(exc)
    else:
        status = exit_status(results)
    seconds = time.monotonic() - started
    label = backend_label(settings.backend)
    write_reports(reports, results, backend=label, seed=seed, seconds=seconds, command=command)
    if junit_path is not None:
        junit.write(junit_path, results, seconds=seconds)
    return status


def exit_status(results: Sequence[ScenarioResult]) -> int:
    if any(r.status == "error" for r in results):
        return EXIT_USAGE
    if any(r.status == "failed" for r in results):
        return EXIT_FAILED
    return EXIT_OK


def _run_all(
    scenarios: Sequence[LoadedScenario],
    settings: Settings,
    seed: int,
    out: IO[str],
    live: bool | None,
    results: list[ScenarioResult],
    *,
    judge_client: bool = False,
    request_time_limit: float | None = None,
    summary: Callable[[Sequence[ScenarioResult]], Any] | None = None,
    prepare: Callable[[LoadedScenario, ScenarioResult], None] | None = None,
) -> None:
    """Run ``scenarios`` in order, appending each result to ``results`` as it ends.

    ``judge_client`` (a crash fails the scenario) and ``request_time_limit`` (the
    watchdog's default) are ``chaosnet check``'s; ``summary`` replaces the summary table;
    ``prepare`` sees each result before it is reported."""
    reporter = make_reporter(out, live=live)
    if summary is not None:
        reporter.summary = summary
    reporter.prepare = prepare
    started = time.monotonic()
    with started_target(settings, seed) as target:
        try:
            label = target.backend
            supported = target.control.extensions
            scenarios = _supported(scenarios, supported, label, settings.unsupported, out)
            reporter.run_started(label, seed, scenarios)
            for scenario in scenarios:
                run = target.scenario_run(
                    scenario,
                    reporter,
                    request_time_limit=request_time_limit,
                    judge_client=judge_client,
                )
                results.append(run.run())
        except KeyboardInterrupt:
            reporter.interrupted()
            raise
        finally:
            reporter.close_display()
    reporter.run_finished(results, time.monotonic() - started, seed)


def quiet_retry_log() -> None:
    """Retries are the point of a scenario: the summary counts them, so do not also log each
    one to stderr (Python's last-resort handler would) unless logging was configured."""
    if not logging.getLogger().handlers:
        logging.getLogger("chaosnet.retry").addHandler(logging.NullHandler())


def _supported(
    scenarios: Sequence[LoadedScenario],
    supported: Collection[str],
    label: str,
    unsupported: str,
    out: IO[str],
) -> list[LoadedScenario]:
    """Before any server starts: what this control server cannot do is refused, or with
    ``--unsupported skip`` left out with one line naming the missing extension."""
    runnable, problems = [], []
    for scenario in scenarios:
        found = check_backend(scenario.spec, scenario.positions, supported, label)
        if not found:
            runnable.append(scenario)
        elif unsupported == "skip":
            print(f"skipped {scenario.path} ({scenario.name}): {found[0].message}", file=out)
        else:
            problems += found
    if problems:
        raise ScenarioInvalid(problems)
    return runnable
