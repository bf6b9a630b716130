"""The figures of issue 8, one module each; ``FIGURES`` runs them in order."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.figures import (
    bandwidth_toxic,
    connect_rate,
    control_plane,
    datagrams,
    latency_toxic,
    messages,
    plugin_cost,
    primitives,
    round_trip,
    scale,
    throughput,
)
from benchmarks.figures.common import Context
from benchmarks.report import Row

FIGURES: dict[str, Callable[[Context], list[Row]]] = {
    "1": throughput.run,
    "2": round_trip.run,
    "3": connect_rate.run,
    "4": latency_toxic.run,
    "5": bandwidth_toxic.run,
    "6": control_plane.run,
    "7": plugin_cost.run,
    "8": scale.run,
    "9": primitives.run,
    "10": datagrams.run,
    "11": messages.run,
}
