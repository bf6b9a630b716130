"""``--chaosnet-report html DIR``: a failing test writes the picture of its proxies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.picture.page import external_urls, read_page
from tests.plugin.test_scenario_collection import FAILING

#: The first page of a machine builds the Vega bundle (about 10 s alone, more on a busy
#: CI machine with every xdist worker building it at once); later ones read its cache.
pytestmark = pytest.mark.timeout(180)

FAILING_TEST = """
from chaosnet.connection import FramedClient
from chaosnet.retry import RetryPolicy


def test_passes(chaos, framed_echo_server):
    proxy = chaos.proxy(upstream=framed_echo_server.address)
    with FramedClient(proxy.address) as client:
        assert client.request(b"ping") == b"ping"


def test_gives_up_on_a_reset(chaos, framed_echo_server):
    proxy = chaos.proxy(upstream=framed_echo_server.address, name="front")
    with FramedClient(proxy.address) as client:
        assert client.request(b"ping") == b"ping"
    proxy.disable()
    proxy.enable()
    with proxy.toxic("reset_peer", timeout=0, name="cut"):
        with FramedClient(proxy.address, retry=RetryPolicy(attempts=1)) as client:
            client.request(b"ping")
"""


def test_a_failing_test_writes_its_picture_and_names_it_in_the_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(FAILING_TEST)
    result = pytester.runpytest("--chaosnet-report", "html", "pictures", "--chaosnet-seed=3")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*chaosnet report*", "picture of this test's proxies: *.html"])
    written = sorted((pytester.path / "pictures").iterdir())
    assert [p.name for p in written] == [
        "test_a_failing_test_writes_its_picture_and_names_it_in_the_report.py-"
        "test_gives_up_on_a_reset-call.html"
    ]  # the passing test wrote none
    named = re.search(r"picture of this test's proxies: (\S+)", result.stdout.str())
    assert named is not None
    assert Path(named.group(1)) == written[0].resolve()
    page, document = read_page(written[0])
    assert external_urls(page) == []
    (picture,) = document["pictures"]
    assert picture["kind"] == "test"
    assert picture["rows"] == ["proxy front"]
    bands = [(b["kind"], b["label"], b["lifted"]) for b in picture["data"]["bands"]]
    # the toxic was lifted too: its ``with`` removed it as the error passed through
    assert bands == [("disabled", "disabled", True), ("toxic", "reset_peer cut", True)]
    endings = [c["ending"] for c in picture["data"]["connections"]]
    assert endings == ["FIN", "by a toxic"]  # the first client's close, then the reset
    (verdict,) = picture["data"]["verdicts"]
    assert verdict["passed"] is False
    assert "ConnectionResetError" in verdict["detail"]
    assert verdict["failed_at"] == picture["end"]
    assert "--chaosnet-seed 3" in picture["replay"]


def test_a_bad_report_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--chaosnet-report", "pdf", "out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        "ERROR: chaosnet: option --chaosnet-report: report must be FORMAT DIR with FORMAT "
        "one of html, png, got ['pdf', 'out']"
    )


def test_a_failing_scenario_file_collected_by_pytest_writes_the_scenario_picture(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "naive.yaml").write_text(FAILING)
    result = pytester.runpytest("--chaosnet-report", "html", "pictures")
    result.assert_outcomes(failed=1)
    named = re.search(r"picture of this scenario: (\S+)", result.stdout.str())
    assert named is not None
    path = Path(named.group(1))
    assert path.parent == (pytester.path / "pictures").resolve()
    _, document = read_page(path)
    (picture,) = document["pictures"]
    assert (picture["kind"], picture["title"], picture["status"]) == (
        "scenario",
        "naive-no-retry",
        "failed",
    )
    (band,) = picture["data"]["bands"]
    assert (band["row"], band["kind"], band["lifted"]) == ("proxy front", "disabled", False)
    outcomes = [r["outcome"] for r in picture["data"]["requests"]]
    assert outcomes == ["first try"] * 3 + ["failed"] * 7  # disabled after 3 requests
