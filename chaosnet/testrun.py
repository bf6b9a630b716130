"""One test's chaosnet bookkeeping, behind the pytest plugin's fixtures and hooks.

A :class:`TestRun` knows the test's settings (after the marker), hands out its
:class:`~chaosnet.controller.Chaos`, remembers which servers the test used and
where their logs stood when it began, runs the leak check around it, and
renders what a failure report needs: backend, seed and how to replay it,
connection logs, server logs.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from chaosnet import leaks
from chaosnet.backends import Backend, open_backend
from chaosnet.control import ConnectionRecord, ControlClient
from chaosnet.controller import Chaos
from chaosnet.errors import ChaosnetError
from chaosnet.proxy.loop import prepare_process
from chaosnet.seeds import derive_seed
from chaosnet.servers import ownership
from chaosnet.servers.builtin import start_builtin
from chaosnet.servers.process import ServerProcess
from chaosnet.servers.readiness import ReadinessCheck
from chaosnet.settings import Settings, resolve

if TYPE_CHECKING:
    from chaosnet.servers.container import ContainerServer

S = TypeVar("S", ServerProcess, "ContainerServer")

CHAOSNET_FIXTURES = frozenset(
    {
        "chaos",
        "chaos_server",
        "echo_server",
        "framed_echo_server",
        "kv_server",
        "server_process",
        "docker_server",
    }
)
MARKER_ARGUMENTS = ("seed", "leak_check")
LOG_SECTION_LINES = 200
#: How long a leak check waits for a socket or thread to go away on its own: a proxy
#: notices a client's close within milliseconds, so a second is generous even on CI.
LEAK_SETTLE_S = 1.0


class ServerLike(Protocol):
    """What a failure report needs of a server: a process or a container alike."""

    name: str

    @property
    def crashed(self) -> bool: ...

    def log_position(self) -> int: ...

    def log_text(self, since: int = 0) -> str: ...

    def check_alive(self) -> None: ...


class ServerGroup(Protocol):
    """A factory fixture: the servers it started so far."""

    @property
    def servers(self) -> Sequence[ServerLike]: ...


# --------------------------------------------------------------------------- settings


def resolve_session_settings(
    ini: Callable[[str], Any],
    cli: Mapping[str, Any],
    workerinput: Mapping[str, Any] | None,
) -> Settings:
    """ini < env < CLI; an xdist worker takes the controller's seed so all workers agree."""
    settings = resolve(ini, os.environ, cli)
    if workerinput is not None and workerinput.get("chaosnet_seed") is not None:
        settings = settings.override("xdist controller", seed=workerinput["chaosnet_seed"])
    return settings.with_seed()


def marker_settings(session: Settings, marker_kwargs: Mapping[str, Any]) -> Settings:
    """Apply ``@pytest.mark.chaosnet(...)``, the last word in the precedence."""
    unknown = sorted(set(marker_kwargs) - set(MARKER_ARGUMENTS))
    if unknown:
        raise ChaosnetError(
            f"unknown @pytest.mark.chaosnet argument(s) {', '.join(unknown)}; "
            f"expected {', '.join(MARKER_ARGUMENTS)}"
        )
    given = {k: v for k, v in marker_kwargs.items() if v is not None}
    return session.override("marker @pytest.mark.chaosnet", **given)


class SessionState:
    """What the plugin keeps for the whole run (one per xdist worker)."""

    def __init__(self, settings: Settings, worker: str) -> None:
        self.settings = settings
        self.worker = worker
        self.backend: Backend | None = None
        self.backend_error: str | None = None
        if not worker:  # xdist workers inherit it: one run id labels all of a run's containers
            os.environ.setdefault(ownership.RUN_ID_ENV, uuid.uuid4().hex)

    def begin(self, *, controller: bool) -> None:
        prepare_process()  # what the event-loop library keeps open for good is not a leak
        ownership.register_leak_probe()
        if controller:  # once per run, not once per xdist worker
            ownership.reap_orphans()  # containers of earlier runs that were killed

    def started_backend(self) -> Backend:
        """The session's control server, started on first use; a failed start is remembered."""
        if self.backend_error is not None:
            raise ChaosnetError(self.backend_error)
        if self.backend is None:
            try:
                self.backend = start_backend(self.settings)
            except ChaosnetError as exc:
                self.backend_error = f"chaosnet backend {self.settings.backend!r}: {exc}"
                raise ChaosnetError(self.backend_error) from None
        return self.backend

    def end(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            backend.stop()


@contextmanager
def session_server(kind: str, log_dir: Path) -> Iterator[ServerProcess]:
    """A builtin server for the whole session: not a leak of the test that starts it."""
    server = start_builtin(kind, log_path=log_dir / f"{kind}.log")
    leaks.long_lived.add(server)
    try:
        yield server
    finally:
        server.stop()
        leaks.long_lived.discard(server)


def start_backend(settings: Settings) -> Backend:
    backend = open_backend(
        settings.backend,
        seed=settings.seed,
        toxiproxy_bin=settings.toxiproxy_bin,
        docker_image=settings.docker_image,
    )
    backend.start()
    if isinstance(backend, leaks.Exemption):
        leaks.long_lived.add(backend)
    return backend


# --------------------------------------------------------------------------- servers


class _Started(Generic[S]):
    """Servers a factory fixture started: each logs to its own file, all stop at the end."""

    def __init__(self, log_dir: Path, kind: str) -> None:
        self._log_dir = log_dir
        self._kind = kind
        self._servers: list[S] = []

    @property
    def servers(self) -> Sequence[S]:
        return list(self._servers)

    def _log_path(self) -> Path:
        return self._log_dir / f"{self._kind}{len(self._servers) + 1}.log"

    def _start(self, server: S) -> S:
        self._servers.append(server)  # before start: a failed start still shows its log
        return server.start()

    def stop_all(self) -> None:
        for server in reversed(self._servers):
            server.stop()


class ServerFactory(_Started[ServerProcess]):
    """The ``server_process`` fixture: start any argv as a real server, stop all at the end."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__(log_dir, "server")

    def __call__(
        self,
        argv: Sequence[str] | Callable[[int], Sequence[str]],
        *,
        name: str | None = None,
        address: tuple[str, int] | None = None,
        ready: ReadinessCheck | Sequence[ReadinessCheck] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        ready_timeout: float = 10.0,
    ) -> ServerProcess:
        return self._start(
            ServerProcess(
                argv,
                name=name,
                address=address,
                ready=ready,
                env=env,
                cwd=cwd,
                ready_timeout=ready_timeout,
                log_path=self._log_path(),
            )
        )


class ContainerFactory(_Started["ContainerServer"]):
    """The ``docker_server`` fixture: start an image as a real server, remove all at the end."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__(log_dir, "container")

    def __call__(
        self,
        image: str,
        command: Sequence[str] | Callable[[int], Sequence[str]] | None = None,
        *,
        name: str | None = None,
        address: tuple[str, int] | None = None,
        ready: ReadinessCheck | Sequence[ReadinessCheck] | None = None,
        env: Mapping[str, str] | None = None,
        entrypoint: Sequence[str] | None = None,
        volumes: Mapping[str, str] | None = None,
        ready_timeout: float = 30.0,
        options: Mapping[str, Any] | None = None,
    ) -> ContainerServer:
        from chaosnet.servers.container import ContainerServer  # the Docker SDK costs ~100 ms

        return self._start(
            ContainerServer(
                image,
                command,
                name=name,
                address=address,
                ready=ready,
                env=env,
                entrypoint=entrypoint,
                volumes=volumes,
                ready_timeout=ready_timeout,
                log_path=self._log_path(),
                options=options,
            )
        )


# --------------------------------------------------------------------------- one test


class TestRun:
    __test__ = False  # not a test class, despite its name

    def __init__(
        self, nodeid: str, session: Settings, marker_kwargs: Mapping[str, Any], worker: str
    ) -> None:
        self.nodeid = nodeid
        self.session_seed = session.seed if session.seed is not None else 0
        self.settings = marker_settings(session, marker_kwargs)
        self.worker = worker
        #: The seed of this test's faults: the marker's, else derived from the session
        #: seed and the test's id, so it does not depend on which other tests run.
        self.seed = (
            self.settings.seed
            if marker_kwargs.get("seed") is not None and self.settings.seed is not None
            else derive_seed(self.session_seed, nodeid)
        )
        self._backend: Backend | None = None
        self._chaos: Chaos | None = None
        self._groups: list[ServerGroup] = []
        self._log_marks: dict[int, tuple[ServerLike, int]] = {}
        self._crashed_before: set[int] = set()
        self._task_check: leaks.LeakCheck | None = None
        self._leak_check: leaks.LeakCheck | None = None

    # -- fixtures ----------------------------------------------------------------------

    @contextmanager
    def chaos(self, backend: Backend) -> Iterator[Chaos]:
        self._backend = backend
        prefix = f"{self.worker}-" if self.worker else ""
        client = ControlClient(backend.url, backend=backend.name)
        self._chaos = Chaos(client, name_prefix=prefix, seed=self.seed)
        try:
            yield self._chaos
        finally:
            try:
                self._chaos.close()
            finally:
                client.close()
                _raise_backend_errors(backend)

    def watch(self, group: ServerGroup) -> None:
        self._groups.append(group)

    # -- around the test body ------------------------------------------------------------

    def before_call(self, funcargs: Mapping[str, object]) -> None:
        for value in funcargs.values():
            if _is_server(value):
                self._mark(value)  # type: ignore[arg-type]
        if not self.settings.leak_check:
            return
        check = leaks.LeakCheck(settle=LEAK_SETTLE_S)
        check.start()
        self._leak_check = check
        loop = _test_loop(funcargs)
        if loop is not None:
            self._task_check = leaks.LeakCheck(probes=[], settle=0.0)
            self._task_check.watch_loop(loop)

    def after_call(self) -> None:
        """Tasks still pending when an async test returns were leaked by it."""
        task_check, self._task_check = self._task_check, None
        if task_check is not None:
            task_check.assert_clean()

    def after_teardown(self) -> None:
        for server in self._servers():
            if id(server) not in self._crashed_before:
                server.check_alive()  # a server that died during this test fails it
        if self._leak_check is not None:
            check, self._leak_check = self._leak_check, None
            check.assert_clean()

    # -- failure report ----------------------------------------------------------------

    def report_sections(self, when: str) -> list[tuple[str, str]]:
        sections = [(f"chaosnet ({when})", self._describe_run())]
        if self._chaos is not None and when == "call":
            sections += [("chaosnet connections", self._describe_connections())]
        for server in self._servers():
            log = _tail(server.log_text(self._since(server)))
            if log:
                sections.append((f"chaosnet server log: {server.name}", log))
        return sections

    def _describe_run(self) -> str:
        backend = self._backend
        where = f"{backend.name} ({backend.url})" if backend is not None else self.settings.backend
        lines = [
            f"backend: {where}",
            f"seed: {self.seed} (session seed {self.session_seed}); replay with "
            f"--chaosnet-seed {self.session_seed}, or @pytest.mark.chaosnet(seed={self.seed}) "
            f"on this test",
        ]
        if backend is not None:
            tail = backend.log_tail(20)
            if tail:
                lines += ["backend log (last lines):", tail]
        return "\n".join(lines)

    def _describe_connections(self) -> str:
        assert self._chaos is not None
        lines: list[str] = []
        for proxy in self._chaos.proxies:
            lines.append(f"{proxy.name}: {proxy.listen} -> {proxy.upstream}")
            try:
                log = proxy.connections
            except ChaosnetError as exc:
                lines.append(f"  (no connection log: {exc})")
                continue
            lines.append(f"  opened {log.opened}, open {log.open}")
            for record in log.records:
                lines.append(
                    f"  #{record.id} from {record.client}: up {record.bytes_upstream} B, "
                    f"down {record.bytes_downstream} B, {_state(record)}; "
                    f"toxics: {', '.join(record.toxics) or '-'}"
                )
        return "\n".join(lines) or "no proxies"

    # -- helpers ---------------------------------------------------------------------------

    def _mark(self, server: ServerLike) -> None:
        self._log_marks.setdefault(id(server), (server, server.log_position()))
        if server.crashed:
            self._crashed_before.add(id(server))

    def _since(self, server: ServerLike) -> int:
        marked = self._log_marks.get(id(server))
        return marked[1] if marked is not None else 0

    def _servers(self) -> list[ServerLike]:
        servers = [server for server, _ in self._log_marks.values()]
        for group in self._groups:
            servers += [s for s in group.servers if id(s) not in self._log_marks]
        return servers


def _state(record: ConnectionRecord) -> str:
    how = f"by {record.closed_by} ({record.close_kind})" if record.closed_by else ""
    if record.closed_at is None:
        return f"open, half-closed {how}" if how else "open"
    return f"closed {how}".rstrip()


def _is_server(value: object) -> bool:
    needed = ("log_position", "log_text", "crashed", "check_alive", "name")
    return all(hasattr(value, attribute) for attribute in needed)


def _test_loop(funcargs: Mapping[str, object]) -> asyncio.AbstractEventLoop | None:
    """The event loop pytest-asyncio runs this test in, if it is an async test."""
    for value in funcargs.values():
        if isinstance(value, asyncio.Runner):
            return value.get_loop()
    return None


def _raise_backend_errors(backend: Backend) -> None:
    errors = backend.take_errors()
    if not errors:
        return
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise ChaosnetError(
        f"error inside the {backend.name} proxy server during this test{more}: "
        f"{type(first).__name__}: {first}"
    ) from first


def _tail(text: str) -> str:
    lines = text.rstrip("\n").splitlines()
    if len(lines) > LOG_SECTION_LINES:
        skipped = len(lines) - LOG_SECTION_LINES
        lines = [f"... {skipped} earlier lines ...", *lines[-LOG_SECTION_LINES:]]
    return "\n".join(lines)
