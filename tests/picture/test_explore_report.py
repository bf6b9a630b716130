"""``chaosnet explore --report html``: the picture of the minimal failing run it found."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosnet.cli import main
from tests.explore.conftest import CLIENTS, NARROW
from tests.picture.page import external_urls, read_page


@pytest.mark.timeout(120)
def test_explore_draws_the_minimal_failure_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "narrow.yaml"
    scenario.write_text(NARROW)
    html = tmp_path / "explore.html"
    status = main(
        [
            "explore",
            str(scenario),
            "--workload",
            f"{CLIENTS}:last_resort",
            *("--budget", "40s", "--seed", "7", "--no-database"),
            *("--report", "html", str(html)),
        ]
    )
    shown = capsys.readouterr().out
    assert status == 1, shown
    minimal = tmp_path / "narrow-minimal.yaml"
    assert minimal.exists()
    page, document = read_page(html)
    assert external_urls(page) == []
    (picture,) = document["pictures"]
    assert picture["status"] == "failed"
    assert picture["replay"].startswith(f"chaosnet run {minimal} --seed 7 -k ")
    kinds = sorted(b["kind"] for b in picture["data"]["bands"])
    assert kinds == ["disabled", "toxic"]  # the two faults the schedule was shrunk to
    failed = [v for v in picture["data"]["verdicts"] if not v["passed"]]
    assert failed
    assert all(v["failed_at"] is not None for v in failed)
