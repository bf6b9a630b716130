"""Run one scenario: bring up its stage, run the workload against the timeline, judge it.

The workload runs on a thread of its own so the scenario's timeout holds
even for a callable that hangs, and so Ctrl-C (delivered to the main thread)
always reaches the teardown: proxies removed, servers stopped. A scenario's
result is ``passed``, ``failed`` (an expectation did not hold) or ``error``
(the experiment could not be run as written: a server did not start, a step
failed, the workload crashed).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol

from chaosnet.address import format_address
from chaosnet.control import CONNECTION_LOG, ConnectionLogInfo, ControlClient
from chaosnet.errors import ChaosnetError
from chaosnet.framing import DEFAULT_MAX_FRAME_SIZE
from chaosnet.kv import KVClient, WriteRecord
from chaosnet.leaks import LeakCheck, Resource
from chaosnet.retry import Endpoint, RetryPolicy
from chaosnet.scenario.expectations import (
    Observation,
    evaluate,
    request_hung,
    workload_crashed,
)
from chaosnet.scenario.loader import LoadedScenario
from chaosnet.scenario.model import RECOVERY_ACTIONS, BuiltinServer, Scenario
from chaosnet.scenario.result import ExpectationResult, ScenarioResult
from chaosnet.scenario.stage import Stage
from chaosnet.scenario.timeline import Timeline, TimelineEvent, describe
from chaosnet.scenario.wire import Wire
from chaosnet.scenario.workloads import (
    BUILTIN,
    RequestRecord,
    RetrySettings,
    WorkloadContext,
    retry_policy,
    scenario_kind,
)
from chaosnet.seeds import derive_seed
from chaosnet.servers.lifecycle import RealServer
from chaosnet.watchdog import stuck_at

if TYPE_CHECKING:
    from chaosnet.backends import Backend

#: How long to wait for a stopped workload to notice, and for connections to drain.
WORKLOAD_GRACE_S = 5.0
DRAIN_TIMEOUT_S = 0.5
LEAK_SETTLE_S = 0.5
LOG_SETTLE_S = 0.2
TRACEBACK_FRAMES = 4
WATCHDOG_TICK_S = 0.02


class Listener(Protocol):
    """What the runner tells the display while a scenario runs."""

    def scenario_started(self, scenario: LoadedScenario, seed: int) -> None: ...

    def server_started(self, scenario: LoadedScenario, name: str, server: RealServer) -> None: ...

    def workload_started(self, scenario: LoadedScenario) -> None: ...

    def request_done(self, scenario: LoadedScenario, record: RequestRecord) -> None: ...

    def event(self, scenario: LoadedScenario, event: TimelineEvent) -> None: ...

    def scenario_finished(self, result: ScenarioResult) -> None: ...


class QuietListener:
    """A listener that shows nothing, where the result tells the story (pytest, exploring)."""

    def scenario_started(self, scenario: LoadedScenario, seed: int) -> None:
        pass

    def server_started(self, scenario: LoadedScenario, name: str, server: RealServer) -> None:
        pass

    def workload_started(self, scenario: LoadedScenario) -> None:
        pass

    def request_done(self, scenario: LoadedScenario, record: RequestRecord) -> None:
        pass

    def event(self, scenario: LoadedScenario, event: TimelineEvent) -> None:
        pass

    def scenario_finished(self, result: ScenarioResult) -> None:
        pass


def fault_kinds(spec: Scenario) -> list[str]:
    """The kinds of fault a scenario injects: toxic types and disruptive steps, in order."""
    kinds: list[str] = [toxic.type for proxy in spec.proxies.values() for toxic in proxy.toxics]
    for step in spec.timeline:
        if step.add_toxic is not None:
            kinds.append(step.add_toxic.type)
        elif step.action not in RECOVERY_ACTIONS and step.action != "update_toxic":
            kinds.append(step.action)
    return list(dict.fromkeys(kinds))


class ProxySideSockets:
    """Leak-check exemption for an in-process (embedded) proxy's own sockets.

    They live in this process but belong to the proxy, not the client: its
    listeners and accepted connections (local port = a proxy's port) and its
    connections to the servers (peer = a server's address).
    """

    def __init__(self, stage: Stage) -> None:
        self.proxy_ports = {proxy.port for proxy in stage.proxies.values()}
        self.upstreams = {server.address for server in stage.servers.values()}

    def exempts(self, resource: Resource) -> bool:
        if resource.kind != "socket" or resource.fd is None:
            return False
        local, peer = _socket_addresses(resource.fd)
        return (local is not None and local[1] in self.proxy_ports) or peer in self.upstreams


def _socket_addresses(fd: int) -> tuple[Endpoint | None, Endpoint | None]:
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None, None
    try:
        return _address(sock.getsockname), _address(sock.getpeername)
    finally:
        sock.detach()


def _address(get: Callable[[], object]) -> Endpoint | None:
    try:
        name = get()
    except OSError:
        return None
    if isinstance(name, tuple) and len(name) >= 2:
        return str(name[0]), int(name[1])
    return None


@dataclass
class _WorkloadOutcome:
    elapsed: float = 0.0
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    hung: ExpectationResult | None = None  # the watchdog fired, or (check) the client crashed


class ScenarioRun:
    """One run of one scenario against a started control server."""

    def __init__(
        self,
        scenario: LoadedScenario,
        control: ControlClient,
        *,
        seed: int,
        backend: str,
        listener: Listener,
        take_backend_errors: Callable[[], list[BaseException]] = list,
        in_process_proxy: bool = False,
        request_time_limit: float | None = None,
        judge_client: bool = False,
    ) -> None:
        self.scenario = scenario
        #: ``chaosnet check``: the client is what is judged, so its crash fails the scenario
        #: (an expectation) where a file's own client crashing means it could not run (an error).
        self.judge_client = judge_client
        #: The watchdog's limit: the file's ``max_request_time``, else this default.
        self.request_time_limit = scenario.spec.expect.max_request_time or request_time_limit
        self.in_process_proxy = in_process_proxy
        self.spec = scenario.spec
        self.control = control
        self.seed = seed
        self.listener = listener
        self.take_backend_errors = take_backend_errors
        self.result = ScenarioResult(
            name=scenario.name,
            path=scenario.path,
            seed=seed,
            backend=backend,
            faults=fault_kinds(scenario.spec),
            planned_requests=scenario.spec.client.requests,
            spec=scenario.spec,
        )
        self.stop = threading.Event()
        self.step_lock = threading.Lock()  # held while a step runs, and for the teardown
        self._proxy_sockets: ProxySideSockets | None = None

    def run(self) -> ScenarioResult:
        started = time.monotonic()
        self.listener.scenario_started(self.scenario, self.seed)
        stage: Stage | None = None
        try:
            stage = self.stage()
            stage.start()
            self._exercise(stage)
        except (ChaosnetError, OSError) as exc:
            self.result.error = str(exc)
        finally:
            self.stop.set()  # no further step fires, the workload stops at its next request
            if stage is not None:
                self._keep_connection_logs(stage)
                self._tear_down(stage)
            self.result.duration = time.monotonic() - started
        return self._concluded()

    def stage(self) -> Stage:
        """The stage this scenario needs, not yet started."""
        return Stage(
            self.scenario,
            self.control,
            seed=self.seed,
            name_prefix=f"chaosnet-{os.getpid()}-{self.scenario.name}-",
            on_server=lambda name, server: self.listener.server_started(
                self.scenario, name, server
            ),
        )

    def run_on(self, stage: Stage) -> ScenarioResult:
        """Run on a stage that is up already; it is neither started nor taken down here."""
        started = time.monotonic()
        self.listener.scenario_started(self.scenario, self.seed)
        try:
            with self.step_lock:
                stage.reset()
            self._exercise(stage)
        except (ChaosnetError, OSError) as exc:
            self.result.error = str(exc)
        finally:
            self.stop.set()
            with self.step_lock:  # a step still running finishes before the stage is reused
                self.result.duration = time.monotonic() - started
        return self._concluded()

    def _concluded(self) -> ScenarioResult:
        self.result.conclude()
        self.listener.scenario_finished(self.result)
        return self.result

    def _tear_down(self, stage: Stage) -> None:
        """Take the stage down once no step is half-done (a restart racing the stop)."""
        with self.step_lock:
            try:
                stage.close()
            except ChaosnetError as exc:
                self.result.error = self.result.error or f"teardown failed: {exc}"

    # -- the experiment -----------------------------------------------------------------

    def _exercise(self, stage: Stage) -> None:
        ctx = self._context(stage)
        timeline = Timeline(
            self.spec.timeline,
            stage.fire,
            ctx.now,
            self.stop,
            lambda event: self.listener.event(self.scenario, event),
            lock=self.step_lock,
        )
        timeline.on_thread_exit = self.control.close  # its keep-alive connection
        ctx.before_request = timeline.before_request
        leaks = self._leak_check(stage)
        ctx.origin = time.monotonic()
        self.result.started_at = time.time()
        wall_origin = self.result.started_at
        self.result.workload_started = True
        self.listener.workload_started(self.scenario)
        timeline.start()
        outcome = self._run_workload(ctx)
        timeline.stop()
        self.result.requests = list(ctx.records)
        self.result.events = list(timeline.events)
        self.result.elapsed = outcome.elapsed
        if outcome.hung is None:
            try:
                self._check_it_ran_as_written(stage, outcome, timeline)  # may set outcome.hung
            except ChaosnetError:
                if leaks is not None:
                    leaks.stop()  # not judged: the run did not happen as written
                raise
        wire = self._wire(stage, wall_origin)
        if wire is not None:
            self._count_attempts_on_the_wire(wire)
        observation = Observation(
            requests=self.result.requests,
            planned=self.spec.client.requests,
            events=self.result.events,
            elapsed=outcome.elapsed,
            unfired=[f"step {i}: {describe(s)}" for i, s in timeline.unfired()],
            wire=wire,
            cut_short=outcome.hung,
        )
        if leaks is not None and outcome.hung is not None:
            leaks.stop()  # the stuck workload still holds what it uses: not judged
        elif leaks is not None:
            self._drain(stage)
            observation.leaks = leaks.finish(settle=LEAK_SETTLE_S)
        if self.spec.expect.delivery is not None:
            observation.writes = self._kv_writes(stage)
        if self.spec.expect.connections:
            observation.connections = self._connection_logs(stage)
        self.result.expectations = evaluate(self.spec.expect, observation)

    def _wire(self, stage: Stage, wall_origin: float) -> Wire | None:
        """Every proxy's connections during the workload, once they have settled."""
        if CONNECTION_LOG not in self.control.extensions:
            return None
        self._drain(stage)
        logs: dict[str, ConnectionLogInfo] = {}
        for name, proxy in stage.proxies.items():
            with suppress(ChaosnetError):
                logs[name] = proxy.connections
        return Wire.from_logs(logs, wall_origin)

    def _count_attempts_on_the_wire(self, wire: Wire) -> None:
        """A request took at least the attempts the proxies saw, whatever the client says."""
        seen = wire.attempts(self.result.requests)
        for record in self.result.requests:
            record.wire_attempts = seen.get(record.index, 0)
            record.attempts = max(record.attempts, record.wire_attempts)

    def _context(self, stage: Stage) -> WorkloadContext:
        client = self.spec.client
        return WorkloadContext(
            scenario=self.scenario.name,
            endpoints=stage.endpoints(client.endpoints),
            proxies={name: proxy.address for name, proxy in stage.proxies.items()},
            servers={name: server.address for name, server in stage.servers.items()},
            retry=retry_policy(client, derive_seed(self.seed, "retry")),
            seed=self.seed,
            count=client.requests,
            rate=client.rate,
            payload_size=client.payload,
            timeout=client.timeout,
            idempotent=client.idempotent,
            max_frame_size=client.max_frame_size or DEFAULT_MAX_FRAME_SIZE,
            options=dict(client.options),
            on_request_done=lambda record: self.listener.request_done(self.scenario, record),
            before_request=lambda finished: None,
            stop_event=self.stop,
            kind=scenario_kind(self.spec),
            retry_settings=RetrySettings.of(client),
        )

    def _leak_check(self, stage: Stage) -> LeakCheck | None:
        if not self.spec.expect.no_leaks:
            return None
        ignore: list[Any] = list(stage.servers.values())
        if self.in_process_proxy:
            self._proxy_sockets = ProxySideSockets(stage)  # exemptions are held weakly
            ignore.append(self._proxy_sockets)
        check = LeakCheck(ignore=ignore, settle=LEAK_SETTLE_S)
        check.start()
        return check

    def _run_workload(self, ctx: WorkloadContext) -> _WorkloadOutcome:
        workload = self.scenario.workload or BUILTIN[self.spec.client.workload]
        outcome = _WorkloadOutcome()

        def target() -> None:
            try:
                workload(ctx)
            except BaseException as exc:  # reported as the scenario's error below
                outcome.error = exc
            finally:
                outcome.elapsed = ctx.now()
                self.control.close()  # this thread's keep-alive connection, if a step used it
                outcome.finished.set()

        thread = threading.Thread(target=target, name="chaosnet-workload", daemon=True)
        thread.start()
        try:
            finished = self._watch(ctx, thread, outcome)
        except BaseException:
            self.stop.set()  # Ctrl-C: let the workload see it; the teardown cuts the rest
            raise
        if outcome.hung is not None:
            self.stop.set()  # the teardown closes the proxies it is stuck on
            outcome.elapsed = ctx.now()
            return outcome
        if not finished:
            self.stop.set()
            outcome.error = TimeoutError(
                f"the workload did not finish within the scenario timeout ({self.spec.timeout:g}s)"
            )
            outcome.elapsed = ctx.now()
        thread.join(WORKLOAD_GRACE_S)
        return outcome

    def _watch(
        self, ctx: WorkloadContext, thread: threading.Thread, outcome: _WorkloadOutcome
    ) -> bool:
        """Wait for the workload; False on the scenario timeout. With a request time limit,
        a request (or the workload's code between requests) running past it stops the
        wait at once, with where the workload's thread is stuck."""
        limit = self.request_time_limit
        if limit is None:
            return outcome.finished.wait(self.spec.timeout)
        deadline = time.monotonic() + self.spec.timeout
        while not outcome.finished.wait(
            min(WATCHDOG_TICK_S, max(0.0, deadline - time.monotonic()))
        ):
            if time.monotonic() >= deadline:
                return False
            busy_since, index = ctx.busy_since, ctx.in_flight
            if busy_since is not None and ctx.now() - busy_since > limit:
                where, stack = stuck_at(thread)
                outcome.hung = request_hung(limit, where, index, stack)
                return False
        return True

    def _check_it_ran_as_written(
        self, stage: Stage, outcome: _WorkloadOutcome, timeline: Timeline
    ) -> None:
        """The experiment did not happen as written: an error, not a failed expectation."""
        if timeline.error is not None:
            raise ChaosnetError(timeline.error)
        if outcome.error is not None and self.judge_client:
            outcome.hung = workload_crashed(self._workload_error(outcome.error))
        elif outcome.error is not None:
            raise ChaosnetError(self._workload_error(outcome.error))
        for server in stage.servers.values():
            server.check_alive()
        errors = self.take_backend_errors()
        if errors:
            raise ChaosnetError(
                "the proxy server failed while the scenario ran: "
                + "; ".join(f"{type(e).__name__}: {e}" for e in errors)
            )

    def _workload_error(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError | ChaosnetError):
            return str(exc)
        where = self.spec.client.workload
        lines = traceback.format_exception(exc, limit=-TRACEBACK_FRAMES)
        return f"the workload {where} raised {type(exc).__name__}: {exc}\n" + "".join(lines)

    # -- observations ---------------------------------------------------------------------

    def _keep_connection_logs(self, stage: Stage) -> None:
        """What each proxy saw, for the reports, read before the teardown removes it."""
        self.result.proxy_addresses = {
            name: format_address(*proxy.address) for name, proxy in stage.proxies.items()
        }
        if CONNECTION_LOG not in self.control.extensions:
            return
        for name, proxy in stage.proxies.items():
            with suppress(ChaosnetError):  # the client's last closes land a moment later
                self.result.connections[name] = self.control.connections(
                    proxy.name, wait_open=0, timeout=LOG_SETTLE_S
                )

    def _drain(self, stage: Stage) -> None:
        """Let the proxies notice the client's closes, so the check sees settled sockets."""
        if CONNECTION_LOG not in self.control.extensions:
            return
        for proxy in stage.proxies.values():
            with suppress(ChaosnetError):
                proxy.wait_connections(open=0, timeout=DRAIN_TIMEOUT_S)

    def _kv_writes(self, stage: Stage) -> list[WriteRecord]:
        names = {self.spec.proxies[e].server for e in self.spec.client.endpoints}
        for name in names:
            server = self.spec.servers.get(name or "")
            if isinstance(server, BuiltinServer) and server.builtin == "kv" and name:
                with KVClient(
                    stage.servers[name].address, retry=RetryPolicy(attempts=3), timeout=5.0
                ) as client:
                    return client.writes()
        return []

    def _connection_logs(self, stage: Stage) -> dict[str, ConnectionLogInfo]:
        logs: dict[str, ConnectionLogInfo] = {}
        for name, counts in (self.spec.expect.connections or {}).items():
            proxy = stage.proxies[name]
            if counts.open is not None:
                with suppress(ChaosnetError):
                    proxy.wait_connections(open=counts.open, timeout=DRAIN_TIMEOUT_S)
            logs[name] = proxy.connections
        return logs


P = ParamSpec("P")


def _run_now(make: Callable[P, ScenarioRun]) -> Callable[P, ScenarioResult]:
    def run(*args: P.args, **kwargs: P.kwargs) -> ScenarioResult:
        return make(*args, **kwargs).run()

    run.__name__ = run.__qualname__ = "run_scenario"
    run.__doc__ = (
        "``ScenarioRun(...).run()``: one run of one scenario, with ScenarioRun's arguments."
    )
    return run


run_scenario = _run_now(ScenarioRun)


@dataclass(frozen=True)
class RunTarget:
    """The started control server a session's runs go against, and the session's seed.

    ``chaosnet run``, ``check`` and ``explore`` and the pytest plugin each hold one and
    hand it to every :class:`ScenarioRun` they make (:meth:`scenario_run`).
    """

    control: ControlClient
    seed: int
    backend: str  # how results and messages name the backend
    take_backend_errors: Callable[[], list[BaseException]] = list
    in_process_proxy: bool = False

    @classmethod
    def of(cls, backend: Backend, control: ControlClient, *, seed: int, label: str) -> RunTarget:
        """A started backend: the errors raised inside it are taken after each run, and an
        embedded proxy's sockets live in this process (the leak check exempts them)."""
        return cls(control, seed, label, backend.take_errors, backend.name == "embedded")

    def scenario_run(
        self,
        scenario: LoadedScenario,
        listener: Listener,
        *,
        request_time_limit: float | None = None,
        judge_client: bool = False,
    ) -> ScenarioRun:
        return ScenarioRun(
            scenario,
            self.control,
            seed=self.seed,
            backend=self.backend,
            listener=listener,
            take_backend_errors=self.take_backend_errors,
            in_process_proxy=self.in_process_proxy,
            request_time_limit=request_time_limit,
            judge_client=judge_client,
        )
