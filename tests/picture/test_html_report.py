"""``chaosnet run --report html|png``: a well-formed, self-contained page holding the run."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from chaosnet.cli import main
from chaosnet.picture import vega
from tests.picture.conftest import Run
from tests.picture.page import external_urls, png_colours, read_page

#: The first page of a machine builds the Vega bundle (about 10 s alone, more on a busy
#: CI machine with every xdist worker building it at once); later ones read its cache.
pytestmark = pytest.mark.timeout(180)

STEP_SLACK_S = 0.1  # a step fires within this of its time on a loaded 2-core machine


def picture_of(run: Run) -> dict:  # type: ignore[type-arg]
    _, document = read_page(run.html)
    (picture,) = document["pictures"]
    return picture  # type: ignore[no-any-return]


def test_the_page_is_well_formed_and_needs_no_network(failing_run: Run) -> None:
    assert failing_run.exit_code == 1  # an expectation failed
    page, document = read_page(failing_run.html)
    assert external_urls(page) == []
    assert "vegaEmbed" in page.scripts["script-0"]  # the charting library, inline
    assert document["format"] == 1
    assert len(document["specs"]) == len(document["pictures"]) == 1
    assert "http" not in page.scripts["chaosnet-report"]  # no data or spec points outside
    assert failing_run.html.stat().st_size < 2_000_000


def test_every_fault_is_a_band_on_the_row_it_hit(failing_run: Run) -> None:
    picture = picture_of(failing_run)
    assert picture["rows"] == ["proxy main", "server echo"]
    disabled, slow = picture["data"]["bands"]
    assert (disabled["row"], disabled["kind"], disabled["lifted"]) == (
        "proxy main",
        "disabled",
        True,
    )
    assert disabled["start"] == pytest.approx(0.06, abs=STEP_SLACK_S)
    assert disabled["end"] == pytest.approx(0.14, abs=STEP_SLACK_S)
    assert (slow["row"], slow["kind"], slow["label"]) == ("proxy main", "toxic", "latency slow")
    assert slow["start"] == pytest.approx(0.18, abs=STEP_SLACK_S)
    assert slow["end"] == pytest.approx(0.30, abs=STEP_SLACK_S)
    timeline = failing_run.json["scenarios"][0]["timeline"]
    assert disabled["start"] == timeline[0]["time"]  # from the steps as they fired
    assert slow["end"] == timeline[3]["time"]


def test_every_request_is_a_mark_coloured_by_its_outcome(failing_run: Run) -> None:
    picture = picture_of(failing_run)
    counts = failing_run.json["scenarios"][0]["counts"]
    marks = picture["data"]["requests"]
    assert [m["index"] for m in marks] == list(range(counts["requests"]))  # none sampled away
    failed = [m for m in marks if m["outcome"] == "failed"]
    assert len(failed) == counts["failed"] > 0
    assert {m["outcome"] for m in marks} <= {"first try", "failed"}  # no retry policy
    disable, enable, add, _ = failing_run.json["scenarios"][0]["timeline"]
    back = enable["time"] + enable["duration"]  # listening again
    for mark in failed:  # every failure overlapped the time the proxy was down
        assert mark["start"] <= back
        assert mark["start"] + mark["latency"] >= disable["time"]
        assert "Connection" in mark["error"]  # refused, or reset when the proxy went down
        assert mark["endpoint"].startswith("main (127.0.0.1:")
        assert mark["tries"].startswith("#1 127.0.0.1:")
    slow = picture["data"]["bands"][1]
    applied = add["time"] + add["duration"]
    during = [m for m in marks if applied < m["start"] < slow["end"] - 0.03]
    assert during
    assert all(m["latency"] >= 0.03 for m in during)  # the latency toxic shows


def test_connections_are_lines_with_how_they_ended(failing_run: Run) -> None:
    picture = picture_of(failing_run)
    lines = picture["data"]["connections"]
    assert {line["proxy"] for line in lines} == {"main"}
    first = lines[0]
    assert first["ending"] == "by the proxy"  # dropped when the proxy was disabled
    disable = failing_run.json["scenarios"][0]["timeline"][0]
    assert disable["time"] <= first["closed"] <= disable["time"] + disable["duration"] + 0.005
    assert lines[-1]["ending"] in ("FIN", "still open")
    assert all(line["opened"] <= (line["closed"] or 1e9) for line in lines)


def test_each_expectation_with_its_verdict_and_the_moment_it_failed(failing_run: Run) -> None:
    picture = picture_of(failing_run)
    verdicts = {v["name"]: v for v in picture["data"]["verdicts"]}
    assert set(verdicts) == {"all_answered", "max_attempts"}
    assert verdicts["max_attempts"]["passed"] is True
    assert verdicts["max_attempts"]["failed_at"] is None
    broken = verdicts["all_answered"]
    assert broken["passed"] is False
    first_failure = min(
        m["start"] + m["latency"] for m in picture["data"]["requests"] if m["outcome"] == "failed"
    )
    assert broken["failed_at"] == pytest.approx(first_failure, abs=2e-6)


def test_the_seed_and_the_replay_command_are_on_the_page(failing_run: Run) -> None:
    page, _ = read_page(failing_run.html)
    picture = picture_of(failing_run)
    replay = failing_run.json["scenarios"][0]["replay"]
    assert picture["replay"] == replay
    assert "--seed 7" in replay
    text = " ".join(page.text)
    assert replay in text
    assert "FAILED at" in text  # the verdict table, readable without script


def test_the_png_is_the_same_picture(failing_run: Run) -> None:
    data = failing_run.png.read_bytes()
    colours = png_colours(data)
    assert len(colours) > 50  # not blank
    red = sum(n for (r, g, b), n in colours.items() if r > 180 and g < 80 and b < 80)
    assert red > 50  # the failed requests and the failed expectation's rule


def test_a_report_format_it_does_not_know_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("not: read")
    assert main(["run", str(scenario), "--report", "pdf", str(tmp_path / "x.pdf")]) == 2
    assert capsys.readouterr().err == (
        f"chaosnet: error: --report pdf {tmp_path / 'x.pdf'}: unknown report format 'pdf' "
        "(use json, html, png; JUnit XML is --junit FILE)\n"
    )


def test_without_the_report_extra_the_run_is_refused_with_the_install_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(vega.metadata, "version", not_installed)
    scenario = tmp_path / "s.yaml"
    scenario.write_text("not: read")
    assert main(["run", str(scenario), "--report", "html", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err == (
        "chaosnet: error: HTML and PNG reports need the vl-convert-python package: "
        "pip install 'chaosnet[report]'\n"
    )
    assert not (tmp_path / "r.html").exists()
