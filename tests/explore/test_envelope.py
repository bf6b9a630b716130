"""A bad envelope is refused before anything starts: file:line:col, the reason, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chaosnet.cli import main
from tests.explore.conftest import NARROW

FAULTS = """\
    - disable: [primary]
    - toxic: reset_peer
      proxies: [fallback]
      attributes: {timeout: 0}
      max_connections: 1
"""


def refused(path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    assert main(["explore", str(path), "--no-database", *flags]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "chaosnet explore" not in captured.out  # nothing was started
    return captured.err


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (
            ("disable: [primary]", "disable: [primry]"),
            "18:17",
            "unknown proxy 'primry' (did you mean 'primary'?)",
        ),
        (
            ("toxic: reset_peer", "toxic: reset_pear"),
            "19:14",
            "unknown toxic type 'reset_pear' (did you mean 'reset_peer'?)",
        ),
        (
            ("attributes: {timeout: 0}", "attributes: {timeout: 0, size: 3}"),
            "21:38",
            "toxic reset_peer has no attribute 'size'",
        ),
        (
            ("attributes: {timeout: 0}", "attributes: {timeout: {min: 2s, max: 1s}}"),
            "21:29",
            "min (2s) is above max (1s)",
        ),
        (
            ("max_connections: 1", "max_connections: {min: 3, max: 1}"),
            "22:24",
            "min (3) is above max (1)",
        ),
        (("- disable: [primary]", "- crash: [primary]"), "18:7", "unknown key 'crash'"),
        (
            ("deadline: 2s", "deadline: 150ms"),
            "26:15",
            "unfair envelope: an outage of up to 150ms is not shorter than the client's retry "
            "deadline (150ms)",
        ),
        (
            ("window: 20ms", "window: 1s"),
            "24:11",
            "ending at 1.15s, but the workload's last request starts at about 188ms",
        ),
        (
            ("max_steps: 2", "max_steps: 2\n  keep_path_up: false"),
            "24:17",
            "keep_path_up is off, so every endpoint may be down at once",
        ),
    ],
)
def test_bad_envelope(
    write_scenario: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    where: str,
    message: str,
) -> None:
    text = NARROW.replace(*change)
    assert text != NARROW
    err = refused(write_scenario(text), capsys)
    assert f"scenario.yaml:{where}: " in err, err
    assert message in err, err


def test_a_client_without_retry_is_an_unfair_envelope(
    write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = NARROW.replace("  retry: {attempts: 10, deadline: 2s, initial: 10ms, cap: 50ms}\n", "")
    err = refused(write_scenario(text), capsys)
    assert (
        "unfair envelope: the scenario expects every request answered, but the client "
        "does not retry" in err
    )


def test_an_unpaced_client_cannot_be_explored(
    write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(write_scenario(NARROW.replace("  rate: 80/s\n", "")), capsys)
    assert "give the client a rate" in err


def test_a_fault_kind_the_backend_lacks(
    write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(write_scenario(NARROW), capsys, "--backend", "toxiproxy")
    assert "explore.faults[1].max_connections: not supported by backend toxiproxy" in err


def test_a_file_without_an_envelope(
    write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = NARROW[: NARROW.index("explore:")]
    err = refused(write_scenario(text), capsys)
    assert "no explore: section, so there is nothing to generate" in err


def test_a_bad_budget(
    write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(write_scenario(NARROW), capsys, "--budget", "soon")
    assert "--budget soon: a duration is a number of seconds" in err


def test_a_workload_that_does_not_import(
    write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(write_scenario(NARROW), capsys, "--workload", "tests.explore.clients:nope")
    assert "--workload tests.explore.clients:nope:" in err
    assert "has no attribute 'nope'" in err


def test_run_ignores_the_envelope_and_validate_accepts_it(
    write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(NARROW)
    assert main(["validate", str(path)]) == 0
    assert main(["run", str(path), "--plain"]) == 0  # no timeline: the baseline passes
