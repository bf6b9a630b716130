"""The toxics a scenario can name: one model per type, derived from the toxic's declaration.

Each model is built from the toxic's class in ``chaosnet.proxy.toxics`` (its
``attributes``, ``streams``, ``summary``, ``in_toxiproxy``): nothing here names a
toxic. They come in registry order: Toxiproxy's own toxics, then chaosnet's
extensions (which a real Toxiproxy backend refuses by name). Every toxic also
takes the common fields ``name``, ``stream``, ``toxicity`` and chaosnet's
per-toxic ``skip_connections``, ``max_connections``, ``seed`` and (on a proxy with
a protocol) ``skip_messages``, ``max_messages``, ``message_scope``. Attributes
keep Toxiproxy's units (see :mod:`chaosnet.scenario.units`); one with a unit
also takes a string with a unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from chaosnet.proxy.toxics import REGISTRY
from chaosnet.proxy.toxics import Toxic as ToxicType
from chaosnet.proxy.toxics.base import DEFAULT_STREAM, EXTENSION_FIELDS, MAX_BYTES, Attr, FieldError
from chaosnet.scenario.units import Bytes, KilobytesPerSecond, Micros, Millis
from chaosnet.seeds import MAX_SEED

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
#: Fields every toxic has; everything else a toxic model declares is an attribute
#: (but ``proxy``, which says where a timeline step adds the toxic).
COMMON_FIELDS = ("type", "name", "stream", "toxicity", *EXTENSION_FIELDS)
_NOT_ATTRIBUTES = (*COMMON_FIELDS, "proxy")
#: The scenario type of an attribute with each of Toxiproxy's units.
_UNIT_TYPES: dict[str, Any] = {
    "ms": Millis,
    "µs": Micros,
    "bytes": Bytes,
    "KB/s": KilobytesPerSecond,
}
_STREAM_HELP = "upstream: client to server; downstream: server to client"


class StrictModel(BaseModel):
    """Unknown keys are errors and values are not coerced: a typo never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def filled(self, names: Sequence[str]) -> list[str]:
        """Which of the fields ``names`` are filled in (not None), in that order: the
        choice made in a one-of group (a step's trigger and action, a fault's kind)."""
        return [name for name in names if getattr(self, name) is not None]


class ToxicBase(StrictModel):
    type: str
    name: Name | None = Field(None, description="default: <type>_<stream>, as in Toxiproxy")
    stream: Literal["upstream", "downstream"] = Field(DEFAULT_STREAM, description=_STREAM_HELP)
    toxicity: float = Field(1.0, ge=0, le=1, description="chance per connection, 0..1")
    skip_connections: int | None = Field(
        None, ge=0, le=MAX_BYTES, description="chaosnet extension: spare the first N connections"
    )
    max_connections: int | None = Field(
        None, ge=1, le=MAX_BYTES, description="chaosnet extension: affect at most N connections"
    )
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="chaosnet extension: this toxic's random seed"
    )
    skip_messages: int | None = Field(
        None, ge=0, description="chaosnet extension (proxy with a protocol): spare N messages"
    )
    max_messages: int | None = Field(
        None, ge=1, description="chaosnet extension (proxy with a protocol): at most N messages"
    )
    message_scope: Literal["connection", "proxy"] | None = Field(
        None, description="count messages per connection (default) or across the proxy"
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
            key: getattr(self, key) for key in EXTENSION_FIELDS if getattr(self, key) is not None
        }

    def extensions_used(self) -> list[str]:
        """The chaosnet extension features this toxic needs from the backend."""
        used = [] if REGISTRY[self.type].in_toxiproxy else [self.type]
        return used + list(self.extension_fields())

    @model_validator(mode="after")
    def _check_across_attributes(self) -> ToxicBase:
        """The declaration's ``check`` (e.g. slicer's size_variation < average_size)."""
        toxic = REGISTRY.get(self.type)
        if toxic is not None:
            try:
                toxic.check(self.attributes())
            except FieldError as exc:
                raise ValueError(str(exc).removeprefix("attributes.")) from None
        return self


# -- derivation from the declarations ------------------------------------------------------


def attribute_type(attr: Attr) -> Any:
    """The pydantic type of one declared attribute, bounds included."""
    if attr.kind == "bool":
        return bool
    if attr.kind == "text":
        return Annotated[str, Field(max_length=int(attr.maximum))]
    if attr.kind == "headers":
        return dict[str, str]
    if attr.kind == "choice":
        return Literal[attr.choices]
    if attr.values:
        return Literal[attr.values]
    bounds = Field(ge=attr.minimum, le=attr.maximum)
    if attr.kind == "float":  # and the declaration's own checks (MIN_FRACTION)
        return Annotated[float, bounds, AfterValidator(attr.coerce)]
    if attr.kind == "int_or_choice":  # a string is one of the choices, so no units here
        return Literal[attr.choices] | Annotated[int, bounds]
    number: Any = Annotated[_UNIT_TYPES.get(attr.unit, int), bounds]
    return number


def _field(attr: Attr) -> tuple[Any, Any]:
    default = ... if attr.required else attr.default
    unit = f" ({attr.unit})" if attr.unit else ""
    return attribute_type(attr), Field(default, description=attr.help + unit)


def toxic_model(toxic: type[ToxicType]) -> type[ToxicBase]:
    """The scenario model of one declared toxic type."""
    fields: dict[str, Any] = {"type": (Literal[toxic.type_name], ...)}
    if toxic.streams != ("upstream", "downstream"):
        fields["stream"] = (
            Literal[toxic.streams],
            Field(toxic.default_stream(), description=_STREAM_HELP),
        )
    fields.update((attr.name, _field(attr)) for attr in toxic.attributes)
    return create_model(
        "".join(part.capitalize() for part in toxic.type_name.split("_")),
        __base__=ToxicBase,
        __doc__=toxic.summary,
        __module__=__name__,
        **fields,
    )


TOXICS_BY_TYPE: dict[str, type[ToxicBase]] = {
    type_name: toxic_model(toxic) for type_name, toxic in REGISTRY.items()
}
TOXIC_MODELS: tuple[type[ToxicBase], ...] = tuple(TOXICS_BY_TYPE.values())


def attribute_names(type_name: str) -> list[str]:
    model = TOXICS_BY_TYPE[type_name]
    return [name for name in model.model_fields if name not in COMMON_FIELDS]


if TYPE_CHECKING:
    Toxic = ToxicBase
else:
    Toxic = Annotated[Union[TOXIC_MODELS], Field(discriminator="type")]  # noqa: UP007
