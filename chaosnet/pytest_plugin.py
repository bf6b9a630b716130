"""chaosnet's pytest plugin: wiring only (options, fixtures, markers, report sections).

The work lives in the library: settings in ``chaosnet.settings``, backends in
``chaosnet.backends``, proxies in ``chaosnet.chaos``, servers in
``chaosnet.servers``, leak checks in ``chaosnet.leaks``, the per-test
bookkeeping in ``chaosnet.testrun``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chaosnet import leaks
from chaosnet.backends import Backend
from chaosnet.chaos import Chaos
from chaosnet.control import UnsupportedByBackend
from chaosnet.errors import ChaosnetError
from chaosnet.scenario import collect as scenario_files
from chaosnet.servers.factories import ContainerFactory, ServerFactory, session_server
from chaosnet.servers.process import ServerProcess
from chaosnet.settings import OPTIONS, resolve_session_settings
from chaosnet.testrun import SessionState, TestRun

SESSION = pytest.StashKey[SessionState]()
F = TypeVar("F", ServerFactory, ContainerFactory)
RUN = pytest.StashKey[TestRun]()


# --------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaosnet", "chaosnet fault injection")
    for option in OPTIONS:
        group.addoption(
            option.flag,
            dest=f"chaosnet_{option.attr}",
            default=None,
            help=option.help,
            nargs=option.nargs,
            metavar=option.metavar,
        )
        parser.addini(option.ini, f"{option.help} [env {option.env}]", default=None)
    scenario_files.add_ini(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chaosnet(seed=None, leak_check=None, unsupported=None, requires=(), "
        "hang_timeout=None): per-test chaosnet settings (they override ini, environment and "
        "command line); requires: "
        "the extensions the test needs (skipped or failed by --chaosnet-unsupported)",
    )
    try:
        settings = resolve_session_settings(
            config.getini,
            {o.attr: config.getoption(f"chaosnet_{o.attr}") for o in OPTIONS},
            getattr(config, "workerinput", None),
        )
    except ChaosnetError as exc:
        raise pytest.UsageError(f"chaosnet: {exc}") from None
    config.stash[SESSION] = SessionState(settings, os.environ.get("PYTEST_XDIST_WORKER", ""))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker uses the controller's seed, random or not."""
    node.workerinput["chaosnet_seed"] = node.config.stash[SESSION].settings.seed


def pytest_report_header(config: pytest.Config) -> str:
    settings = config.stash[SESSION].settings
    check = "on" if settings.leak_check else "off"
    return f"chaosnet: backend={settings.backend} seed={settings.seed} leak-check={check}"


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[SESSION].begin(controller=not hasattr(session.config, "workerinput"))


@pytest.hookimpl(trylast=True)  # after pytest's own, which tears the fixtures down (Ctrl-C)
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION, None)
    if state is not None:
        state.end()


# --------------------------------------------------------------------------- fixtures


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Scenario files (ini ``chaosnet_scenarios``) are collected as test items."""
    state = parent.config.stash[SESSION]
    return scenario_files.collect_file(
        file_path, parent, settings=lambda: state.settings, backend=state.started_backend
    )


@pytest.fixture(scope="session")
def chaos_backend(pytestconfig: pytest.Config) -> Backend:
    """The control server in use (``.url``, ``.name``), started once per worker."""
    try:
        return pytestconfig.stash[SESSION].started_backend()
    except ChaosnetError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def chaos_server(chaos_backend: Backend) -> Backend:
    """The name ``chaos_backend`` had before 0.2 ("server" now means a real server only);
    an alias for one release."""
    return chaos_backend


@pytest.fixture
def chaos(request: pytest.FixtureRequest, chaos_backend: Backend) -> Iterator[Chaos]:
    """The controller for this test: ``chaos.proxy(upstream)``; all removed at teardown."""
    run = _run(request.node)
    with _unsupported_handled(run), run.chaos(chaos_backend) as controller:
        yield controller


@contextmanager
def _unsupported_handled(run: TestRun) -> Iterator[None]:
    """An extension the backend lacks: skip the test with the reason, or fail it plainly."""
    try:
        yield
    except UnsupportedByBackend as exc:
        if run.settings.unsupported == "skip":
            pytest.skip(str(exc))
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A raw TCP echo server in its own process."""
    yield from _session_server("echo", tmp_path_factory)


@pytest.fixture(scope="session")
def framed_echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A chaosnet-framing echo server (request frame -> same payload) in its own process."""
    yield from _session_server("framed_echo", tmp_path_factory)


@pytest.fixture(scope="session")
def kv_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A framed key-value store recording every write with its request id."""
    yield from _session_server("kv", tmp_path_factory)


@pytest.fixture(scope="session")
def udp_echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A UDP server answering each chaosnet.datagram request with its payload."""
    yield from _session_server("udp_echo", tmp_path_factory)


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The builtin HTTP/1.1 server (echo, status, wait, bytes, stream, count), keep-alive."""
    yield from _session_server("http", tmp_path_factory)


@pytest.fixture
def server_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerFactory]:
    """Factory: ``server_process(argv, ready=..., env=..., cwd=...)`` starts any real server."""
    yield from _watched(request, ServerFactory(tmp_path))


@pytest.fixture
def docker_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContainerFactory]:
    """Factory: ``docker_server(image, command, ready=..., env=...)`` runs a container as a
    real server (host networking, loopback); every container is removed at teardown."""
    yield from _watched(request, ContainerFactory(tmp_path))


def _watched(request: pytest.FixtureRequest, factory: F) -> Iterator[F]:
    """A factory whose servers the test's report shows, all stopped at teardown."""
    _run(request.node).watch(factory)
    try:
        yield factory
    finally:
        factory.stop_all()


def _session_server(kind: str, tmp: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with session_server(kind, tmp.mktemp(kind)) as server:
        yield server


# --------------------------------------------------------------------------- per-test hooks


def _run(item: pytest.Item) -> TestRun:
    run = item.stash.get(RUN, None)
    if run is None:
        state = item.config.stash[SESSION]
        marker = item.get_closest_marker("chaosnet")
        try:
            run = TestRun(
                item.nodeid, state.settings, marker.kwargs if marker else {}, state.worker
            )
        except ChaosnetError as exc:
            pytest.fail(f"{item.nodeid}: {exc}", pytrace=False)
        item.stash[RUN] = run
    return run


def _uses_chaosnet(item: pytest.Item) -> bool:
    """Whether the test uses one of *our* fixtures: one whose definition in force is in
    this module (a conftest may define its own of the same name, e.g. an ``echo_server``)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in item.fixturenames:  # type: ignore[attr-defined]
        definitions = info.name2fixturedefs.get(name, ())
        if definitions and definitions[-1].func.__module__ == __name__:
            return True
    return False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    if not _uses_chaosnet(item):
        return (yield)
    run = _run(item)
    run.before_call(item.funcargs if isinstance(item, pytest.Function) else {})
    try:
        result = yield
    except UnsupportedByBackend as exc:
        if run.settings.unsupported != "skip":
            raise
        pytest.skip(str(exc))
    finally:
        run.stop_watching()  # the hang watch, and a warning if the client hammered
    _fail_plainly(run.after_call)  # tasks left pending by an async test; a hang
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    run = item.stash.get(RUN, None)
    if run is not None:
        _fail_plainly(run.after_teardown)  # a leak, or a server that died
    return result


def _fail_plainly(check: Callable[[], None]) -> None:
    """Run a check; its failure is the test's, shown as a message, not a traceback."""
    try:
        check()
    except (ChaosnetError, leaks.LeakError) as exc:
        failure = str(exc)
    else:
        return
    pytest.fail(failure, pytrace=False)


def _failure_text(report: pytest.TestReport) -> str:
    """The error that failed the test (its last line), not the whole traceback."""
    crash = getattr(report.longrepr, "reprcrash", None)
    return str(getattr(crash, "message", "")) or report.longreprtext


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    run = item.stash.get(RUN, None)
    if run is not None and report.failed:
        for title, text in run.report_sections(report.when, _failure_text(report), call.stop):
            report.sections.append((title, text))
    return report
