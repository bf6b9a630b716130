"""The stage of a running scenario: its real servers and proxies, and what steps do to them.

``start()`` is all or nothing: if any server or proxy fails to come up,
whatever did is taken down again before the error is raised. ``close()``
removes the proxies first (clients see the cut) and then stops the servers;
it tries everything and reports the first failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chaosnet.chaos import Chaos, ProxyHandle
from chaosnet.control import ControlClient
from chaosnet.retry import Endpoint
from chaosnet.scenario.checks import toxic_definitions, update_attributes
from chaosnet.scenario.loader import LoadedScenario
from chaosnet.scenario.model import (
    SERVER_ACTIONS,
    BuiltinServer,
    CommandServer,
    DockerServer,
    Readiness,
    Step,
)
from chaosnet.scenario.toxics import ToxicBase
from chaosnet.seeds import derive_seed
from chaosnet.servers import ArgvSpec, HttpOk, LogLine, PortAccepts, ServerProcess, builtin_server
from chaosnet.servers.lifecycle import RealServer
from chaosnet.servers.readiness import ReadinessCheck

PORT_PLACEHOLDER = "{port}"


class Stage:
    def __init__(
        self,
        scenario: LoadedScenario,
        control: ControlClient,
        *,
        seed: int,
        name_prefix: str,
        on_server: Callable[[str, RealServer], None] = lambda name, server: None,
    ) -> None:
        self.scenario = scenario
        self.control = control
        self.seed = seed
        self.chaos = Chaos(control, name_prefix=name_prefix)
        self.servers: dict[str, RealServer] = {}
        self.proxies: dict[str, ProxyHandle] = {}
        self._on_server = on_server
        self._seed_toxics = "seed" in control.extensions
        self._toxic_types = {
            (proxy, name): toxic.type
            for proxy, toxics in toxic_definitions(scenario.spec).items()
            for name, toxic in toxics.items()
        }

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        try:
            for name, server in self.scenario.spec.servers.items():
                process = self._server(name, server)
                self.servers[name] = process
                process.start()
                self._on_server(name, process)
            self._start_proxies()
        except BaseException:
            self.close(quiet=True)
            raise

    def _start_proxies(self) -> None:
        for name, spec in self.scenario.spec.proxies.items():
            upstream = (
                self.servers[spec.server].address
                if spec.server is not None
                else spec.upstream or ""
            )
            proxy = self.chaos.proxy(
                upstream,
                name=name,
                transport=spec.transport,
                flow_timeout=spec.flow_timeout_ms,
                protocol=spec.protocol,
                protocol_options=spec.protocol_options or None,
            )
            self.proxies[name] = proxy
            for toxic in spec.toxics:
                self._add_toxic(proxy, toxic, name)

    def reset(self) -> None:
        """Back to how ``start()`` left it, between two runs on one stage (exploration).

        Servers are resumed or started again where a step left them paused or
        down; proxies are made anew, so each run has fresh connection logs and
        only the file's own toxics. Servers keep running: that is the saving.
        """
        for process in self.servers.values():
            if process.paused:
                process.resume()
            if not process.running:
                process.start()
        self.chaos.close()
        self.proxies.clear()
        self._start_proxies()

    def close(self, *, quiet: bool = False) -> None:
        """Remove the proxies, stop the servers; raise the first failure unless ``quiet``."""
        errors: list[BaseException] = []
        try:
            self.chaos.close()
        except Exception as exc:
            errors.append(exc)
        for process in reversed(list(self.servers.values())):
            try:
                process.stop()
            except Exception as exc:
                errors.append(exc)
        self.servers.clear()
        self.proxies.clear()
        if errors and not quiet:
            raise errors[0]

    def endpoints(self, names: Sequence[str]) -> list[Endpoint]:
        return [self.proxies[name].address for name in names]

    # -- steps ----------------------------------------------------------------------------

    def fire(self, step: Step) -> None:
        """Apply one timeline step."""
        target = step.target
        if step.update_toxic is not None:
            toxic_type = self._toxic_types[(target.proxy, target.name)]
            self.control.update_toxic(
                self.proxies[target.proxy].name,
                target.name,
                attributes=update_attributes(target, toxic_type) or None,
                toxicity=target.toxicity,
            )
        else:
            apply_step(step, self.proxies, self.servers, self._add_toxic)

    def _add_toxic(self, proxy: ProxyHandle, toxic: ToxicBase, proxy_name: str) -> None:
        seed = None
        if self._seed_toxics and toxic.seed is None:
            seed = derive_seed(self.seed, proxy_name, toxic.toxic_name)
        add_toxic(proxy, toxic, seed=seed)

    # -- servers ---------------------------------------------------------------------------

    def _server(self, name: str, server: Any) -> RealServer:
        label = f"{self.scenario.name}:{name}"
        if isinstance(server, BuiltinServer):
            return builtin_server(
                server.builtin,
                dedupe=server.dedupe,
                max_frame_size=server.max_frame_size,
                name=label,
            )
        if isinstance(server, CommandServer):
            return _command_server(server, label, self.scenario.path.parent)
        if isinstance(server, DockerServer):
            return _container_server(server, label)
        raise AssertionError(f"unhandled server kind {type(server).__name__}")


AddToxic = Callable[[ProxyHandle, ToxicBase, str], None]


def add_toxic(proxy: ProxyHandle, toxic: ToxicBase, *, seed: int | None = None) -> None:
    """Add a scenario's toxic (a file's, or a step's) to a proxy, with ``seed`` if given."""
    fields = toxic.extension_fields()
    if seed is not None:
        fields["seed"] = seed
    proxy.toxic(
        toxic.type,
        stream=toxic.stream,
        toxicity=toxic.toxicity,
        name=toxic.toxic_name,
        **toxic.attributes(),
        **fields,
    )


def apply_step(
    step: Step,
    proxies: Mapping[str, ProxyHandle],
    servers: Mapping[str, RealServer],
    add_toxic: AddToxic,
) -> None:
    """Apply a step that adds or removes a toxic, or acts on a proxy or a server.

    ``proxies`` and ``servers`` are by the names the step uses; ``add_toxic``
    adds a step's toxic to a proxy (the caller decides its seed). The scenario
    stage and ``Chaos.run_schedule`` both apply steps through this one function.
    """
    action, target = step.action, step.target
    if action == "add_toxic":
        add_toxic(proxies[target.proxy], target, target.proxy)
    elif action == "remove_toxic":
        proxy = proxies[target.proxy]
        proxy.client.remove_toxic(proxy.name, target.name)
    elif action == "disable":
        proxies[target].disable()
    elif action == "enable":
        proxies[target].enable()
    elif action in SERVER_ACTIONS:  # each is the server's method of that name
        getattr(servers[target], action)()
    else:
        raise AssertionError(f"unhandled step action {action!r}")


def argv_for_port(command: Sequence[str]) -> ArgvSpec:
    """The command as is, or as a function of the port when it says ``{port}``."""
    fixed = list(command)
    if not any(PORT_PLACEHOLDER in part for part in fixed):
        return fixed

    def argv(port: int) -> list[str]:
        return [part.replace(PORT_PLACEHOLDER, str(port)) for part in fixed]

    return argv


def _command_server(server: CommandServer, label: str, folder: Path) -> ServerProcess:
    ready = server.ready
    cwd = folder / server.cwd if server.cwd is not None else folder
    return ServerProcess(
        argv_for_port(server.command),
        name=label,
        address=(ready.host, ready.port) if ready.port is not None else None,
        ready=readiness_checks(ready),
        env=server.env,
        cwd=cwd,
        ready_timeout=ready.timeout,
    )


def _container_server(server: DockerServer, label: str) -> RealServer:
    from chaosnet.servers.container import ContainerServer  # needs the Docker SDK

    spec, ready = server.docker, server.docker.ready
    return ContainerServer(
        spec.image,
        argv_for_port(spec.command) if spec.command is not None else None,
        name=label,
        address=(ready.host, ready.port) if ready.port is not None else None,
        ready=readiness_checks(ready),
        env=spec.env,
        entrypoint=spec.entrypoint,
        ready_timeout=ready.timeout,
    )


def readiness_checks(ready: Readiness) -> list[ReadinessCheck]:
    """Log line first (it may tell the port), then the port accepting, then HTTP."""
    checks: list[ReadinessCheck] = []
    if ready.log is not None:
        checks.append(LogLine(ready.log))
    checks.append(PortAccepts())
    if ready.http is not None:
        checks.append(HttpOk(ready.http))
    return checks
