"""How much work each figure does: the full run, and ``--quick`` (keeps CI honest, not fast)."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class Plan:
    quick: bool
    repetitions: int  # of every interleaved figure; the median is reported
    bulk_bytes: int  # each way (figure 1)
    bulk_budget_s: float
    round_trips: int  # one connection (figure 2)
    concurrent_rounds: int  # per connection, 50 connections (figure 2)
    new_connections: int  # figure 3
    latency_rounds: int  # per connection, 100 connections (figure 4)
    bandwidth_seconds: float  # expected duration of each transfer (figure 5)
    bandwidth_repetitions: int
    control_cycles: int  # figure 6, idle
    load_connections: int  # figure 6, streaming
    load_cycles: int
    plugin_cycles: int  # chaos.proxy() calls (figure 7)
    toxiproxy_starts: int
    scale_connections: int  # figure 8
    scale_rounds: int


FULL = Plan(
    quick=False,
    repetitions=5,
    bulk_bytes=256 * MIB,
    bulk_budget_s=60.0,
    round_trips=20_000,
    concurrent_rounds=400,
    new_connections=3_000,
    latency_rounds=20,
    bandwidth_seconds=2.0,
    bandwidth_repetitions=3,
    control_cycles=200,
    load_connections=500,
    load_cycles=60,
    plugin_cycles=200,
    toxiproxy_starts=10,
    scale_connections=1_000,
    scale_rounds=20,
)

QUICK = Plan(
    quick=True,
    repetitions=1,
    bulk_bytes=16 * MIB,
    bulk_budget_s=30.0,
    round_trips=1_000,
    concurrent_rounds=20,
    new_connections=200,
    latency_rounds=3,
    bandwidth_seconds=0.3,
    bandwidth_repetitions=1,
    control_cycles=10,
    load_connections=50,
    load_cycles=5,
    plugin_cycles=10,
    toxiproxy_starts=1,
    scale_connections=100,
    scale_rounds=5,
)
