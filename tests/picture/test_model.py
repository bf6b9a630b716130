"""The picture's data without a run: fault bands from steps, and the downsampling rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_report import synthetic
from chaosnet.picture import scenario_picture, write_html
from chaosnet.picture.faults import Change, bands
from chaosnet.picture.sample import (
    BINS,
    CONNECTION_LIMIT,
    DISTURBED_LIMIT,
    FIRST_TRY_LIMIT,
    TRIES_KEPT,
)
from tests.picture.page import read_page

#: The first page of a machine builds the Vega bundle (about 10 s alone, more on a busy
#: CI machine with every xdist worker building it at once); later ones read its cache.
pytestmark = pytest.mark.timeout(180)

ROW = "proxy main"


def change(at: float, key: str, effect: str, kind: str = "toxic", done: float = 0.0) -> Change:
    return Change(at, done or at, ROW, key, effect, kind, f"{kind} {key}")  # type: ignore[arg-type]


def test_a_fault_runs_from_its_step_to_the_step_that_lifted_it() -> None:
    found, moments = bands(
        [
            change(0.1, "toxic a", "open"),
            change(0.2, "disabled", "open", "disabled"),
            change(0.25, "disabled", "open", "disabled"),  # a second disable: same band
            change(0.3, "toxic a", "update", "update"),
            change(0.4, "disabled", "close", "disabled"),
            change(0.5, "toxic a", "close"),
        ],
        end=1.0,
    )
    assert [(b.kind, b.start, b.end, b.lifted) for b in found] == [
        ("toxic", 0.1, 0.5, True),
        ("disabled", 0.2, 0.4, True),
    ]
    assert [(m.at, m.label) for m in moments] == [(0.3, "update toxic a")]


def test_a_fault_never_lifted_runs_to_the_end_and_a_slow_start_is_a_band_of_its_own() -> None:
    found, _ = bands(
        [
            change(0.1, "down", "open", "killed"),
            change(0.3, "down", "close", "restart", done=0.8),  # ready 0.5s later
            change(0.9, "toxic b", "open"),
            change(0.95, "toxic never-added", "close"),  # nothing to close: no band
        ],
        end=1.2,
    )
    assert [(b.kind, b.start, b.end, b.lifted) for b in found] == [
        ("killed", 0.1, 0.3, True),
        ("restart", 0.3, 0.8, True),
        ("toxic", 0.9, 1.2, False),
    ]


def test_ten_thousand_requests_keep_every_disturbed_one_and_bin_the_rest(tmp_path: Path) -> None:
    result = synthetic(10_000, failed_every=20, retried_every=7, reset_every=10)
    picture = scenario_picture(result)
    disturbed = [r for r in result.requests if r.failed or r.attempts > 1]
    first_try = len(result.requests) - len(disturbed)
    assert first_try > FIRST_TRY_LIMIT
    assert sorted(m.index for m in picture.requests) == sorted(r.index for r in disturbed)
    assert 0 < len(picture.bins) <= BINS
    assert sum(b.count for b in picture.bins) == first_try
    assert all(b.low <= b.median <= b.high for b in picture.bins)
    assert len(picture.connections) == CONNECTION_LIMIT  # of 3,000
    kept_resets = [c for c in picture.connections if c.ending == "by a toxic"]
    assert len(kept_resets) == 300  # every abnormal ending kept (1 in 10 of 3,000)
    assert any("drawn as" in note for note in picture.notes)
    path = write_html(tmp_path / "big.html", [picture], title="big")
    assert path.stat().st_size < 2_000_000
    _, document = read_page(path)
    (embedded,) = document["pictures"]
    assert len(embedded["data"]["requests"]) == len(disturbed)
    assert len(embedded["data"]["bins"]) == len(picture.bins)


def test_ten_thousand_failed_requests_are_thinned_evenly_within_the_size(tmp_path: Path) -> None:
    result = synthetic(10_000, failed_every=1, retried_every=1)  # every one failed
    picture = scenario_picture(result)
    indexes = [m.index for m in picture.requests]
    assert len(indexes) == DISTURBED_LIMIT
    assert indexes[0] == 0
    assert indexes[-1] == 9_999  # first and last kept, evenly between
    assert any("left out" in note for note in picture.notes)
    assert sum(1 for m in picture.requests if m.tries) == TRIES_KEPT
    path = write_html(tmp_path / "failed.html", [picture], title="failed")
    assert path.stat().st_size < 2_000_000
