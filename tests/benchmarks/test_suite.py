"""The benchmark suite runs end to end in ``--quick`` mode and cleans up after itself.

No timing is asserted here (numbers belong to ``python -m benchmarks``); what is
checked is that every figure ran on every path, the JSON is complete, the
functional outcomes hold (no errors at scale, no hung control request on
chaosnet) and no process outlives the run, even when it is interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from benchmarks.environment import PATHS
from benchmarks.stats import interleaved, percentile

ROOT = Path(__file__).resolve().parents[2]
PROXY_FIGURES = {"1a", "1b", "1c", "1d", "2a", "2b", "2c", "2d", "3", "4a", "4b", "5a", "5b"}
PROXY_FIGURES |= {"6a", "6b", "6c", "6e", "6f", "7a", "8a", "8b", "8c", "10a", "10b", "10c", "10d"}
PROXY_FIGURES |= {f"11{letter}" for letter in "abcdefghi"}  # the message-aware proxy
ALL_FIGURES = PROXY_FIGURES | {"6d", "6g", "6h", "7b", "7c"}
ALL_FIGURES |= {f"9{letter}" for letter in "abcdefgh"}  # in memory: chaosnet only
RUN_TIMEOUT_S = 100.0


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def _command(toxiproxy: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "benchmarks", "--quick", "--output", str(output)),
        *("--toxiproxy-bin", str(toxiproxy), *extra),
    ]


@pytest.mark.timeout(RUN_TIMEOUT_S + 20)
def test_quick_run_measures_every_figure_and_writes_json(
    toxiproxy_bins: tuple[Path, Path], tmp_path: Path
) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        _command(toxiproxy_bins[0], output),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "chaosnet benchmarks" in done.stdout
    document = json.loads(output.read_text())
    assert document["failed"] == []
    machine = document["machine"]
    assert machine["cores"] >= 1
    assert machine["python"] == ".".join(map(str, sys.version_info[:3]))
    assert machine["toxiproxy"] == "2.12.0"
    assert isinstance(machine["uvloop_on"], bool)
    assert machine["date"]
    rows = {row["key"]: row for row in document["figures"]}
    assert set(rows) == ALL_FIGURES
    for key in PROXY_FIGURES:
        values = rows[key]["values"]
        assert isinstance(values["chaosnet"], float | int), (key, values)
    for key in ("1a", "1b", "2a", "3", "8a"):  # the three paths, side by side
        values = rows[key]["values"]
        assert all(isinstance(values[p], float | int) for p in PATHS), rows[key]
    assert rows["8b"]["values"]["chaosnet"] == 0  # no errors at scale
    assert rows["10c"]["values"]["chaosnet"] == 0  # nor with datagram flows
    assert rows["6g"]["values"]["chaosnet"] == 0  # chaosnet's control plane never hung
    assert isinstance(rows["9a"]["details"]["framing_and_retry"]["call_overhead_ns"], float)
    for key in ("1c", "1d"):  # through a latency toxic: chaosnet beside toxiproxy, no direct
        values = rows[key]["values"]
        assert isinstance(values["toxiproxy"], float | int), rows[key]
        assert "direct" not in values, rows[key]


@pytest.mark.timeout(60)
def test_ctrl_c_stops_every_process_it_started(
    toxiproxy_bins: tuple[Path, Path], tmp_path: Path
) -> None:
    run = subprocess.Popen(
        _command(toxiproxy_bins[0], tmp_path / "x.json", "--figures", "3"),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stderr is not None
        for _ in range(200):  # bounded: the figure line comes once all servers are up
            line = run.stderr.readline()
            if "figure 3" in line or not line:
                break
        children = psutil.Process(run.pid).children(recursive=True)
        assert len(children) >= 3  # upstream, chaosnet serve, toxiproxy-server
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) in (0, 130)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == [], [p.pid for p in alive]


def test_interleaving_rotates_the_order_of_the_paths() -> None:
    calls: list[tuple[str, int]] = []

    def measure(path: str, repetition: int) -> int:
        calls.append((path, repetition))
        return len(calls)

    results = interleaved(("a", "b", "c"), 3, measure)
    assert [p for p, _ in calls] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert results == {"a": [1, 6, 8], "b": [2, 4, 9], "c": [3, 5, 7]}


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) != percentile([], 50)  # NaN for no samples
