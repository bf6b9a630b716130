"""The protocols a proxy may declare, their options, and the framers they make.

A proxy's ``"protocol"`` (with optional ``"protocol_options"``) is parsed once into
a :class:`Protocol`; each connection then gets its framers from it, one per
direction, sharing what the protocol's two directions share (HTTP's request
methods). Options are declared here in one table per protocol, and every bad value
is a :class:`ProtocolError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chaosnet.proxy.framers.base import Framer, Part
from chaosnet.proxy.framers.http1 import DEFAULT_MAX_HEAD, Exchange, Http1Framer
from chaosnet.proxy.framers.length_prefix import LengthPrefixFramer
from chaosnet.proxy.framers.line import DEFAULT_MAX_LINE, LineFramer
from chaosnet.proxy.framers.resp import RespFramer

MAX_SIZE = 1 << 62


class ProtocolError(ValueError):
    """A bad ``protocol`` or ``protocol_options``; the message names the field."""


@dataclass(frozen=True)
class Option:
    name: str
    default: object
    check: Callable[[object], object]  # the coerced value; raises ValueError with the reason
    help: str


def _int(minimum: int, maximum: int = MAX_SIZE) -> Callable[[object], object]:
    def check(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ValueError(f"must be a whole number from {minimum} to {maximum}, got {value!r}")
        return value

    return check


def _choice(*choices: object) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value not in choices or isinstance(value, bool):
            raise ValueError(f"must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value

    return check


def _delimiter(value: object) -> object:
    if not isinstance(value, str) or not 1 <= len(value) <= 2 or max(map(ord, value)) > 255:
        raise ValueError(f"must be a string of 1 or 2 characters (latin-1), got {value!r}")
    return value


OPTIONS: dict[str, tuple[Option, ...]] = {
    "length_prefix": (
        Option("header_size", 4, _choice(1, 2, 4, 8), "length header size in bytes: 1, 2, 4 or 8"),
        Option("byte_order", "big", _choice("big", "little"), "byte order of the length header"),
        Option("max_size", 0, _int(0), "largest payload; a bigger header desynchronizes (0: any)"),
    ),
    "line": (
        Option("delimiter", "\n", _delimiter, "the 1- or 2-byte line end"),
        Option("max_size", DEFAULT_MAX_LINE, _int(1), "longest line, delimiter included"),
    ),
    "http1": (Option("max_head", DEFAULT_MAX_HEAD, _int(64), "longest request/response head"),),
    "resp": (),
}
PROTOCOLS = tuple(OPTIONS)


@dataclass(frozen=True)
class Protocol:
    name: str
    options: Mapping[str, Any]

    @property
    def has_head(self) -> bool:
        return self.name != "line"

    def shared(self) -> object:
        """What a connection's two framers share."""
        return Exchange() if self.name == "http1" else None

    def framer(self, stream: str, shared: object, *, primary: bool = True) -> Framer:
        """A framer for one direction: ``upstream`` carries requests, ``downstream`` replies.

        ``primary``: the connection's own framer (it reads first), not a toxic's.
        """
        o = self.options
        requests = stream == "upstream"
        if self.name == "http1":
            assert isinstance(shared, Exchange)
            return Http1Framer(requests, shared, primary=primary, max_head=o["max_head"])
        if self.name == "resp":
            return RespFramer(requests)
        if self.name == "line":
            return LineFramer(o["delimiter"].encode("latin-1"), o["max_size"])
        order: Literal["big", "little"] = o["byte_order"]
        return LengthPrefixFramer(o["header_size"], order, o["max_size"])

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.name, "protocol_options": dict(self.options)}


def parse_protocol(name: object, options: object) -> Protocol | None:
    """The ``protocol``/``protocol_options`` fields of a proxy body; None for plain bytes."""
    if name is None:
        if options not in (None, {}):
            raise ProtocolError("protocol_options: given without a protocol")
        return None
    if not isinstance(name, str) or name not in OPTIONS:
        known = ", ".join(PROTOCOLS)
        raise ProtocolError(f"protocol: unknown protocol {name!r} (known: {known})")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ProtocolError(f"protocol_options: must be an object, got {type(options).__name__}")
    table = {option.name: option for option in OPTIONS[name]}
    values: dict[str, Any] = {}
    for key, value in options.items():
        option = table.get(key)
        if option is None:
            known = ", ".join(table) or "none"
            raise ProtocolError(
                f"protocol_options.{key}: unknown option of {name} (known: {known})"
            )
        try:
            values[key] = option.check(value)
        except ValueError as exc:
            raise ProtocolError(f"protocol_options.{key}: {exc}") from None
    for option in OPTIONS[name]:
        values.setdefault(option.name, option.default)
    return Protocol(name, values)


__all__ = ["PROTOCOLS", "Framer", "Part", "Protocol", "ProtocolError", "parse_protocol"]
