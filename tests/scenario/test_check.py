"""``chaosnet check``: the battery fails every buggy twin and passes the correct clients.

Each buggy client runs only against the scenarios that catch its class (the catch
table of the issue); the correct raw-socket client runs the whole battery once.
Runs are in-process on the embedded backend.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from chaosnet import cli
from chaosnet.scenario.check import BATTERY, KINDS, CheckRequest, battery_files, check_command

REPO = Path(__file__).resolve().parents[2]
RAW = "tests.scenario.counterexamples.raw_clients"


def check(
    client: str, tmp_path: Path, *, keyword: str | None = None, seed: int = 11
) -> tuple[int, dict[str, dict[str, object]], str]:
    """Run ``chaosnet check``; exit status, per scenario its JSON result, and the output."""
    report = tmp_path / "report.json"
    out = io.StringIO()
    status = check_command(
        CheckRequest(
            client, keyword=keyword, seed=seed, reports=[["json", str(report)]], live=False
        ),
        stdout=out,
    )
    scenarios = {s["name"]: s for s in json.loads(report.read_text())["scenarios"]}
    return status, scenarios, out.getvalue()


def failed_expectations(result: dict[str, object]) -> list[str]:
    return [e["name"] for e in result["expectations"] if not e["passed"]]  # type: ignore[attr-defined, index]


def test_the_packaged_battery_is_the_scenarios_folder() -> None:
    # One copy: chaosnet/battery links to scenarios/; an install copies the files into the
    # package (tests/docker/test_chaosnet_image.py checks the installed copy).
    assert BATTERY.is_symlink()
    assert BATTERY.resolve() == (REPO / "scenarios").resolve()
    assert BATTERY.parent.name == "chaosnet"
    assert len(battery_files()) >= 24


@pytest.mark.timeout(240)
def test_the_correct_raw_socket_client_survives_the_whole_battery(tmp_path: Path) -> None:
    status, scenarios, out = check(f"{RAW}:correct", tmp_path)
    failing = {
        name: failed_expectations(s) or s["error"]
        for name, s in scenarios.items()
        if s["status"] != "passed"
    }
    assert failing == {}
    assert status == 0
    kinds = {"kv-exactly-once", "bandwidth", "slow-close", "reset-mid-stream"}
    assert kinds.isdisjoint(scenarios), "only framed scenarios run for a framed client"
    assert len(scenarios) >= 19
    assert "chaosnet check: report card" in out
    assert "survived" in out


# client -> {scenario: the expectations that catch it (any of them may be the first to)}
CATCHES = {
    # Deterministic leaks: a FrameTooLarge and a timed-out read both drop the socket (a
    # reset on accept may surface in connect, which closes its own socket).
    "leaks_on_error": {"corrupt-length-header": {"no_leaks"}, "permanent-outage": {"no_leaks"}},
    "tight_retry_loop": {"reset-on-accept-backoff": {"max_connect_rate", "backoff"}},
    "no_length_limit": {"corrupt-length-header": {"max_request_time"}},
    "retries_permanent_errors": {"corrupt-length-header": {"max_attempts", "max_sends"}},
    "no_deadline": {"permanent-outage": {"gave_up_within", "max_request_time"}},
    "no_connect_timeout": {"accept-stall-no-fallback": {"max_request_time"}},
    "truncated_frame_as_short_reply": {"truncated-body-fin": {"all_answered"}},
    "resends_non_idempotent": {"non-idempotent-no-resend": {"max_sends"}},
}


@pytest.mark.parametrize("client", sorted(CATCHES))
def test_each_buggy_client_fails_the_scenarios_that_catch_its_bug(
    client: str, tmp_path: Path
) -> None:
    expected = CATCHES[client]
    keyword = " or ".join(expected)
    status, scenarios, out = check(f"{RAW}:{client}", tmp_path, keyword=keyword)
    assert status == 1
    for name, catching in expected.items():
        assert scenarios[name]["status"] == "failed", name
        assert catching & set(failed_expectations(scenarios[name])), (name, scenarios[name])
    assert f"chaosnet check {RAW}:{client} --seed 11 -k" in out  # the replay command


@pytest.mark.parametrize(
    ("keyword", "client"),
    [
        ("refusal or pause or server-kill or blackhole", "correct_without_attempt_counts"),
        ("kv", "chaosnet.scenario.workloads:kv"),
    ],
)
def test_correct_twins_pass(keyword: str, client: str, tmp_path: Path) -> None:
    ref = client if ":" in client else f"{RAW}:{client}"
    kinds = ["kv"] if keyword == "kv" else ["framed"]
    report = tmp_path / "report.json"
    status = check_command(
        CheckRequest(
            ref, kinds=kinds, keyword=keyword, seed=3, reports=[["json", str(report)]], live=False
        ),
        stdout=io.StringIO(),
    )
    results = json.loads(report.read_text())["scenarios"]
    assert [r["status"] for r in results] == ["passed"] * len(results), results
    assert results
    assert status == 0


def test_a_client_that_raises_fails_its_scenario_not_the_run(tmp_path: Path) -> None:
    status, scenarios, out = check(
        "tests.scenario.counterexamples.naive_clients:crashes",
        tmp_path,
        keyword="limit-data",
    )
    assert status == 1
    [result] = scenarios.values()
    assert result["status"] == "failed"
    assert failed_expectations(result) == ["workload"]
    assert "raised RuntimeError: the client gave up" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["check", "no_such_module_xyz:f"],
            "no_such_module_xyz:f: cannot import 'no_such_module_xyz'",
        ),
        (
            ["check", f"{RAW}:correct", "--kind", "grpc"],
            f"--kind grpc: unknown kind (use {', '.join(KINDS)})",
        ),
        (
            ["check", f"{RAW}:correct", "-k", "nothing-matches-this"],
            "-k 'nothing-matches-this' matches no scenario",
        ),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.timeout(120)
def test_the_readme_client_fails_what_the_readme_says(tmp_path: Path) -> None:
    shown = "connect-stall or non-idempotent or permanent or truncated-body or accept or corrupt"
    status, scenarios, _ = check(
        "tests.examples.readme_client:run", tmp_path, seed=5, keyword=shown
    )
    failed = {name for name, s in scenarios.items() if s["status"] == "failed"}
    shown = {"connect-stall", "non-idempotent-no-resend", "permanent-outage", "truncated-body-fin"}
    assert shown <= failed
    assert {"accept-stall-no-fallback", "corrupt-length-header"}.isdisjoint(failed)
    assert status == 1
