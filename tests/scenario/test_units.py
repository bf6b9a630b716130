"""Durations, rates and sizes: numbers or strings with units, and clear errors."""

from __future__ import annotations

import pytest

from chaosnet.scenario.units import (
    attribute_duration,
    format_duration,
    parse_bandwidth,
    parse_duration,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1.5, 1.5),
        (2, 2.0),
        ("1.5s", 1.5),
        ("250ms", 0.25),
        ("100us", 1e-4),
        ("2m", 120.0),
        (" 3 s ", 3.0),
        (".5s", 0.5),
        ("0", 0.0),
    ],
)
def test_durations_are_seconds(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1s", "a duration cannot be negative, got '-1s'"),
        (-0.5, "a duration cannot be negative, got -0.5"),
        ("3 parsecs", "unknown duration unit 'parsecs' in '3 parsecs' (use us, ms, s or m)"),
        ("soon", "a duration is a number of seconds or a string like '250ms', got 'soon'"),
        (True, "a duration is a number of seconds or a string like '250ms', got True"),
        (float("nan"), "must be a finite number, got nan"),
    ],
)
def test_bad_durations_say_why(value: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "per_second"), [(50, 50.0), ("50/s", 50.0), ("2/ms", 2000.0), ("30/min", 0.5)]
)
def test_rates_are_per_second(value: object, per_second: float) -> None:
    assert parse_rate(value) == pytest.approx(per_second)


def test_a_rate_must_be_above_zero_and_have_a_known_unit() -> None:
    with pytest.raises(ValueError, match="above zero"):
        parse_rate("0/s")
    with pytest.raises(ValueError, match=r"unknown rate unit '/h'"):
        parse_rate("5/h")


@pytest.mark.parametrize(
    ("value", "size"),
    [(64, 64), ("64B", 64), ("10KB", 10_000), ("4KiB", 4096), ("1MiB", 1 << 20), ("1.5KB", 1500)],
)
def test_sizes_are_bytes(value: object, size: int) -> None:
    assert parse_size(value) == size


def test_a_size_is_whole_and_not_negative() -> None:
    with pytest.raises(ValueError, match="whole number of bytes"):
        parse_size("1.5B")
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_size(-1)


def test_toxic_attributes_keep_toxiproxys_units() -> None:
    millis = attribute_duration(1e-3, "milliseconds")
    micros = attribute_duration(1e-6, "microseconds")
    assert millis(300) == 300  # a plain number is already in the attribute's unit
    assert millis("1.5s") == 1500
    assert micros("2ms") == 2000
    assert parse_bandwidth(100) == 100
    assert parse_bandwidth("1MB/s") == 1000
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        millis(1.5)
    with pytest.raises(ValueError, match="1KB/s"):
        parse_bandwidth("500B/s")


def test_durations_are_shown_in_a_readable_unit() -> None:
    assert format_duration(0.25) == "250ms"
    assert format_duration(1.5) == "1.5s"
