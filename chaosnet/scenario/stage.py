"""The stage of a running scenario: its real servers and proxies, and what steps do to them.

``start()`` is all or nothing: if any server or proxy fails to come up,
whatever did is taken down again before the error is raised. ``close()``
removes the proxies first (clients see the cut) and then stops the servers;
it tries everything and reports the first failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chaosnet.control import ControlClient
from chaosnet.controller import Chaos, Proxy
from chaosnet.retry import Endpoint
from chaosnet.scenario.checks import toxic_definitions, update_attributes
from chaosnet.scenario.loader import LoadedScenario
from chaosnet.scenario.model import BuiltinServer, CommandServer, DockerServer, Readiness, Step
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
        self.proxies: dict[str, Proxy] = {}
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
            for name, spec in self.scenario.spec.proxies.items():
                upstream = (
                    self.servers[spec.server].address
                    if spec.server is not None
                    else spec.upstream or ""
                )
                proxy = self.chaos.proxy(upstream, name=name)
                self.proxies[name] = proxy
                for toxic in spec.toxics:
                    self._add_toxic(proxy, toxic, name)
        except BaseException:
            self.close(quiet=True)
            raise

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
        action, target = step.action, step.target
        if action == "add_toxic":
            proxy_name = target.proxy
            self._add_toxic(self.proxies[proxy_name], target, proxy_name)
        elif action == "update_toxic":
            toxic_type = self._toxic_types[(target.proxy, target.name)]
            self.control.update_toxic(
                self.proxies[target.proxy].name,
                target.name,
                attributes=update_attributes(target, toxic_type) or None,
                toxicity=target.toxicity,
            )
        elif action == "remove_toxic":
            self.control.remove_toxic(self.proxies[target.proxy].name, target.name)
        elif action == "disable":
            self.proxies[target].disable()
        elif action == "enable":
            self.proxies[target].enable()
        else:
            self._server_action(action, target)

    def _server_action(self, action: str, name: str) -> None:
        process = self.servers[name]
        if action == "kill":
            process.kill()
        elif action == "stop":
            process.stop()
        elif action == "start":
            process.start()
        elif action == "restart":
            process.restart()
        elif action == "pause":
            process.pause()
        elif action == "resume":
            process.resume()
        else:
            raise AssertionError(f"unhandled step action {action!r}")

    def _add_toxic(self, proxy: Proxy, toxic: ToxicBase, proxy_name: str) -> None:
        fields = toxic.extension_fields()
        if self._seed_toxics and "seed" not in fields:
            fields["seed"] = derive_seed(self.seed, proxy_name, toxic.toxic_name)
        proxy.toxic(
            toxic.type,
            stream=toxic.stream,
            toxicity=toxic.toxicity,
            name=toxic.toxic_name,
            **toxic.attributes(),
            **fields,
        )

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
