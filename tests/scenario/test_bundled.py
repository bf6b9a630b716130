"""The bundled scenarios (``scenarios/``): valid, and passing, which is CI's main job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaosnet.cli import main
from chaosnet.scenario.loader import load_paths

BUNDLED = Path(__file__).resolve().parents[2] / "scenarios"
#: The faults the bundle must cover (issue 6), by the scenario that covers each.
REQUIRED = {
    "refusal-then-recovery": "disable",
    "latency-fallback": "latency",
    "reset-mid-stream": "reset_peer",
    "truncated-frame-header": "truncate_frame",
    "truncated-frame-body": "truncate_frame",
    "slicer-reassembly": "slicer",
    "bandwidth": "bandwidth",
    "blackhole-timeout": "timeout",
    "slow-close": "slow_close",
    "limit-data": "limit_data",
    "server-kill-restart": "kill",
    "first-connections-fail": "reset_peer",
    "connect-stall": "stall_accept",
}


def test_the_bundle_covers_every_required_fault() -> None:
    from chaosnet.scenario.runner import fault_kinds

    kinds = {s.name: fault_kinds(s.spec) for s in load_paths([BUNDLED])}
    for name, fault in REQUIRED.items():
        assert fault in kinds.get(name, []), f"{name} should inject {fault}"


def test_every_bundled_scenario_is_valid_for_the_embedded_backend(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(BUNDLED)]) == 0, capsys.readouterr().err


def test_every_bundled_scenario_passes_on_the_embedded_backend(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    code = main(["run", str(BUNDLED), "--report", "json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    document = json.loads(report.read_text())
    assert document["summary"]["passed"] == len(list(BUNDLED.glob("*.yaml")))
