"""chaosnet explore end to end: real servers, the embedded proxy, real clients."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from chaosnet.backends import open_backend
from chaosnet.cli import main
from chaosnet.control import ControlClient
from chaosnet.explore.session import Explorer
from chaosnet.scenario.loader import load_paths
from tests.explore.conftest import BUNDLED, CLIENTS, NARROW, REPO

#: A seed with which the search meets the bundled compound bug early (example 26).
BUNDLED_SEED = "2"


@pytest.mark.timeout(400)
def test_explore_finds_the_compound_bug_and_shrinks_it_to_two_faults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "minimal.yaml"
    status = main(
        [
            "explore",
            str(BUNDLED),
            "--workload",
            f"{CLIENTS}:last_resort",
            "--seed",
            BUNDLED_SEED,
            "--budget",
            "90s",
            "--no-database",
            "--out",
            str(out),
        ]
    )
    shown = capsys.readouterr().out
    assert status == 1, shown
    assert "FAILED: the smallest failing schedule has 2 faults" in shown, shown
    assert "(it failed every time it was run again)" in shown, shown
    faults = [line for line in shown.splitlines() if line.startswith("  - ")]
    assert len(faults) == 2, shown
    # The two that matter: the primary down, and a fault on the fallback at that time.
    assert any(f.startswith("  - disable primary") for f in faults), shown
    assert any("on fallback/" in f for f in faults), shown
    assert f"replay: chaosnet run {out} --seed {BUNDLED_SEED}" in shown

    assert "explore:" not in out.read_text()
    assert main(["run", str(out), "--seed", BUNDLED_SEED, "--plain"]) == 1  # still fails
    fixed = out.with_name("fixed.yaml")
    fixed.write_text(out.read_text().replace("last_resort", "persistent"))
    assert main(["run", str(fixed), "--seed", BUNDLED_SEED, "--plain"]) == 0


def test_a_correct_client_survives_and_the_coverage_is_reported(
    write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(NARROW)  # the builtin framed workload: chaosnet's FramedClient
    status = main(["explore", str(path), "--budget", "6s", "--seed", "7", "--no-database"])
    shown = capsys.readouterr().out
    assert status == 0, shown
    assert "no failure: the client survived every generated schedule" in shown
    assert "fault kinds: " in shown
    assert "disable x" in shown
    assert "reset_peer x" in shown
    assert "combinations: disable + reset_peer x" in shown
    assert "examples/s" in shown
    assert not (path.parent / "scenario-minimal.yaml").exists()


def test_the_same_seed_gives_the_same_examples(write_scenario: Callable[..., Path]) -> None:
    (scenario,) = load_paths([write_scenario(NARROW)])

    def explored(seed: int) -> list[str]:
        seen: list[str] = []
        backend = open_backend("embedded", seed=seed)
        backend.start()
        control = ControlClient(backend.url)
        try:
            Explorer(
                scenario,
                control,
                seed=seed,
                backend="embedded",
                max_examples=4,
                on_example=lambda e: seen.append(e.schedule.describe()),
            ).explore()
        finally:
            control.close()
            backend.stop()
        return seen

    first = explored(11)
    assert len(first) == 4
    assert explored(11) == first
    assert explored(12) != first


@pytest.mark.timeout(120)
def test_ctrl_c_stops_cleanly_and_keeps_what_was_found(write_scenario: Callable[..., Path]) -> None:
    path = write_scenario(NARROW)
    out = path.with_name("found.yaml")
    command = [sys.executable, "-m", "chaosnet.cli", "explore", str(path), "--no-database"]
    command += ["--workload", f"{CLIENTS}:last_resort", "--seed", "3", "--out", str(out)]
    with subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if "FAILED" in line:
                break
        else:
            pytest.fail(f"no failure was found: {process.stderr.read() if process.stderr else ''}")
        servers = psutil.Process(process.pid).children(recursive=True)
        assert servers  # the scenario's two framed echo servers, at least
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "stopped by Ctrl-C" in rest, rest
    assert f"written: {out}" in rest
    assert "timeline:" in out.read_text()
    _, alive = psutil.wait_procs(servers, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
