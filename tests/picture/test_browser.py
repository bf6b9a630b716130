"""The report of a failing run, opened in a real headless Chromium (Debian's package)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import toolchain
from tests.picture.conftest import Run
from tests.picture.page import png_colours

#: The first page of a machine builds the Vega bundle (about 10 s alone, more on a busy
#: CI machine with every xdist worker building it at once); later ones read its cache.
pytestmark = pytest.mark.timeout(180)

BROWSER_TIMEOUT_S = 60
SCREEN = (1000, 700)  # the header and the first charts
# Enough virtual time for the page's scripts; no network is touched (file:// only).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000")


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        toolchain.missing("chromium is not installed (Debian: apt-get install chromium)")
        raise AssertionError("unreachable")
    return found


def browse(chromium: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={cwd / 'profile'}", *args],
        capture_output=True,
        timeout=BROWSER_TIMEOUT_S,
        cwd=cwd,
        check=True,
    )


def test_the_charts_draw_in_chromium(chromium: str, failing_run: Run) -> None:
    dom = browse(chromium, "--dump-dom", failing_run.html.as_uri(), cwd=failing_run.folder)
    text = dom.stdout.decode()
    assert re.search(r'<body[^>]*data-rendered="1"', text), "the chart did not draw"
    assert not re.search(r'id="chart-0"[^>]*>chart failed', text)  # the page's error text
    assert text.count('class="marks"') == 1  # Vega's SVG of the one chart
    assert text.count("<path") > 30  # bands, marks and lines


def test_a_screenshot_of_the_report_is_not_blank(
    chromium: str, failing_run: Run, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    width, height = SCREEN
    browse(
        chromium,
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--screenshot={shot}",
        failing_run.html.as_uri(),
        cwd=failing_run.folder,
    )
    colours = png_colours(shot.read_bytes())
    assert sum(colours.values()) == width * height
    assert len(colours) > 100  # text, bands, marks: not a blank page
    red = sum(n for (r, g, b), n in colours.items() if r > 180 and g < 80 and b < 80)
    assert red > 100  # the FAILED badge, the failed requests, the rule where it failed
