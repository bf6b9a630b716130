"""HTML report speed and size: each bundled scenario's picture, and 10,000 requests.

Figures (best of a few renders, each bounded):

- ``<scenario>_ms`` / ``<scenario>_kB``: run result -> picture -> HTML page, for one
  run of each bundled scenario on the embedded backend (the page holds the 0.9 MB
  Vega bundle, read from its cache);
- ``requests_10000_ms`` / ``_kB``: a synthetic run of 10,000 requests (1 in 20
  failed, 1 in 7 retried) and 3,000 connections; ``failed_10000_*``: all 10,000 failed;
- ``png_all_scenarios_ms`` / ``_kB``: every bundled scenario in one PNG (a child
  process renders it: the engine's start-up is in the figure);
- ``bundle_build_ms`` (not with ``--quick``): building the Vega bundle once, uncached.

Run: ``python -m benchmarks.bench_report [--quick]``.
"""

from __future__ import annotations

import functools
import io
import os
import random
import tempfile
import time
from pathlib import Path

from benchmarks.report import micro_main
from benchmarks.stats import fastest
from chaosnet.control import ConnectionInfo, ConnectionLogInfo
from chaosnet.picture import scenario_picture, vega
from chaosnet.picture.page import png_spec, render
from chaosnet.scenario.commands import _run_all, _settings
from chaosnet.scenario.loader import load_paths
from chaosnet.scenario.result import ScenarioResult
from chaosnet.scenario.workloads import RequestRecord

ROOT = Path(__file__).resolve().parent.parent
SEED = 8


def _page(result: ScenarioResult) -> str:
    return render([scenario_picture(result)], title=result.name)


def synthetic(
    requests: int, *, failed_every: int, retried_every: int, reset_every: int = 3
) -> ScenarioResult:
    """A run's result as a long, disturbed run leaves it (no servers needed): 3,000
    connections, one in ``reset_every`` reset by a toxic."""
    rng = random.Random(SEED)
    records = []
    for i in range(requests):
        start = i * 0.001
        record = RequestRecord(index=i, started=start, ended=start + rng.uniform(1e-4, 5e-3))
        record.ok = i % failed_every != 0
        record.attempts = 3 if i % retried_every == 0 else 1
        record.endpoint = "127.0.0.1:40000"
        if not record.ok:
            record.error = "RetryError"
            record.message = "request to 127.0.0.1:40000: gave up after 3 attempt(s)"
            record.tried = tuple(
                f"#{n} 127.0.0.1:40000 at +0.00{n}s (0.001s): ConnectionResetError: reset"
                for n in (1, 2, 3)
            )
        records.append(record)
    origin = time.time()
    log = ConnectionLogInfo(3000, 0, [])
    for i in range(1, 3001):
        by, kind = ("toxic reset", "rst") if i % reset_every == 0 else ("client", "fin")
        opened = origin + i * 0.003
        log.records.append(
            ConnectionInfo(i, "127.0.0.1:50000", opened, opened + 0.002, 64, 64, by, kind, [])
        )
    return ScenarioResult(
        name=f"synthetic-{requests}",
        path=Path("synthetic.yaml"),
        seed=SEED,
        backend="embedded",
        faults=["reset_peer"],
        status="failed",
        requests=records,
        planned_requests=requests,
        workload_started=True,
        elapsed=requests * 0.001,
        started_at=origin,
        connections={"main": log},
        proxy_addresses={"main": "127.0.0.1:40000"},
    )


def measure(quick: bool = False) -> dict[str, float]:
    repeats = 2 if quick else 5
    figures: dict[str, float] = {}
    if not quick:
        with tempfile.TemporaryDirectory() as cache:
            before = os.environ.get("XDG_CACHE_HOME")
            os.environ["XDG_CACHE_HOME"] = cache
            vega.javascript_bundle.cache_clear()
            started = time.perf_counter()
            vega.javascript_bundle()
            figures["bundle_build_ms"] = (time.perf_counter() - started) * 1000
            if before is None:
                os.environ.pop("XDG_CACHE_HOME")
            else:
                os.environ["XDG_CACHE_HOME"] = before
            vega.javascript_bundle.cache_clear()
    vega.javascript_bundle()  # from the cache from here on, as every later report
    scenarios = load_paths([ROOT / "scenarios"])
    settings = _settings(None, SEED).with_seed()
    results: list[ScenarioResult] = []
    _run_all(scenarios, settings, SEED, io.StringIO(), False, results)
    for result in results:
        figures[f"{result.name}_ms"] = fastest(functools.partial(_page, result), repeats) * 1000
        figures[f"{result.name}_kB"] = len(_page(result).encode()) / 1000
    for name, result in (
        ("requests_10000", synthetic(10_000, failed_every=20, retried_every=7)),
        ("failed_10000", synthetic(10_000, failed_every=1, retried_every=1)),
    ):
        figures[f"{name}_ms"] = fastest(functools.partial(_page, result), repeats) * 1000
        figures[f"{name}_kB"] = len(_page(result).encode()) / 1000
    pictures = [scenario_picture(r) for r in results]
    started = time.perf_counter()
    png = vega.to_png(png_spec(pictures))
    figures["png_all_scenarios_ms"] = (time.perf_counter() - started) * 1000
    figures["png_all_scenarios_kB"] = len(png) / 1000
    return figures


def main() -> None:
    micro_main(measure, __doc__ or "", quick_help="fewer repeats, no uncached build")


if __name__ == "__main__":
    main()
