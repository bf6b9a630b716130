"""Quantities in scenario files: durations, rates and sizes, with units or as plain numbers.

The scenario's own fields take durations in seconds (``1.5``, ``"1.5s"``,
``"250ms"``) and rates per second (``50``, ``"50/s"``). Toxic attributes keep
Toxiproxy's units, so a file reads like the Python and HTTP APIs: a plain
number is milliseconds for ``latency``, microseconds for the slicer's
``delay``, KB/s (1 KB = 1000 bytes) for ``bandwidth``; a string with a unit
(``"300ms"``, ``"64KB/s"``) is converted to those units.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
DURATION_PATTERN = rf"^\s*-?{_NUMBER}\s*(?:us|µs|ms|s|m)?\s*$"
RATE_PATTERN = rf"^\s*{_NUMBER}\s*/\s*(?:s|ms|m|min)\s*$"
SIZE_PATTERN = rf"^\s*{_NUMBER}\s*(?:B|KB|KiB|MB|MiB|GB|GiB)?\s*$"
BANDWIDTH_PATTERN = rf"^\s*{_NUMBER}\s*(?:B|KB|KiB|MB|MiB)/s\s*$"

_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_RATE_UNITS = {"ms": 1000.0, "s": 1.0, "m": 1 / 60, "min": 1 / 60}
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}
_QUANTITY = re.compile(rf"^\s*(-?{_NUMBER})\s*(\S*?)\s*$")


def _split(text: str, what: str) -> tuple[float, str]:
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f"{what}, got {text!r}")
    return float(match.group(1)), match.group(2)


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a YAML number (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return float(value)


def parse_duration(value: Any) -> float:
    """Seconds from ``1.5``, ``"1.5s"``, ``"250ms"``, ``"100us"`` or ``"2m"``; never negative."""
    seconds = _number(value)
    if seconds is None:
        what = "a duration is a number of seconds or a string like '250ms'"
        if not isinstance(value, str):
            raise ValueError(f"{what}, got {value!r}")
        amount, unit = _split(value, what)
        if unit not in _DURATION_UNITS and unit != "":
            raise ValueError(f"unknown duration unit {unit!r} in {value!r} (use us, ms, s or m)")
        seconds = amount * _DURATION_UNITS.get(unit, 1.0)
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def parse_rate(value: Any) -> float:
    """Events per second from ``50``, ``"50/s"``, ``"2/ms"`` or ``"30/min"``; above zero."""
    per_second = _number(value)
    if per_second is None:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError(
                f"a rate is a number per second or a string like '50/s', got {value!r}"
            )
        amount_text, _, unit = value.partition("/")
        amount = _number_text(amount_text, value)
        unit = unit.strip()
        if unit not in _RATE_UNITS:
            raise ValueError(f"unknown rate unit '/{unit}' in {value!r} (use /s, /ms or /min)")
        per_second = amount * _RATE_UNITS[unit]
    if per_second <= 0:
        raise ValueError(f"a rate must be above zero, got {value!r}")
    return per_second


def parse_size(value: Any) -> int:
    """Bytes from ``64``, ``"64B"``, ``"10KB"`` (1000) or ``"4KiB"`` (1024); never negative."""
    number = _number(value)
    if number is None:
        what = "a size is a number of bytes or a string like '64KiB'"
        if not isinstance(value, str):
            raise ValueError(f"{what}, got {value!r}")
        amount, unit = _split(value, what)
        if unit not in _SIZE_UNITS and unit != "":
            raise ValueError(
                f"unknown size unit {unit!r} in {value!r} (use B, KB, KiB, MB, MiB, GB or GiB)"
            )
        number = amount * _SIZE_UNITS.get(unit, 1)
    return _whole(number, value, "bytes")


def _number_text(text: str, whole: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"not a number in {whole!r}") from None


def _whole(number: float, original: Any, unit: str) -> int:
    if number < 0:
        raise ValueError(f"cannot be negative, got {original!r}")
    if number != int(number):
        raise ValueError(f"must be a whole number of {unit}, got {original!r}")
    return int(number)


def attribute_duration(unit_seconds: float, unit_name: str) -> Callable[[Any], int]:
    """A parser for a toxic attribute kept in ``unit_name``: numbers as-is, strings converted."""

    def parse(value: Any) -> int:
        number = _number(value)
        if number is not None:
            return _whole(number, value, unit_name)
        seconds = parse_duration(value)
        return round(seconds / unit_seconds)

    return parse


def parse_bandwidth(value: Any) -> int:
    """Toxiproxy's bandwidth ``rate`` in KB/s: a number, or a string like ``"64KB/s"``."""
    number = _number(value)
    if number is not None:
        return _whole(number, value, "KB/s")
    if not isinstance(value, str) or not value.strip().endswith("/s"):
        raise ValueError(
            f"a bandwidth is a number of KB/s or a string like '64KB/s', got {value!r}"
        )
    kilobytes = parse_size(value.strip()[:-2]) / 1000
    if kilobytes < 1:
        raise ValueError(f"the lowest bandwidth Toxiproxy can express is 1KB/s, got {value!r}")
    return round(kilobytes)


def format_duration(seconds: float) -> str:
    """``0.25`` → ``"250ms"``, ``1.5`` → ``"1.5s"``: how reports show durations."""
    if seconds < 1:
        return f"{seconds * 1000:.3g}ms"
    return f"{seconds:.3g}s"


def _schema(pattern: str, number: dict[str, Any], description: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"anyOf": [number, {"type": "string", "pattern": pattern}], "description": description}
    )


Seconds = Annotated[
    float,
    BeforeValidator(parse_duration),
    _schema(
        DURATION_PATTERN,
        {"type": "number", "minimum": 0},
        "seconds, or a string with a unit: '1.5s', '250ms', '100us', '2m'",
    ),
]
PerSecond = Annotated[
    float,
    BeforeValidator(parse_rate),
    _schema(
        RATE_PATTERN,
        {"type": "number", "exclusiveMinimum": 0},
        "per second, or a string with a unit: '50/s', '2/ms', '30/min'",
    ),
]
Bytes = Annotated[
    int,
    BeforeValidator(parse_size),
    _schema(
        SIZE_PATTERN,
        {"type": "integer", "minimum": 0},
        "bytes, or a string with a unit: '64B', '10KB', '4KiB', '1MiB'",
    ),
]
Millis = Annotated[
    int,
    BeforeValidator(attribute_duration(1e-3, "milliseconds")),
    _schema(
        DURATION_PATTERN,
        {"type": "integer", "minimum": 0},
        "milliseconds (Toxiproxy's unit), or a string with a unit: '300ms', '1.5s'",
    ),
]
Micros = Annotated[
    int,
    BeforeValidator(attribute_duration(1e-6, "microseconds")),
    _schema(
        DURATION_PATTERN,
        {"type": "integer", "minimum": 0},
        "microseconds (Toxiproxy's unit), or a string with a unit: '500us', '2ms'",
    ),
]
KilobytesPerSecond = Annotated[
    int,
    BeforeValidator(parse_bandwidth),
    _schema(
        BANDWIDTH_PATTERN,
        {"type": "integer", "minimum": 0},
        "KB/s (Toxiproxy's unit, 1 KB = 1000 bytes), or a string: '64KB/s', '1MB/s'",
    ),
]
