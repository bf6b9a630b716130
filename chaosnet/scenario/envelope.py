"""The ``explore:`` section of a scenario file: the envelope of faults a client must survive.

An envelope says which faults ``chaosnet explore`` may generate and how many at
once; the scenario's own ``expect:`` is the property every generated schedule
must keep. It is plain data, checked here value by value; references (proxies,
servers, toxic types and their attributes) and fairness are checked in
:mod:`chaosnet.scenario.checks`, like the rest of a file. Generating schedules
from it is :mod:`chaosnet.explore`'s job, which needs Hypothesis
(``chaosnet[explore]``); validating a file does not.

A fault kind is one of::

    - toxic: reset_peer            # a toxic type, added for a while, then removed
      proxies: [fallback]          # on which proxies (one is chosen per fault)
      streams: [downstream]        # in which streams (one is chosen)
      attributes:                  # each: a value, a list to choose from, or {min, max}
        timeout: 0
      max_connections: {min: 1, max: 3}   # targeting, where the backend has it
    - disable: [primary]           # proxies taken down for a while, then enabled
    - kill: [server]               # servers killed (SIGKILL), then started again
    - pause: [server]              # servers paused (SIGSTOP), then resumed
    - restart: [server]            # servers restarted at once (one step)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from chaosnet.scenario.toxics import TOXICS_BY_TYPE, Name, StrictModel, ToxicBase, attribute_names
from chaosnet.scenario.units import Seconds

#: Fault kinds that act on a proxy or a server as a whole, and the step that ends each.
WHOLE_FAULTS: dict[str, str | None] = {
    "disable": "enable",
    "kill": "start",
    "pause": "resume",
    "restart": None,  # one step: the server comes back by itself
}
PROXY_FAULTS = ("disable",)
SERVER_FAULTS = ("kill", "pause", "restart")
FAULT_KINDS = ("toxic", *WHOLE_FAULTS)
#: The targeting fields a toxic fault may range over (chaosnet extensions).
TARGETING_FIELDS = ("skip_connections", "max_connections", "skip_messages", "max_messages")
MAX_STEPS = 20
MAX_ACTIVE = 10


class IntRange(StrictModel):
    """A whole number drawn from ``min`` to ``max``, both included."""

    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class ValueRange(StrictModel):
    """An attribute value drawn from ``min`` to ``max``, in the attribute's own units."""

    min: Any
    max: Any


AttributeSpec = ValueRange | list[Any] | int | float | str | bool


Stream = Literal["upstream", "downstream"]


def _downstream() -> list[Stream]:
    return ["downstream"]


class FaultKind(StrictModel):
    """One kind of fault the explorer may generate; exactly one of the kind keys is given."""

    toxic: str | None = Field(None, description="a toxic type, added then removed")
    proxies: list[Name] | None = Field(None, min_length=1, description="toxic: on which proxies")
    streams: list[Stream] = Field(
        default_factory=_downstream, min_length=1, description="toxic: which streams"
    )
    attributes: dict[str, AttributeSpec] = Field(
        default_factory=dict, description="toxic: each a value, a list of values, or {min, max}"
    )
    toxicity: float = Field(1.0, ge=0, le=1, description="toxic: chance per connection")
    skip_connections: IntRange | int | None = None
    max_connections: IntRange | int | None = None
    skip_messages: IntRange | int | None = None
    max_messages: IntRange | int | None = None
    outage: bool | None = Field(
        None,
        description="does this fault take its path down? default: yes for disable, kill, "
        "pause and restart, and for toxics unless max_connections bounds them",
    )
    disable: list[Name] | None = Field(None, min_length=1, description="proxies to disable")
    kill: list[Name] | None = Field(None, min_length=1, description="servers to kill")
    pause: list[Name] | None = Field(None, min_length=1, description="servers to pause")
    restart: list[Name] | None = Field(None, min_length=1, description="servers to restart")

    @model_validator(mode="after")
    def _one_kind(self) -> FaultKind:
        kinds = self.kinds()
        if len(kinds) != 1:
            raise ValueError(f"a fault needs exactly one of {', '.join(FAULT_KINDS)}")
        if self.kind == "toxic":
            if not self.proxies:
                raise ValueError("a toxic fault needs proxies: the proxies it may be added to")
        else:
            extra = [f for f in ("proxies", "attributes", *TARGETING_FIELDS) if self._given(f)]
            if extra:
                raise ValueError(f"{', '.join(extra)}: only a toxic fault takes these")
        return self

    def _given(self, field: str) -> bool:
        return field in self.model_fields_set

    def kinds(self) -> list[str]:
        return self.filled(FAULT_KINDS)

    @property
    def kind(self) -> str:
        return self.kinds()[0]

    @property
    def targets(self) -> list[str]:
        """The proxies (toxic, disable) or servers (kill, pause, restart) it may hit."""
        if self.kind == "toxic":
            return list(self.proxies or [])
        return list(getattr(self, self.kind))

    @property
    def takes_path_down(self) -> bool:
        if self.outage is not None:
            return self.outage
        return self.kind != "toxic" or self.max_connections is None

    def targeting(self) -> dict[str, IntRange]:
        """Each targeting field given, as a range (a single number is a range of one)."""
        ranges: dict[str, IntRange] = {}
        for name in TARGETING_FIELDS:
            value = getattr(self, name)
            if value is not None:
                ranges[name] = (
                    value if isinstance(value, IntRange) else IntRange(min=value, max=value)
                )
        return ranges


class Envelope(StrictModel):
    """What ``chaosnet explore`` may generate: the faults, how many, when and how long."""

    faults: list[FaultKind] = Field(min_length=1, description="the kinds of fault to combine")
    max_steps: int = Field(3, ge=1, le=MAX_STEPS, description="the most faults in one schedule")
    max_active: int = Field(2, ge=1, le=MAX_ACTIVE, description="the most faults at once")
    window: Seconds = Field(
        1.0, gt=0, le=3600, description="faults start within this long after the workload starts"
    )
    min_outage: Seconds = Field(0.01, le=3600, description="the shortest a fault lasts")
    max_outage: Seconds = Field(0.3, gt=0, le=3600, description="the longest a fault lasts")
    keep_path_up: bool | None = Field(
        None,
        description="never take every client endpoint down at once; default: yes when the "
        "client has more than one endpoint",
    )

    @model_validator(mode="after")
    def _outage_range(self) -> Envelope:
        if self.min_outage > self.max_outage:
            raise ValueError(
                f"min_outage ({self.min_outage:g}s) is above max_outage ({self.max_outage:g}s)"
            )
        return self


# -- attribute values, in Toxiproxy's units -----------------------------------------------


@dataclass(frozen=True)
class Span:
    """Numbers from ``low`` to ``high`` (both included): whole ones when both are ints."""

    low: int | float
    high: int | float


Values = Span | tuple[Any, ...]  # a span, or the values to choose from (one: a fixed value)


class BadFaultValue(ValueError):
    """An attribute of a toxic fault that its toxic type does not take; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def attribute_values(fault: FaultKind) -> dict[str, Values]:
    """Each attribute of a toxic fault as the values it may take, converted by its toxic type.

    Values are read with the toxic's own field types, so ``latency: {min: 10ms,
    max: 1s}`` becomes ``Span(10, 1000)`` in Toxiproxy's milliseconds. A required
    attribute that the fault does not give is an error, as in a timeline step.
    """
    model = TOXICS_BY_TYPE[fault.toxic or ""]
    names = attribute_names(fault.toxic or "")
    values: dict[str, Values] = {}
    for key, spec in fault.attributes.items():
        if key not in names:
            shown = ", ".join(names) or "none"
            raise BadFaultValue(
                key, f"toxic {fault.toxic} has no attribute {key!r} (it has: {shown})"
            )
        read = _reader(model, key)
        values[key] = _values(key, spec, read)
    missing = [n for n in names if model.model_fields[n].is_required() and n not in values]
    if missing:
        raise BadFaultValue(
            "attributes", f"toxic {fault.toxic} needs {', '.join(missing)}: give a value or a range"
        )
    return values


def _reader(model: type[ToxicBase], key: str) -> Callable[[Any], Any]:
    info = model.model_fields[key]
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[(info.annotation, *info.metadata)])  # type: ignore[arg-type]
    return adapter.validate_python


def _values(key: str, spec: AttributeSpec, read: Callable[[Any], Any]) -> Values:
    try:
        if isinstance(spec, ValueRange):
            low, high = read(spec.min), read(spec.max)
            if isinstance(low, bool) or not isinstance(low, int | float):
                raise BadFaultValue(key, f"{key}: a range needs numbers, got {spec.min!r}")
            if low > high:
                raise BadFaultValue(key, f"{key}: min ({spec.min}) is above max ({spec.max})")
            return Span(low, high)
        if isinstance(spec, list):
            if not spec:
                raise BadFaultValue(key, f"{key}: give at least one value to choose from")
            return tuple(read(v) for v in spec)
        return (read(spec),)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadFaultValue(key, f"{key}: {first['msg']}") from None
