"""The toxics a scenario can name: one model per type, with each type's attributes and units.

Toxiproxy's own toxics come first, then chaosnet's extensions (which a real
Toxiproxy backend refuses by name). Every toxic also takes the common fields
``name``, ``stream``, ``toxicity`` and chaosnet's per-toxic ``skip_connections``,
``max_connections`` and ``seed``. Attributes keep Toxiproxy's units (see
:mod:`chaosnet.scenario.units`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chaosnet.control import EXTENSION_TOXIC_FIELDS, TOXIPROXY_TOXIC_TYPES
from chaosnet.scenario.units import Bytes, KilobytesPerSecond, Micros, Millis
from chaosnet.seeds import MAX_SEED

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
#: Fields every toxic has; everything else a toxic model declares is an attribute
#: (but ``proxy``, which says where a timeline step adds the toxic).
COMMON_FIELDS = ("type", "name", "stream", "toxicity", *EXTENSION_TOXIC_FIELDS)
_NOT_ATTRIBUTES = (*COMMON_FIELDS, "proxy")


class StrictModel(BaseModel):
    """Unknown keys are errors and values are not coerced: a typo never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ToxicBase(StrictModel):
    type: str
    name: Name | None = Field(None, description="default: <type>_<stream>, as in Toxiproxy")
    stream: Literal["upstream", "downstream"] = Field(
        "downstream", description="upstream: client to server; downstream: server to client"
    )
    toxicity: float = Field(1.0, ge=0, le=1, description="chance per connection, 0..1")
    skip_connections: int | None = Field(
        None, ge=0, description="chaosnet extension: spare the first N connections"
    )
    max_connections: int | None = Field(
        None, ge=1, description="chaosnet extension: affect at most N connections"
    )
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="chaosnet extension: this toxic's random seed"
    )

    @property
    def toxic_name(self) -> str:
        return self.name or f"{self.type}_{self.stream}"

    def attributes(self, *, explicit: bool = False) -> dict[str, Any]:
        """The toxic's attributes in Toxiproxy's units (only those written, if ``explicit``)."""
        return {
            key: value
            for key, value in self.model_dump(exclude_unset=explicit).items()
            if key not in _NOT_ATTRIBUTES and value is not None
        }

    def extension_fields(self) -> dict[str, Any]:
        """chaosnet's per-toxic fields that are set."""
        return {
            key: getattr(self, key)
            for key in EXTENSION_TOXIC_FIELDS
            if getattr(self, key) is not None
        }

    def extensions_used(self) -> list[str]:
        """The chaosnet extension features this toxic needs from the backend."""
        used = [] if self.type in TOXIPROXY_TOXIC_TYPES else [self.type]
        return used + list(self.extension_fields())


# -- Toxiproxy's toxics -----------------------------------------------------------------


class Latency(ToxicBase):
    type: Literal["latency"]
    latency: Millis = Field(description="delay added to each chunk of data")
    jitter: Millis = Field(0, description="random +/- variation of the delay")


class Bandwidth(ToxicBase):
    type: Literal["bandwidth"]
    rate: KilobytesPerSecond = Field(description="throughput limit")


class SlowClose(ToxicBase):
    type: Literal["slow_close"]
    delay: Millis = Field(description="delay before the close is passed on")


class Timeout(ToxicBase):
    type: Literal["timeout"]
    timeout: Millis = Field(
        0, description="stop all data, close after this long; 0 = hold until removed"
    )


class ResetPeer(ToxicBase):
    type: Literal["reset_peer"]
    timeout: Millis = Field(0, description="reset (TCP RST) after this long; 0 = at once")


class Slicer(ToxicBase):
    type: Literal["slicer"]
    average_size: Bytes = Field(description="average size of the slices")
    size_variation: Bytes = Field(0, description="+/- variation of the slice size")
    delay: Micros = Field(0, description="pause between slices")


class LimitData(ToxicBase):
    type: Literal["limit_data"]
    bytes: Bytes = Field(description="pass this many bytes, then close the connection")


class Noop(ToxicBase):
    type: Literal["noop"]


# -- chaosnet's extensions --------------------------------------------------------------


class TruncateFrame(ToxicBase):
    type: Literal["truncate_frame"]
    header_size: Literal[1, 2, 4, 8] = Field(4, description="length header size in bytes")
    byte_order: Literal["big", "little"] = "big"
    frame: int = Field(0, ge=0, description="0-based frame to cut, per connection and stream")
    at: Literal["header", "body"] | Annotated[int, Field(ge=0)] = Field(
        "body", description="cut inside the header, the body, or at a byte offset of the frame"
    )
    then: Literal["close", "reset", "hang"] = Field(
        "close", description="after the cut: FIN, RST, or keep the socket open silently"
    )


class LimitTime(ToxicBase):
    type: Literal["limit_time"]
    duration: Millis = Field(description="cut the connection this long after it opened")
    then: Literal["close", "reset"] = "close"


class Corrupt(ToxicBase):
    type: Literal["corrupt"]
    probability: float = Field(ge=0, le=1, description="chance of a bit flip per byte")
    body_only: bool = Field(False, description="spare frame headers (chaosnet framing)")
    header_size: Literal[1, 2, 4, 8] = 4
    byte_order: Literal["big", "little"] = "big"


class RefuseNew(ToxicBase):
    type: Literal["refuse_new"]


class StallAccept(ToxicBase):
    type: Literal["stall_accept"]


class ResetOnAccept(ToxicBase):
    type: Literal["reset_on_accept"]


TOXIC_MODELS: tuple[type[ToxicBase], ...] = (
    Latency,
    Bandwidth,
    SlowClose,
    Timeout,
    ResetPeer,
    Slicer,
    LimitData,
    Noop,
    TruncateFrame,
    LimitTime,
    Corrupt,
    RefuseNew,
    StallAccept,
    ResetOnAccept,
)


def toxic_type(model: type[ToxicBase]) -> str:
    """The ``type`` literal a toxic model stands for."""
    annotation = model.model_fields["type"].annotation
    return str(annotation.__args__[0])  # type: ignore[union-attr]


TOXICS_BY_TYPE: dict[str, type[ToxicBase]] = {toxic_type(m): m for m in TOXIC_MODELS}


def attribute_names(type_name: str) -> list[str]:
    model = TOXICS_BY_TYPE[type_name]
    return [name for name in model.model_fields if name not in COMMON_FIELDS]


Toxic = Annotated[
    Latency
    | Bandwidth
    | SlowClose
    | Timeout
    | ResetPeer
    | Slicer
    | LimitData
    | Noop
    | TruncateFrame
    | LimitTime
    | Corrupt
    | RefuseNew
    | StallAccept
    | ResetOnAccept,
    Field(discriminator="type"),
]
