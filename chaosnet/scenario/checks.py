"""Checks across a scenario's parts, after each value passed the schema.

References (a proxy's server, a step's proxy, server or toxic, the client's
endpoints), the timeline (every step must be able to happen during the run),
workload and server kinds that fit together, the callable (imported here: a
scenario that names one is code), and which chaosnet extensions the backend
must support.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from chaosnet.control import CONNECTION_LOG, DATAGRAM_PROXIES, PROTOCOL, TOXIPROXY_TOXIC_TYPES
from chaosnet.proxy.addresses import is_loopback, parse_upstream
from chaosnet.proxy.errors import ApiError
from chaosnet.proxy.toxics import REGISTRY
from chaosnet.scenario.envelope_checks import check_envelope
from chaosnet.scenario.errors import did_you_mean, dotted
from chaosnet.scenario.model import (
    BUILTIN_WORKLOADS,
    BuiltinServer,
    Client,
    Scenario,
    Step,
    UpdateToxic,
)
from chaosnet.scenario.positions import DataPath, Positions, Problem
from chaosnet.scenario.toxics import COMMON_FIELDS, TOXICS_BY_TYPE, ToxicBase, attribute_names
from chaosnet.scenario.units import format_duration

#: Which builtin server each builtin workload talks to.
#: Expectations judged from the proxies' connection logs (a chaosnet extension).
WIRE_EXPECTATIONS = ("max_connect_rate", "backoff", "max_sends")
WORKLOAD_SERVERS = {
    "framed": ("framed_echo", "echo"),
    "kv": ("kv",),
    "stream": ("echo",),
    "datagram": ("udp_echo",),
    "http": ("http",),
}
#: The proxy transport each builtin workload speaks.
WORKLOAD_TRANSPORTS = {
    "framed": "tcp",
    "kv": "tcp",
    "stream": "tcp",
    "datagram": "udp",
    "http": "tcp",
}


@dataclass
class Checked:
    problems: list[Problem] = field(default_factory=list)
    workload: Callable[..., Any] | None = None


def planned_length(client: Client) -> float | None:
    """When the last request starts, for a paced workload; None when unpaced."""
    if client.rate is None:
        return None
    return (client.requests - 1) / client.rate


def toxic_definitions(spec: Scenario) -> dict[str, dict[str, ToxicBase]]:
    """Per proxy, every toxic the scenario may add (initially or in a step), by name."""
    defined: dict[str, dict[str, ToxicBase]] = {name: {} for name in spec.proxies}
    for name, proxy in spec.proxies.items():
        for toxic in proxy.toxics:
            defined[name].setdefault(toxic.toxic_name, toxic)
    for step in spec.timeline:
        if step.add_toxic is not None:
            target = getattr(step.add_toxic, "proxy", "")
            defined.setdefault(target, {}).setdefault(step.add_toxic.toxic_name, step.add_toxic)
    return defined


class BadAttribute(ValueError):
    """An update step names an attribute its toxic lacks, or gives it a bad value."""

    def __init__(self, key: str, message: str, *, unknown: bool = False) -> None:
        self.key = key
        self.unknown = unknown
        super().__init__(message)


def update_attributes(update: UpdateToxic, toxic_type: str) -> dict[str, Any]:
    """The new attribute values of an update step, checked and in Toxiproxy's units.

    Raises :class:`BadAttribute` when one is unknown or invalid.
    """
    model = TOXICS_BY_TYPE[toxic_type]
    allowed = attribute_names(toxic_type)
    converted: dict[str, Any] = {}
    for key, value in (update.model_extra or {}).items():
        if key not in allowed or key in COMMON_FIELDS:
            known = ", ".join(allowed) or "none"
            raise BadAttribute(
                key,
                f"unknown attribute {key!r} for a {toxic_type} toxic"
                f"{did_you_mean(key, allowed)} (its attributes: {known})",
                unknown=True,
            )
        info = model.model_fields[key]
        annotated: Any = Annotated[(info.annotation, *info.metadata)]
        adapter: TypeAdapter[Any] = TypeAdapter(annotated, config=ConfigDict(strict=True))
        try:
            converted[key] = adapter.validate_python(value)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            if "got " not in reason:
                reason += f", got {value!r}"
            raise BadAttribute(key, reason) from None
    return converted


def extensions_used(spec: Scenario) -> list[tuple[str, DataPath]]:
    """Each chaosnet extension the scenario needs, with where it is asked for."""
    used: list[tuple[str, DataPath]] = []
    for name, proxy in spec.proxies.items():
        if proxy.transport == "udp":
            used.append((DATAGRAM_PROXIES, ("proxies", name, "transport")))
        if proxy.protocol is not None:
            used.append((PROTOCOL, ("proxies", name, "protocol")))
        for index, toxic in enumerate(proxy.toxics):
            used += _toxic_extensions(toxic, ("proxies", name, "toxics", index))
    for index, step in enumerate(spec.timeline):
        if step.add_toxic is not None:
            used += _toxic_extensions(step.add_toxic, ("timeline", index, "add_toxic"))
    if spec.expect.connections:
        used.append((CONNECTION_LOG, ("expect", "connections")))
    for name in WIRE_EXPECTATIONS:
        if getattr(spec.expect, name) is not None:
            used.append((CONNECTION_LOG, ("expect", name)))
    return used + _envelope_extensions(spec)


def _envelope_extensions(spec: Scenario) -> list[tuple[str, DataPath]]:
    """What the faults an envelope may generate need from the backend."""
    used: list[tuple[str, DataPath]] = []
    for index, kind in enumerate(spec.explore.faults if spec.explore else []):
        where: DataPath = ("explore", "faults", index)
        if kind.toxic in TOXICS_BY_TYPE and kind.toxic not in TOXIPROXY_TOXIC_TYPES:
            used.append((kind.toxic, (*where, "toxic")))
        used += [(field, (*where, field)) for field in kind.targeting()]
    return used


def _toxic_extensions(toxic: ToxicBase, path: DataPath) -> list[tuple[str, DataPath]]:
    return [
        (feature, (*path, "type" if feature == toxic.type else feature))
        for feature in toxic.extensions_used()
    ]


def check_backend(
    spec: Scenario, positions: Positions, supported: Collection[str], backend: str
) -> list[Problem]:
    """A problem for every extension the scenario needs that the backend lacks."""
    return [
        positions.problem(
            path,
            f"{dotted(path)}: not supported by backend {backend}: {feature}",
            key=path[-1] == feature,  # a field: point at its key; a toxic type: at the value
        )
        for feature, path in extensions_used(spec)
        if feature not in supported
    ]


def check_scenario(spec: Scenario, path: Path, positions: Positions) -> Checked:
    checker = _Checker(spec, path, positions)
    checker.run()
    return Checked(checker.problems, checker.workload)


class _Checker:
    def __init__(self, spec: Scenario, path: Path, positions: Positions) -> None:
        self.spec = spec
        self.path = path
        self.positions = positions
        self.problems: list[Problem] = []
        self.workload: Callable[..., Any] | None = None
        self.toxics = toxic_definitions(spec)

    def run(self) -> None:
        self._servers_and_proxies()
        self._client()
        self._timeline()
        self._expectations()
        check_envelope(self.spec, self.fail, self._reference)

    def fail(self, path: DataPath, message: str, *, key: bool = False) -> None:
        shown = path[:-1] if key else path
        prefix = f"{dotted(shown)}: " if shown else ""
        self.problems.append(self.positions.problem(path, prefix + message, key=key))

    # -- references -----------------------------------------------------------------------

    def _reference(
        self, path: DataPath, name: str, kind: str, known: Collection[str], owner: str = ""
    ) -> bool:
        if name in known:
            return True
        hint = did_you_mean(name, known)
        listing = f" (known: {', '.join(sorted(known))})" if known and not hint else ""
        what = f"{owner} has no {kind} {name!r}" if owner else f"unknown {kind} {name!r}"
        self.fail(path, f"{what}{hint}{listing}")
        return False

    def _servers_and_proxies(self) -> None:
        for name, proxy in self.spec.proxies.items():
            where = ("proxies", name)
            if proxy.server is not None:
                self._reference((*where, "server"), proxy.server, "server", self.spec.servers)
            if proxy.upstream is not None:
                problem = upstream_problem(proxy.upstream)
                if problem:
                    self.fail((*where, "upstream"), problem)
            seen: set[str] = set()
            for index, toxic in enumerate(proxy.toxics):
                self._toxic_fits((*where, "toxics", index), toxic, name)
                if toxic.toxic_name in seen:
                    self.fail(
                        (*where, "toxics", index),
                        f"proxy {name} already has a toxic named {toxic.toxic_name!r}; "
                        "give this one a different name",
                    )
                seen.add(toxic.toxic_name)

    # -- client ---------------------------------------------------------------------------

    def _client(self) -> None:
        client = self.spec.client
        for index, endpoint in enumerate(client.endpoints):
            self._reference(("client", "endpoints", index), endpoint, "proxy", self.spec.proxies)
        if client.is_callable:
            self._import_workload(client.workload)
            return
        if client.workload not in BUILTIN_WORKLOADS:
            hint = did_you_mean(client.workload, BUILTIN_WORKLOADS)
            self.fail(
                ("client", "workload"),
                f"unknown workload {client.workload!r}{hint}: use "
                f"{', '.join(BUILTIN_WORKLOADS)}, or a callable as package.module:function",
            )
            return
        self._workload_fits_servers(client)

    def _toxic_fits(self, path: DataPath, toxic: ToxicBase, proxy_name: str) -> None:
        """A toxic the proxy's transport cannot carry, named where it is."""
        proxy = self.spec.proxies.get(proxy_name)
        if proxy is None:
            return
        misfit = REGISTRY[toxic.type].misfit(proxy.transport, proxy.protocol)
        if misfit is not None:
            self.fail((*path, "type"), f"{misfit} (proxy {proxy_name})")

    def _workload_fits_servers(self, client: Client) -> None:
        wanted = WORKLOAD_SERVERS[client.workload]
        transport = WORKLOAD_TRANSPORTS[client.workload]
        for index, endpoint in enumerate(client.endpoints):
            proxy = self.spec.proxies.get(endpoint)
            if proxy is not None and proxy.transport != transport:
                self.fail(
                    ("client", "endpoints", index),
                    f"the {client.workload} workload needs a {transport} proxy, but proxy "
                    f"{endpoint} is transport {proxy.transport}",
                )
                continue
            server = self._builtin_behind(endpoint)
            if server is not None and server.builtin not in wanted:
                self.fail(
                    ("client", "endpoints", index),
                    f"the {client.workload} workload talks to a {' or '.join(wanted)} server, "
                    f"but proxy {endpoint} leads to a {server.builtin} server",
                )

    def _builtin_behind(self, proxy_name: str) -> BuiltinServer | None:
        proxy = self.spec.proxies.get(proxy_name)
        if proxy is None or proxy.server is None:
            return None
        server = self.spec.servers.get(proxy.server)
        return server if isinstance(server, BuiltinServer) else None

    def _import_workload(self, ref: str) -> None:
        try:
            self.workload = import_callable(ref, self.path.parent)
        except ValueError as exc:
            self.fail(("client", "workload"), str(exc))

    # -- timeline -------------------------------------------------------------------------

    def _timeline(self) -> None:
        length = planned_length(self.spec.client)
        client = self.spec.client
        if length is not None and length > self.spec.timeout:
            self.fail(
                ("timeout",),
                f"the workload needs about {format_duration(length)} ({client.requests} "
                f"requests at {client.rate:g}/s) but the scenario timeout is "
                f"{format_duration(self.spec.timeout)}",
            )
        for index, step in enumerate(self.spec.timeline):
            self._step_time(index, step, length)
            self._step_target(("timeline", index), step)

    def _step_time(self, index: int, step: Step, length: float | None) -> None:
        client = self.spec.client
        if step.at is not None:
            where: DataPath = ("timeline", index, "at")
            if length is None:
                self.fail(
                    where,
                    "a step at a time needs client.rate, so the run has a known length "
                    "(or use after_requests)",
                )
            elif step.at > length:
                self.fail(
                    where,
                    f"step at {format_duration(step.at)} is after the run ends: "
                    f"{client.requests} requests at {client.rate:g}/s start their last "
                    f"request at {format_duration(length)}",
                )
        if step.after_requests is not None and step.after_requests >= client.requests:
            self.fail(
                ("timeline", index, "after_requests"),
                f"after_requests {step.after_requests} is beyond the run: client.requests is "
                f"{client.requests}, so a step can come after at most "
                f"{client.requests - 1} requests",
            )

    def _step_target(self, where: DataPath, step: Step) -> None:
        action = step.action
        path = (*where, action)
        if action in ("disable", "enable"):
            self._reference(path, step.target, "proxy", self.spec.proxies)
        elif action in ("kill", "stop", "start", "restart", "pause", "resume"):
            self._reference(path, step.target, "server", self.spec.servers)
        elif action == "add_toxic":
            proxy = getattr(step.add_toxic, "proxy", "")
            if self._reference((*path, "proxy"), proxy, "proxy", self.spec.proxies):
                assert step.add_toxic is not None
                self._toxic_fits(path, step.add_toxic, proxy)
        else:
            self._toxic_reference(path, step.target, action)

    def _toxic_reference(self, path: DataPath, ref: Any, action: str) -> None:
        if not self._reference((*path, "proxy"), ref.proxy, "proxy", self.spec.proxies):
            return
        toxics = self.toxics.get(ref.proxy, {})
        if not self._reference(
            (*path, "name"), ref.name, "toxic", toxics, owner=f"proxy {ref.proxy}"
        ):
            return
        if action == "update_toxic":
            try:
                update_attributes(ref, toxics[ref.name].type)
            except BadAttribute as exc:
                self.fail((*path, exc.key), str(exc), key=exc.unknown)

    # -- expectations ---------------------------------------------------------------------

    def _expectations(self) -> None:
        expect, client = self.spec.expect, self.spec.client
        if expect.connections:
            for name in expect.connections:
                where = ("expect", "connections", name)
                self._reference(where, name, "proxy", self.spec.proxies)
        if expect.delivery is not None:
            self._delivery_possible(client)
        if expect.fails_with is not None and not client.is_callable:
            error = expect.fails_with.error
            known = known_error_names()
            if error.rpartition(".")[2] not in known:
                self.fail(
                    ("expect", "fails_with", "error"),
                    f"unknown error {error!r}{did_you_mean(error, known)}",
                )

    def _delivery_possible(self, client: Client) -> None:
        where = ("expect", "delivery")
        if client.workload in ("framed", "stream"):
            self.fail(where, f"delivery is checked for the kv workload, not {client.workload}")
            return
        kv_servers = {
            proxy.server
            for proxy in (self.spec.proxies.get(e) for e in client.endpoints)
            if proxy is not None
            and proxy.server is not None
            and isinstance(self.spec.servers.get(proxy.server), BuiltinServer)
            and self.spec.servers[proxy.server].builtin == "kv"  # type: ignore[union-attr]
        }
        if len(kv_servers) != 1:
            found = "none" if not kv_servers else ", ".join(sorted(kv_servers))
            self.fail(
                where,
                f"delivery needs exactly one builtin kv server behind client.endpoints "
                f"(found: {found})",
            )


def import_callable(ref: str, folder: Path) -> Callable[..., Any]:
    """Import ``package.module:function``, from the scenario's folder or the current one.

    Both folders are added to ``sys.path`` (as pytest does for test folders),
    so the module can import its neighbours later. Importing runs the
    module's code: a scenario naming a callable is code, trust it as such.
    """
    module_name, _, attribute = ref.partition(":")
    for entry in (str(Path.cwd()), str(folder.resolve())):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:  # the module's own code failed: say how, without a traceback
        raise ValueError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            raise ValueError(
                f"{module_name!r} has no attribute {attribute!r}{did_you_mean(part, names)}"
            )
        target = getattr(target, part)
    if not callable(target) or inspect.isclass(target):
        raise ValueError(f"{ref} is not a function, it is a {type(target).__name__}")
    return target  # type: ignore[no-any-return]


def known_error_names() -> list[str]:
    """Exception names a builtin workload can meet: builtins and chaosnet's own."""
    from chaosnet import connection, framing, kv, retry

    names = {
        n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
    }
    for module in (framing, connection, retry, kv):
        names |= {
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, BaseException)
        }
    return sorted(names)


def upstream_problem(text: str) -> str:
    """Why a proxy's ``upstream`` cannot be used: malformed, or not on loopback."""
    try:
        host, _ = parse_upstream(text)
    except ApiError as exc:
        return exc.message.removeprefix("upstream: ")
    if not is_loopback(host):
        return f"{host} is not a loopback address: chaosnet proxies to this machine only"
    return ""
