"""``chaosnet run`` and ``chaosnet validate``: exit codes, reports, selection, Ctrl-C."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from chaosnet.cli import main
from chaosnet.control import ControlClient
from chaosnet.proxy.embedded import EmbeddedServer
from tests.scenario.conftest import MINIMAL, WriteScenario
from tests.support import wait_gone

ROOT = Path(__file__).resolve().parents[2]
COUNTEREXAMPLES = Path(__file__).parent / "counterexamples"
FAILING = MINIMAL.replace("all_answered: true", "max_attempts: 1\n  elapsed: {under: 1us}")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_accepts_good_files(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario
) -> None:
    path = write_scenario(MINIMAL)
    code, out, err = run_cli(capsys, "validate", str(path))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"ok {path} (scenario)",
        "1 scenario file(s) valid for backend embedded",
    ]


def test_validate_lists_every_problem_and_exits_2(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario
) -> None:
    path = write_scenario(MINIMAL.replace("requests: 5", "requests: x").replace("500ms", "never"))
    code, out, err = run_cli(capsys, "validate", str(path))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"{path}:8:13: client.requests: expected an integer, got 'x'",
        f"{path}:9:12: client.timeout: a duration is a number of seconds or a string like "
        "'250ms', got 'never'",
        "chaosnet: 2 problems in 1 file; nothing was run",
    ]
    assert "Traceback" not in err


def test_validate_for_toxiproxy_refuses_extensions(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario
) -> None:
    path = write_scenario(
        MINIMAL.replace(
            "main: {server: echo}", "main: {server: echo, toxics: [{type: refuse_new}]}"
        )
    )
    code, _, err = run_cli(capsys, "validate", "--backend", "toxiproxy", str(path))
    assert code == 2
    assert err.splitlines()[0] == (
        f"{path}:4:40: proxies.main.toxics[0].type: not supported by backend toxiproxy: refuse_new"
    )


def test_run_exits_0_when_every_expectation_holds(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario
) -> None:
    code, out, _ = run_cli(capsys, "run", str(write_scenario(MINIMAL)), "--seed", "5")
    assert code == 0
    assert "\x1b[" not in out  # not a terminal: a plain log, no escape codes
    assert "scenario: workload framed started: 5 requests" in out
    assert out.splitlines()[-1].startswith("1 passed in ")
    assert out.splitlines()[-1].endswith(" (seed 5)")


def test_run_exits_1_and_prints_the_seed_of_a_failure(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario
) -> None:
    path = write_scenario(FAILING, "failing.yaml")
    code, out, _ = run_cli(capsys, "run", str(path), "--seed", "4242")
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("│ failing"))
    assert "FAILED" in row
    assert row.rstrip("│ ").endswith("4242")  # the seed column
    assert f"replay: chaosnet run {path} --seed 4242 -k failing --backend embedded" in out
    assert "expectation elapsed did not hold: workload took under 0.001ms" in out


def test_run_exits_2_on_bad_input_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario
) -> None:
    before = psutil.Process().children(recursive=True)
    path = write_scenario(MINIMAL.replace("framed_echo", "framed_ecko"))
    code, out, err = run_cli(capsys, "run", str(path))
    assert code == 2
    assert out == ""
    assert "did you mean 'framed_echo'?" in err
    assert psutil.Process().children(recursive=True) == before


def test_run_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario, tmp_path: Path
) -> None:
    path = str(write_scenario(MINIMAL))
    assert run_cli(capsys, "run", path, "--seed", "-3")[2] == (
        "chaosnet: error: option --seed: seed must be between 0 and 4294967295, got -3\n"
    )
    assert run_cli(capsys, "run", path, "--report", "xml", "out.xml")[0] == 2
    assert run_cli(capsys, "run", str(tmp_path / "missing.yaml"))[2] == (
        f"chaosnet: error: {tmp_path / 'missing.yaml'}: no such file or folder\n"
    )


def test_run_k_selects_scenarios_by_name_or_file(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario
) -> None:
    write_scenario("name: alpha-reset\n" + MINIMAL, "one.yaml")
    folder = write_scenario("name: beta-slow\n" + FAILING, "two.yaml").parent
    code, out, _ = run_cli(capsys, "run", str(folder), "-k", "alpha")
    assert code == 0
    assert "alpha-reset: PASSED" in out
    assert "beta-slow" not in out
    code, out, _ = run_cli(capsys, "run", str(folder), "-k", "two.yaml or alpha")
    assert code == 1
    assert "alpha-reset: PASSED" in out
    assert "beta-slow: FAILED" in out
    code, out, _ = run_cli(capsys, "run", str(folder), "-k", "not (alpha or gamma)")
    assert "beta-slow: FAILED" in out
    assert "alpha-reset" not in out
    code, _, err = run_cli(capsys, "run", str(folder), "-k", "gamma")
    assert code == 2
    assert err == (
        "chaosnet: error: -k 'gamma' matches no scenario (there are: alpha-reset, beta-slow)\n"
    )


def test_json_report_has_expectations_timeline_seed_and_counts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    code, _, _ = run_cli(
        capsys,
        "run",
        str(COUNTEREXAMPLES / "naive_no_retry.yaml"),
        "--seed",
        "9",
        "--report",
        "json",
        str(report),
    )
    assert code == 1
    document = json.loads(report.read_text())
    assert (document["seed"], document["backend"]) == (9, "embedded")
    assert document["summary"] == {"passed": 0, "failed": 1, "error": 0}
    (scenario,) = document["scenarios"]
    assert scenario["name"] == "naive-no-retry"
    assert scenario["status"] == "failed"
    assert scenario["counts"]["planned"] == 10
    assert scenario["counts"]["answered"] < 10
    answered = next(e for e in scenario["expectations"] if e["name"] == "all_answered")
    assert answered["passed"] is False
    assert answered["observed"]["answered"] == scenario["counts"]["answered"]
    steps = [(e["trigger"], e["description"]) for e in scenario["timeline"]]
    assert steps == [("at 50ms", "disable proxy main"), ("at 120ms", "enable proxy main")]
    assert scenario["timeline"][0]["time"] == pytest.approx(0.05, abs=0.03)
    assert scenario["replay"].endswith("--seed 9 -k naive-no-retry --backend embedded")


def test_junit_report_is_valid_xml_with_one_case_per_scenario(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario, tmp_path: Path
) -> None:
    write_scenario(MINIMAL, "good.yaml")
    folder = write_scenario(FAILING, "bad.yaml").parent
    junit = tmp_path / "junit.xml"
    assert run_cli(capsys, "run", str(folder), "--seed", "3", "--junit", str(junit))[0] == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"good", "bad"}
    assert cases["good"].find("failure") is None
    failure = cases["bad"].find("failure")
    assert failure is not None
    assert failure.get("message") == "expectations failed: elapsed"
    assert "timeline:" in (failure.text or "")
    seeds = [p.get("value") for p in cases["bad"].iter("property") if p.get("name") == "seed"]
    assert seeds == ["3"]


def test_a_scenario_that_cannot_start_exits_2_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario
) -> None:
    with EmbeddedServer() as server:
        text = MINIMAL.replace(
            "  echo: {builtin: framed_echo}\n",
            "  echo: {builtin: framed_echo}\n"
            "  broken:\n"
            "    command: [python3, -c, 'import sys; print(\"no luck\"); sys.exit(3)']\n"
            "    ready: {port: 9}\n",
        ).replace("proxies:\n", "proxies:\n  second: {server: broken}\n")
        code, out, _ = run_cli(capsys, "run", str(write_scenario(text)), "--backend", server.url)
        assert code == 2
        assert "scenario ERROR" in out
        assert "exited with code 3 before it was ready" in out
        assert "(the workload did not start)" in out
        assert "no luck" in out  # the last lines of its log
        pid = int(out.split("server echo ready on ")[1].split("(pid ")[1].split(")")[0])
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        client = ControlClient(server.url)
        assert client.proxies() == {}
        client.close()


def test_ctrl_c_stops_servers_removes_proxies_and_exits_130(
    write_scenario: WriteScenario,
) -> None:
    long_run = MINIMAL.replace("requests: 5", "requests: 1000\n  rate: 20/s")
    path = write_scenario(long_run)
    with EmbeddedServer() as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "chaosnet.cli", "run", str(path), "--backend", server.url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            lines = read_until(process, "workload framed started", timeout=20)
            pid = int(next(ln for ln in lines if "(pid " in ln).split("(pid ")[1].rstrip(")\n"))
            client = ControlClient(server.url)
            assert len(client.proxies()) == 1  # the scenario's proxy is up
            process.send_signal(signal.SIGINT)
            rest, _ = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        assert process.returncode == 130
        assert "interrupted: servers stopped, proxies removed" in rest
        assert "Traceback" not in rest
        assert client.proxies() == {}
        client.close()
        assert wait_gone(pid, timeout=5)


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    """Lines of the process's output up to the first one containing ``marker``."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no line with {marker!r} within {timeout}s; got:\n{''.join(lines)}")


def test_the_live_display_is_used_on_request(
    capsys: pytest.CaptureFixture[str], write_scenario: WriteScenario
) -> None:
    code, out, _ = run_cli(capsys, "run", str(write_scenario(MINIMAL)), "--live")
    assert code == 0
    assert "\x1b[" in out  # rich's escape codes: progress bars, colours
    assert "PASSED" in out
