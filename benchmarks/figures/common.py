"""What every figure module gets (:class:`Context`) and the helpers they share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.environment import CHAOSNET, DIRECT, TOXIPROXY, Environment
from benchmarks.plan import Plan
from benchmarks.profiling import Profiler
from benchmarks.resources import Usage, measured
from benchmarks.stats import median, ratio


@dataclass
class Context:
    env: Environment
    plan: Plan
    profiler: Profiler | None
    say: Callable[[str], None]
    notes: list[str] = field(default_factory=list)

    def pid(self, path: str) -> int | None:
        server = self.env.servers.get(path)
        return server.pid if server is not None else None

    @contextmanager
    def timed(self, key: str, path: str) -> Iterator[Usage]:
        """CPU accounting for one measurement, and the profiler when it is on."""
        pid = self.pid(path)
        if self.profiler is None:
            with measured(pid) as usage:
                yield usage
            return
        with self.profiler.record(key, path, pid), measured(pid) as usage:
            yield usage


@dataclass
class Sample:
    """One repetition's figure on one path, and what it cost."""

    value: float
    usage: Usage | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def medians(results: dict[str, list[Sample]]) -> dict[str, float | None]:
    return {path: median([s.value for s in samples]) for path, samples in results.items()}


def cost_details(
    results: dict[str, list[Sample]], work: float | None = None, work_unit: str = ""
) -> dict[str, Any]:
    """Per path: every repetition's value, the load generator's CPU share, and the proxy's
    CPU seconds (per ``work`` units of work when given, e.g. per GB)."""
    out: dict[str, Any] = {}
    for path, samples in results.items():
        entry: dict[str, Any] = {"repetitions": [s.value for s in samples]}
        usages = [s.usage for s in samples if s.usage is not None]
        if usages:
            entry["client_cpu_share"] = median([u.client_share for u in usages])
            server = [u.server_cpu_s for u in usages if u.server_cpu_s is not None]
            if server:
                entry["proxy_cpu_s"] = median(server)
                if work:
                    entry[f"proxy_cpu_s_per_{work_unit}"] = median(server) / work
        extras = [s.extra for s in samples if s.extra]
        if extras:
            entry["extra"] = extras
        out[path] = entry
    return out


def times(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}x"


def higher_is_better(
    values: dict[str, float | None], vs_toxiproxy: float | None, vs_direct: float | None
) -> tuple[bool | None, str, dict[str, float | None]]:
    """Targets of the form chaosnet >= a x toxiproxy and >= b x direct (None: not checked)."""
    chaosnet = values.get(CHAOSNET)
    to_t = ratio(chaosnet, values.get(TOXIPROXY))
    to_d = ratio(chaosnet, values.get(DIRECT))
    checks: list[bool] = []
    if vs_toxiproxy is not None and to_t is not None:
        checks.append(to_t >= vs_toxiproxy)
    if vs_direct is not None and to_d is not None:
        checks.append(to_d >= vs_direct)
    met = all(checks) if checks else None
    compare = f"{times(to_t)} toxiproxy, {times(to_d)} direct"
    return met, compare, {"chaosnet/toxiproxy": to_t, "chaosnet/direct": to_d}
