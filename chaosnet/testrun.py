"""The pytest plugin's bookkeeping: the session's control server, and one test's run.

A :class:`SessionState` holds the session's settings and its control server
(started on first use). A :class:`TestRun` knows the test's settings (after
the marker), hands out its :class:`~chaosnet.chaos.Chaos`, remembers
which servers the test used and where their logs stood when it began, runs the
leak check around it, and renders what a failure report needs: backend, seed
and how to replay it, connection logs, server logs.

Settings precedence lives in ``chaosnet.settings``, the server factories in
``chaosnet.servers.factories``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from chaosnet import leaks
from chaosnet.backends import Backend, backend_from
from chaosnet.chaos import Chaos, ProxyHandle
from chaosnet.control import ConnectionInfo, ConnectionLogInfo, ControlClient, MessageRecord
from chaosnet.errors import ChaosnetError
from chaosnet.proxy.loop import prepare_process
from chaosnet.seeds import derive_seed
from chaosnet.servers import ownership
from chaosnet.servers.factories import ServerGroup
from chaosnet.servers.lifecycle import RealServer
from chaosnet.settings import Settings, marker_requires, marker_settings
from chaosnet.watchdog import HammeringWarning, HangWatch, hammering

LOG_SECTION_LINES = 200
LAST_MESSAGES = 6  # per connection, in the failure report
#: How long a leak check waits for a socket or thread to go away on its own: a proxy
#: notices a client's close within milliseconds, so a second is generous even on CI.
LEAK_SETTLE_S = 1.0


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


def start_backend(settings: Settings) -> Backend:
    backend = backend_from(settings)
    backend.start()
    if isinstance(backend, leaks.Exemption):
        leaks.long_lived.add(backend)
    return backend


# --------------------------------------------------------------------------- one test


class TestRun:
    __test__ = False  # not a test class, despite its name

    def __init__(
        self, nodeid: str, session: Settings, marker_kwargs: Mapping[str, Any], worker: str
    ) -> None:
        self.nodeid = nodeid
        self.session_seed = session.seed if session.seed is not None else 0
        self.settings = marker_settings(session, marker_kwargs)
        self.requires = marker_requires(marker_kwargs)
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
        self._log_marks: dict[int, tuple[RealServer, int]] = {}
        self._crashed_before: set[int] = set()
        self._task_check: leaks.LeakCheck | None = None
        self._leak_check: leaks.LeakCheck | None = None
        self._started_at: float | None = None  # Unix time the body started (the picture's 0)
        self._last_logs: dict[str, ConnectionLogInfo] = {}  # read before the proxies go
        self._last_proxies: list[ProxyHandle] = []
        self._hang: HangWatch | None = None

    # -- fixtures ----------------------------------------------------------------------

    @contextmanager
    def chaos(self, backend: Backend) -> Iterator[Chaos]:
        self._backend = backend
        prefix = f"{self.worker}-" if self.worker else ""
        client = ControlClient(backend.url, backend=backend.name)
        try:
            for feature in self.requires:
                client.require(feature)  # UnsupportedByBackend before the test body runs
        except BaseException:
            client.close()
            raise
        self._chaos = Chaos(client, name_prefix=prefix, seed=self.seed)
        try:
            yield self._chaos
        finally:
            try:
                if self.settings.report is not None:
                    self._last_proxies = self._chaos.proxies
                    self._last_logs = self._read_logs()
                self._chaos.close()
            finally:
                client.close()
                _raise_backend_errors(backend)

    def watch(self, group: ServerGroup) -> None:
        self._groups.append(group)

    # -- around the test body ------------------------------------------------------------

    def before_call(self, funcargs: Mapping[str, object]) -> None:
        self._started_at = time.time()
        for value in funcargs.values():
            if _is_server(value):
                self._mark(value)  # type: ignore[arg-type]
        self._watch_for_a_hang()
        if not self.settings.leak_check:
            return
        check = leaks.LeakCheck(settle=LEAK_SETTLE_S)
        if self._hang is not None:
            check.ignore(self._hang.watcher)
        check.start()
        self._leak_check = check
        loop = _test_loop(funcargs)
        if loop is not None:
            self._task_check = leaks.LeakCheck(probes=[], settle=0.0)
            self._task_check.watch_loop(loop)

    def _watch_for_a_hang(self) -> None:
        if self.settings.hang_timeout <= 0:
            return
        self._hang = HangWatch(self.settings.hang_timeout, self._unblock)
        self._hang.start()

    def _unblock(self) -> None:
        """A hung client waits on one of our proxies, usually: cut them all."""
        if self._chaos is None:
            return
        try:
            for proxy in self._chaos.proxies:
                proxy.disable()
        finally:
            self._chaos.client.close()  # the watcher thread's keep-alive connection

    def stop_watching(self) -> None:
        """The test body is over (passed, failed or interrupted)."""
        if self._hang is not None:
            self._hang.stop()
        self._warn_about_hammering()

    def after_call(self) -> None:
        """Tasks still pending when an async test returns were leaked by it; a test the
        watchdog had to unblock hung, whatever it returned."""
        task_check, self._task_check = self._task_check, None
        if task_check is not None:
            task_check.assert_clean()
        if self._hang is not None and self._hang.fired:
            raise ChaosnetError(self._hang.describe())

    def _warn_about_hammering(self) -> None:
        if self._chaos is None or self.settings.hammer_rate <= 0:
            return
        for proxy in self._chaos.proxies:
            try:
                log = proxy.connections
            except ChaosnetError:  # no connection log on this backend
                return
            text = hammering(
                proxy.name, [r.opened_at for r in log.records], self.settings.hammer_rate
            )
            if text is not None:
                warnings.warn(HammeringWarning(text), stacklevel=1)

    def after_teardown(self) -> None:
        for server in self._servers():
            if id(server) not in self._crashed_before:
                server.check_alive()  # a server that died during this test fails it
        if self._leak_check is not None:
            check, self._leak_check = self._leak_check, None
            check.assert_clean()

    # -- failure report ----------------------------------------------------------------

    def report_sections(
        self, when: str, failure: str = "", ended: float | None = None
    ) -> list[tuple[str, str]]:
        """The failure report's sections; ``failure`` and ``ended`` (Unix time the failing
        phase ended) go into the picture when ``--chaosnet-report`` asks for one."""
        sections = [(f"chaosnet ({when})", self._describe_run())]
        if when == "call" and self._hang is not None and self._hang.fired:
            sections.append(("chaosnet hang", self._hang.describe()))
        if self._chaos is not None and when == "call":
            sections += [("chaosnet connections", self._describe_connections())]
        if self.settings.report is not None and self._chaos is not None:
            sections.append(("chaosnet report", self._write_picture(when, failure, ended)))
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
            messages = self._messages_by_connection(proxy)
            for record in log.records:
                lines.append(
                    f"  #{record.id} from {record.client}: up {record.bytes_upstream} B, "
                    f"down {record.bytes_downstream} B, {_state(record)}; "
                    f"toxics: {', '.join(record.toxics) or '-'}"
                )
                if messages is not None:
                    lines += _describe_messages(record, messages.get(record.id, []))
        return "\n".join(lines) or "no proxies"

    def _messages_by_connection(self, proxy: ProxyHandle) -> dict[int, list[MessageRecord]] | None:
        """The message log of a proxy with a protocol, by connection; None without one."""
        if proxy.protocol is None:
            return None
        try:
            records = proxy.messages.records
        except ChaosnetError:
            return None
        by_connection: dict[int, list[MessageRecord]] = {}
        for message in records:
            by_connection.setdefault(message.connection, []).append(message)
        return by_connection

    def _read_logs(self) -> dict[str, ConnectionLogInfo]:
        assert self._chaos is not None
        logs = {}
        for proxy in self._chaos.proxies:
            with suppress(ChaosnetError):  # a backend without the log: no lines, said so
                logs[proxy.name] = proxy.connections
        return logs

    def _write_picture(self, when: str, failure: str, ended: float | None) -> str:
        """Draw this test's proxies into the report folder; say where, or why not."""
        from chaosnet.picture import write_html, write_png
        from chaosnet.picture.page import report_path
        from chaosnet.picture.proxies import ProxyTrace, failing_test_picture

        assert self._chaos is not None
        assert self.settings.report is not None
        kind, folder = self.settings.report
        logs = self._read_logs() if when == "call" else self._last_logs
        now = time.time()
        origin = self._started_at or now
        traces = [
            ProxyTrace(
                p.name,
                p.history,
                logs.get(p.name),
                "" if p.name in logs else "no connection log (the backend has none)",
            )
            for p in (self._chaos.proxies if when == "call" else self._last_proxies)
        ]
        picture = failing_test_picture(
            self.nodeid,
            traces,
            origin=origin,
            end=ended or now,
            seed=self.seed,
            backend=self._backend.name if self._backend is not None else self.settings.backend,
            replay=f"pytest '{self.nodeid}' --chaosnet-seed {self.session_seed}",
            failure=failure,
            when=when,
        )
        path = report_path(folder, f"{self.nodeid}-{when}", kind)
        try:
            if kind == "png":
                write_png(path, [picture])
            else:
                write_html(path, [picture], title=f"chaosnet: {self.nodeid} failed")
        except (ChaosnetError, OSError) as exc:
            return f"no picture: {exc}"
        return f"picture of this test's proxies: {path.resolve()}"

    # -- helpers ---------------------------------------------------------------------------

    def _mark(self, server: RealServer) -> None:
        self._log_marks.setdefault(id(server), (server, server.log_position()))
        if server.crashed:
            self._crashed_before.add(id(server))

    def _since(self, server: RealServer) -> int:
        marked = self._log_marks.get(id(server))
        return marked[1] if marked is not None else 0

    def _servers(self) -> list[RealServer]:
        servers = [server for server, _ in self._log_marks.values()]
        for group in self._groups:
            servers += [s for s in group.servers if id(s) not in self._log_marks]
        return servers


def _describe_messages(record: ConnectionInfo, messages: list[MessageRecord]) -> list[str]:
    """A connection's message counts and its last messages, for the failure report."""
    line = f"    messages: {record.messages_upstream} up, {record.messages_downstream} down"
    if record.desynchronized:
        line += f"; desynchronized ({record.desync})"
    shown = messages[-LAST_MESSAGES:]
    if len(messages) > len(shown):
        line += f"; last {len(shown)}:"
    return [line, *(f"      {message}" for message in shown)]


def _state(record: ConnectionInfo) -> str:
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
