"""The scenario file format, as pydantic models: the single source of the JSON Schema.

A scenario names real servers, proxies in front of them, a client workload, a
timeline of faults and what must hold at the end. This module checks each
value on its own (types, units, ranges, unknown keys); cross-references and
timing are checked in :mod:`chaosnet.scenario.checks`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    create_model,
    field_validator,
    model_validator,
)

from chaosnet.proxy.framers import PROTOCOLS, ProtocolError, parse_protocol
from chaosnet.scenario.envelope import Envelope
from chaosnet.scenario.toxics import TOXIC_MODELS, Name, StrictModel, Toxic, ToxicBase
from chaosnet.scenario.units import Bytes, PerSecond, Seconds

BUILTIN_SERVERS = ("echo", "framed_echo", "kv", "http")
BUILTIN_WORKLOADS = ("framed", "kv", "stream", "datagram", "http")
CALLABLE_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
DEFAULT_REQUEST_TIMEOUT_S = 1.0
DEFAULT_SCENARIO_TIMEOUT_S = 60.0
DEFAULT_READY_TIMEOUT_S = 10.0
# Sane ranges: a value outside them is a mistake that would otherwise pass validation
# and then overflow or fail every request at run time.
MAX_RUN_S = 86_400.0  # a scenario, a step time, an expected duration: a day at most
MAX_WAIT_S = 3_600.0  # one wait (a request attempt, a readiness check, a backoff)
MAX_PAYLOAD = 64 * 1024 * 1024  # bytes per request: what one client holds in memory twice
MAX_FRAME = 1 << 31  # the largest frame a 4-byte header can announce, and then some
MAX_COUNT = 1_000_000  # requests, attempts, connections
MAX_RATE = 1_000_000.0  # requests per second
MAX_MULTIPLIER = 100.0


def _env_value(value: Any) -> Any:
    """Numbers in ``env`` become strings (``PORT: 8080``), as docker-compose does."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


EnvValue = Annotated[str, BeforeValidator(_env_value)]

# -- servers ------------------------------------------------------------------------------


class Readiness(StrictModel):
    """How to know a command or container server is ready, and where it listens."""

    port: int | None = Field(None, ge=1, le=65535, description="it listens here; ready on accept")
    host: str = Field("127.0.0.1", description="its address (loopback)")
    log: str | None = Field(
        None,
        description="ready when a log line matches this regex; a (?P<port>...) group "
        "gives the port of a server that binds port 0",
    )
    http: str | None = Field(None, description="ready when GET of this URL or path answers 200")
    timeout: Seconds = Field(
        DEFAULT_READY_TIMEOUT_S, gt=0, le=MAX_WAIT_S, description="give up after this long"
    )

    @field_validator("log")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _port_known(self) -> Readiness:
        captures = self.log is not None and "(?P<port>" in self.log
        if self.port is None and not captures:
            raise ValueError(
                "the server's port is unknown: give ready.port, or a ready.log pattern "
                "with a (?P<port>...) group"
            )
        return self


class BuiltinServer(StrictModel):
    """One of chaosnet's own servers, as a separate process on a port of its own."""

    builtin: Literal["echo", "framed_echo", "kv", "udp_echo", "http"]
    dedupe: bool = Field(False, description="kv only: apply each request id at most once")
    max_frame_size: Bytes | None = Field(
        None, ge=1, le=MAX_FRAME, description="framed_echo and kv: frame limit"
    )

    @model_validator(mode="after")
    def _options_fit(self) -> BuiltinServer:
        if self.dedupe and self.builtin != "kv":
            raise ValueError(f"dedupe is a kv server option, not for {self.builtin}")
        if self.max_frame_size is not None and self.builtin in ("echo", "udp_echo", "http"):
            raise ValueError(f"max_frame_size is for framed servers, not for {self.builtin}")
        return self


class CommandServer(StrictModel):
    """Any program, started as a real server process in its own process group."""

    command: list[str] = Field(
        min_length=1,
        description="argv; the first item is the program; {port} is the port to bind "
        "(0 at the first start, the same port again on a restart)",
    )
    env: dict[str, EnvValue] = Field(default_factory=dict, description="added to the environment")
    cwd: str | None = Field(None, description="working folder, relative to the scenario file")
    ready: Readiness


class DockerSpec(StrictModel):
    image: str = Field(min_length=1, description="a local image (nothing is pulled)")
    command: list[str] | None = Field(
        None, description="replaces the image's CMD; {port} is the port to bind"
    )
    entrypoint: list[str] | None = Field(None, description="replaces the image's ENTRYPOINT")
    env: dict[str, EnvValue] = Field(default_factory=dict)
    ready: Readiness


class DockerServer(StrictModel):
    """A container on the host network, bound to loopback."""

    docker: DockerSpec


def _server_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for kind in ("builtin", "command", "docker"):
            if kind in value:
                return kind
    return None


Server = Annotated[
    Annotated[BuiltinServer, Tag("builtin")]
    | Annotated[CommandServer, Tag("command")]
    | Annotated[DockerServer, Tag("docker")],
    Discriminator(
        _server_kind,
        custom_error_type="server_kind",
        custom_error_message="a server needs one of the keys builtin, command or docker",
    ),
]

# -- proxies --------------------------------------------------------------------------------


class ProxySpec(StrictModel):
    """A proxy in front of a server (or any host:port), with the toxics it starts with."""

    server: Name | None = Field(None, description="a server of this scenario")
    upstream: str | None = Field(None, description="or any loopback host:port")
    transport: Literal["tcp", "udp"] = Field(
        "tcp", description="udp: a datagram proxy, with a flow per client address (chaosnet)"
    )
    flow_timeout: Seconds | None = Field(
        None, gt=0, le=86_400, description="udp: an idle flow ends after this (default 30s)"
    )
    protocol: Literal[PROTOCOLS] | None = Field(  # type: ignore[valid-type]
        None, description="chaosnet extension: frame messages (message toxics and targeting)"
    )
    protocol_options: dict[str, Any] = Field(
        default_factory=dict, description="the protocol's options, e.g. delimiter for line"
    )
    toxics: list[Toxic] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_target(self) -> ProxySpec:
        if (self.server is None) == (self.upstream is None):
            raise ValueError("a proxy needs exactly one of server or upstream")
        if self.flow_timeout is not None and self.transport != "udp":
            raise ValueError("flow_timeout is for datagram proxies (transport: udp)")
        try:
            parse_protocol(self.protocol, self.protocol_options)
        except ProtocolError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def flow_timeout_ms(self) -> int | None:
        return None if self.flow_timeout is None else max(1, round(self.flow_timeout * 1000))


# -- client -------------------------------------------------------------------------------


class RetrySpec(StrictModel):
    """A chaosnet.retry.RetryPolicy; its jitter is seeded from the run's seed."""

    attempts: int = Field(
        5, ge=1, le=MAX_COUNT, description="attempts per request, the first included"
    )
    deadline: Seconds | None = Field(
        None, gt=0, le=MAX_WAIT_S, description="total budget per request"
    )
    backoff: Literal["full_jitter", "decorrelated_jitter", "exponential", "constant"] = (
        "full_jitter"
    )
    initial: Seconds = Field(
        0.01, le=MAX_WAIT_S, description="first backoff wait (cap of its jitter)"
    )
    cap: Seconds = Field(0.2, le=MAX_WAIT_S, description="longest backoff wait")
    multiplier: float = Field(2.0, ge=1, le=MAX_MULTIPLIER)


class Client(StrictModel):
    """The workload: a builtin one, or ``package.module:function`` (which is code you run)."""

    workload: str = Field(
        description="framed, kv, stream, datagram, http, or a callable as package.module:function",
        json_schema_extra={
            "anyOf": [
                {"enum": list(BUILTIN_WORKLOADS)},
                {"type": "string", "pattern": CALLABLE_PATTERN},
            ]
        },
    )
    endpoints: list[Name] = Field(
        min_length=1, description="proxies to connect to: the primary, then fallbacks"
    )
    requests: int = Field(20, ge=1, le=MAX_COUNT, description="how many requests (transfers)")
    rate: PerSecond | None = Field(
        None, le=MAX_RATE, description="requests per second; unpaced if absent"
    )
    payload: Bytes = Field(
        64, le=MAX_PAYLOAD, description="bytes per request (per transfer for stream)"
    )
    timeout: Seconds = Field(
        DEFAULT_REQUEST_TIMEOUT_S, gt=0, le=MAX_WAIT_S, description="per attempt"
    )
    retry: RetrySpec | None = Field(None, description="absent: one attempt, no retry")
    idempotent: bool = Field(
        True, description="may a request be resent after it may have reached the server"
    )
    max_frame_size: Bytes | None = Field(
        None, ge=1, le=MAX_FRAME, description="framed workloads: frame limit"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="passed to a callable workload as ctx.options"
    )

    @field_validator("endpoints", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def is_callable(self) -> bool:
        return ":" in self.workload


# -- timeline -----------------------------------------------------------------------------


def _with_proxy(model: type[ToxicBase]) -> Any:
    return create_model(
        f"{model.__name__}Step",
        __base__=model,
        __doc__=f"add a {model.__name__} toxic to a proxy",
        proxy=(Name, Field(description="the proxy to add it to")),
    )


_STEP_TOXICS = tuple(_with_proxy(m) for m in TOXIC_MODELS)
if TYPE_CHECKING:
    AddToxic = ToxicBase
else:
    AddToxic = Annotated[Union[_STEP_TOXICS], Field(discriminator="type")]  # noqa: UP007


class ToxicRef(StrictModel):
    proxy: Name
    name: Name = Field(description="the toxic's name (default names are <type>_<stream>)")


class UpdateToxic(StrictModel):
    """New attribute values (checked against the toxic's type) and/or toxicity."""

    model_config = StrictModel.model_config | {"extra": "allow"}

    proxy: Name
    name: Name
    toxicity: float | None = Field(None, ge=0, le=1)


TRIGGERS = ("at", "after_requests")
PROXY_ACTIONS = ("disable", "enable")
SERVER_ACTIONS = ("kill", "stop", "start", "restart", "pause", "resume")
TOXIC_ACTIONS = ("add_toxic", "update_toxic", "remove_toxic")
ACTIONS = TOXIC_ACTIONS + PROXY_ACTIONS + SERVER_ACTIONS
#: Actions that end a fault rather than start one (for ``recovered_within``).
RECOVERY_ACTIONS = ("remove_toxic", "enable", "start", "restart", "resume")


class Step(StrictModel):
    """One change at a time offset (``at``) or after a number of finished requests."""

    at: Seconds | None = Field(None, le=MAX_RUN_S, description="time since the workload started")
    after_requests: int | None = Field(
        None, ge=0, le=MAX_COUNT, description="fire once this many requests have finished"
    )
    add_toxic: AddToxic | None = None
    update_toxic: UpdateToxic | None = None
    remove_toxic: ToxicRef | None = None
    disable: Name | None = Field(None, description="a proxy: refuse and drop connections")
    enable: Name | None = Field(None, description="a proxy: listen again")
    kill: Name | None = Field(None, description="a server: SIGKILL")
    stop: Name | None = Field(None, description="a server: SIGTERM, then SIGKILL")
    start: Name | None = Field(None, description="a stopped server: start it again")
    restart: Name | None = Field(None, description="a server: stop, then start")
    pause: Name | None = Field(None, description="a server: SIGSTOP (or docker pause)")
    resume: Name | None = Field(None, description="a paused server: SIGCONT")

    @model_validator(mode="after")
    def _one_trigger_one_action(self) -> Step:
        if len(self.filled(TRIGGERS)) != 1:
            raise ValueError("a step needs exactly one of at or after_requests")
        if len(self.actions()) != 1:
            raise ValueError(f"a step needs exactly one action: {', '.join(ACTIONS)}")
        return self

    def actions(self) -> list[str]:
        return self.filled(ACTIONS)

    @property
    def action(self) -> str:
        return self.actions()[0]

    @property
    def target(self) -> Any:
        return getattr(self, self.action)


# -- expectations ---------------------------------------------------------------------------


class Bounds(StrictModel):
    under: Seconds | None = Field(None, le=MAX_RUN_S, description="strictly below this")
    over: Seconds | None = Field(None, le=MAX_RUN_S, description="strictly above this")

    @model_validator(mode="after")
    def _some_bound(self) -> Bounds:
        if self.under is None and self.over is None:
            raise ValueError("give under, over, or both")
        if self.under is not None and self.over is not None and self.over >= self.under:
            raise ValueError("over must be below under")
        return self


class LatencyBound(Bounds):
    percentile: float = Field(99, gt=0, le=100, description="which percentile, 0..100")


class FailsWith(StrictModel):
    """Requests must fail with this error, without being retried more than ``attempts``."""

    error: str = Field(
        description="exception class, or any base class, by name (FrameTooLarge) or "
        "qualified name (chaosnet.framing.FrameTooLarge)"
    )
    attempts: int = Field(
        1, ge=1, le=MAX_COUNT, description="the most attempts a failing request may make"
    )


class CountRange(StrictModel):
    min: int | None = Field(None, ge=0, le=MAX_COUNT, description="at least this many")
    max: int | None = Field(None, ge=0, le=MAX_COUNT, description="at most this many")

    @model_validator(mode="after")
    def _some_bound(self) -> CountRange:
        if self.min is None and self.max is None:
            raise ValueError("give min, max, or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be above max")
        return self


class ConnectionCounts(StrictModel):
    opened: int | CountRange | None = Field(
        None, description="connections opened: exactly N, or a range {min: N, max: M}"
    )
    open: int | None = Field(
        None, ge=0, le=MAX_COUNT, description="this many still open at the end"
    )

    @field_validator("opened")
    @classmethod
    def _not_negative(cls, value: int | CountRange | None) -> int | CountRange | None:
        if isinstance(value, int) and not 0 <= value <= MAX_COUNT:
            raise ValueError(f"a count is between 0 and {MAX_COUNT}")
        return value


class Backoff(StrictModel):
    """Reconnect delays during an outage on the wire (a run of failed connections)."""

    floor: Seconds = Field(description="not every gap between reconnects may be under this")
    grows: bool = Field(
        False, description="the later half of the gaps is longer, on average, than the first"
    )


class Expectations(StrictModel):
    """What must hold when the workload ends; each is checked and reported with its value."""

    all_answered: Literal[True] | None = Field(None, description="every request answered right")
    max_attempts: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="the most attempts any request made"
    )
    recovered_within: Seconds | None = Field(
        None, le=MAX_RUN_S, description="each outage ended this soon after its cause was lifted"
    )
    latency: LatencyBound | None = Field(None, description="a percentile of request latency")
    elapsed: Bounds | None = Field(None, description="how long the whole workload took")
    delivery: Literal["exactly_once", "at_least_once", "at_most_once"] | None = Field(
        None, description="kv writes, as recorded by the kv server"
    )
    fails_with: FailsWith | None = None
    no_leaks: Literal[True] | None = Field(
        None, description="no socket, thread or process left open by the client"
    )
    connections: dict[Name, ConnectionCounts] | None = Field(
        None, description="per proxy: connections opened and left open (chaosnet extension)"
    )
    max_connect_rate: PerSecond | None = Field(
        None, description="during an outage on the wire, at most this many connects per second"
    )
    backoff: Backoff | None = Field(None, description="reconnect delays seen on the wire")
    max_sends: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="no request went out to the server more often"
    )
    gave_up_within: Seconds | None = Field(
        None, le=MAX_RUN_S, description="every failed request gave up this soon after it started"
    )
    max_request_time: Seconds | None = Field(
        None,
        gt=0,
        le=MAX_RUN_S,
        description="watchdog: a request still running after this fails the scenario at once",
    )

    def chosen(self) -> list[str]:
        return self.filled(list(type(self).model_fields))

    @model_validator(mode="after")
    def _something(self) -> Expectations:
        if not self.chosen():
            raise ValueError("expect needs at least one expectation; a scenario must check")
        if self.all_answered and self.fails_with is not None:
            raise ValueError("all_answered and fails_with contradict each other")
        return self


# -- the scenario -----------------------------------------------------------------------------


class Scenario(StrictModel):
    """A resilience experiment: servers, proxies, a client, a fault timeline, expectations."""

    name: Name | None = Field(None, description="default: the file name without .yaml")
    description: str = ""
    timeout: Seconds = Field(
        DEFAULT_SCENARIO_TIMEOUT_S,
        gt=0,
        le=MAX_RUN_S,
        description="the whole run is stopped after this",
    )
    servers: dict[Name, Server] = Field(default_factory=dict)
    proxies: dict[Name, ProxySpec] = Field(min_length=1)
    client: Client
    timeline: list[Step] = Field(default_factory=list)
    expect: Expectations
    explore: Envelope | None = Field(
        None, description="faults chaosnet explore may combine; chaosnet run ignores it"
    )
