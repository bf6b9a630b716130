"""Verdicts from the wire, the watchdog and the deadline: each passing and failing, with its
message, on real runs (embedded proxy, real servers, the raw clients of counterexamples/)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from chaosnet.scenario.expectations import Observation, evaluate
from chaosnet.scenario.model import Expectations
from chaosnet.scenario.result import ExpectationResult, ScenarioResult
from chaosnet.scenario.wire import Wire, WireConnection
from chaosnet.scenario.workloads import RequestRecord
from tests.scenario.conftest import RunText
from tests.scenario.test_expectations import COUNTEREXAMPLES, FRAMED, OUTAGE, only, scenario

RESETS = "{server: echo, toxics: [{type: reset_on_accept, max_connections: 5}]}"
BLACKHOLE = "{server: echo, toxics: [{type: timeout, timeout: 0}]}"
STALL = "{server: echo, toxics: [{type: stall_accept}]}"
TRUNCATE_FIRST = (
    "{server: echo, toxics: [{type: truncate_frame, frame: 0, at: body, then: reset, "
    "max_connections: 1}]}"
)


def raw(client: str, *, requests: int = 3, timeout: str = "250ms", extra: str = "") -> str:
    """The client block of a raw client from counterexamples/raw_clients.py."""
    return (
        f"workload: raw_clients:{client}\nendpoints: main\nrequests: {requests}\n"
        f"timeout: {timeout}\n{extra}"
    )


@pytest.fixture
def raw_clients(tmp_path: Path) -> None:
    shutil.copy(COUNTEREXAMPLES / "raw_clients.py", tmp_path / "raw_clients.py")


BACKING_OFF = "retry: {attempts: 8, deadline: 3s, backoff: exponential, initial: 10ms}\n"


def reset_run(run_text: RunText, client: str, expect: str) -> ScenarioResult:
    return run_text(scenario(raw(client, extra=BACKING_OFF), expect, proxy=RESETS))


# -- connection counts as ranges ---------------------------------------------------------


def test_connection_counts_take_a_range(run_text: RunText) -> None:
    held = only(
        run_text(scenario(FRAMED, "connections: {main: {opened: {min: 1, max: 2}}}")),
        "connections",
    )
    assert held.passed, held.detail
    assert held.expected == "main: opened 1 to 2"
    wrong = only(
        run_text(scenario(FRAMED, "connections: {main: {opened: {max: 0}}}")), "connections"
    )
    assert not wrong.passed
    assert wrong.detail == "main: opened 1, expected at most 0"
    few = only(run_text(scenario(FRAMED, "connections: {main: {opened: {min: 4}}}")), "connections")
    assert few.detail == "main: opened 1, expected at least 4"


# -- attempts from the wire ----------------------------------------------------------------


@pytest.mark.usefixtures("raw_clients")
def test_attempts_are_counted_on_the_wire_when_the_client_does_not_count(
    run_text: RunText,
) -> None:
    result = reset_run(run_text, "correct_without_attempt_counts", "max_attempts: 5")
    check = only(result, "max_attempts")
    assert not check.passed  # 5 resets, then the 6th connection answers
    assert check.observed == 6
    assert check.detail.startswith("most attempts: 6 (request 0; 6 seen on the wire)")


@pytest.mark.usefixtures("raw_clients")
def test_recovery_is_judged_for_a_client_that_does_not_count_its_attempts(
    run_text: RunText,
) -> None:
    client = raw(
        "correct_without_attempt_counts",
        requests=15,
        timeout="100ms",
        extra="rate: 50/s\nretry: {attempts: 30, deadline: 2s, initial: 5ms, cap: 20ms}\n",
    )
    result = run_text(scenario(client, "recovered_within: 150ms", timeline=OUTAGE))
    check = only(result, "recovered_within")
    assert check.passed, check.detail  # refused connects are invisible: it waited the outage out


# -- reconnect rate and backoff --------------------------------------------------------------


@pytest.mark.usefixtures("raw_clients")
def test_a_tight_retry_loop_is_too_fast_and_does_not_back_off(run_text: RunText) -> None:
    result = reset_run(
        run_text,
        "tight_retry_loop",
        "max_connect_rate: 50/s\nbackoff: {floor: 30ms, grows: true}",
    )
    rate = only(result, "max_connect_rate")
    assert not rate.passed
    assert rate.expected == "at most 50 connects/s during an outage on the wire"
    assert rate.detail.startswith("main: 5 failed connections from ")
    assert rate.detail.endswith("<- too fast")
    assert rate.observed > 50
    backoff = only(result, "backoff")
    assert not backoff.passed
    assert "<- every gap under 30ms" in backoff.detail


@pytest.mark.usefixtures("raw_clients")
def test_exponential_backoff_is_seen_on_the_wire(run_text: RunText) -> None:
    result = reset_run(
        run_text, "correct", "max_connect_rate: 50/s\nbackoff: {floor: 30ms, grows: true}"
    )
    backoff = only(result, "backoff")
    assert backoff.passed, backoff.detail
    [gaps] = backoff.observed["outages"]
    assert len(gaps) == 5  # 5 resets: 5 reconnect delays, ~10, 20, 40, 80, 160 ms
    assert gaps[-1] >= 0.15  # the 160ms delay: a sleep is never shorter, only later
    assert gaps[0] < gaps[-1]
    assert only(result, "max_connect_rate").passed


def test_backoff_fails_when_no_outage_reached_the_wire(run_text: RunText) -> None:
    check = only(run_text(scenario(FRAMED, "backoff: {floor: 5ms}")), "backoff")
    assert not check.passed
    assert check.detail == (
        "no outage on the wire (no run of failed connections): the backoff was not exercised"
    )


def _failed_run(*opens: float) -> Wire:
    return Wire(
        WireConnection("main", i, t, t + 0.001, "toxic rst", 0, 0) for i, t in enumerate(opens)
    )


def _backoff_verdict(wire: Wire) -> ExpectationResult:
    expect = Expectations.model_validate({"backoff": {"floor": "5ms", "grows": True}})
    observation = Observation(requests=[], planned=0, events=[], elapsed=1.0, unfired=[], wire=wire)
    [result] = evaluate(expect, observation)
    return result


def test_constant_delays_do_not_grow() -> None:
    check = _backoff_verdict(_failed_run(0.0, 0.02, 0.04, 0.06, 0.08))
    assert not check.passed
    assert check.detail == (
        "main: 5 failed connections from 0.0ms to 80.0ms: gaps 20ms, 20ms, 20ms, 20ms"
        "  <- the gaps do not grow"
    )
    assert _backoff_verdict(_failed_run(0.0, 0.01, 0.03, 0.07, 0.15)).passed


# -- requests on the wire ---------------------------------------------------------------------


@pytest.mark.usefixtures("raw_clients")
def test_a_non_idempotent_request_sent_twice_is_seen_on_the_wire(run_text: RunText) -> None:
    extra = "payload: 256\nidempotent: false\nretry: {attempts: 3, initial: 5ms}\n"
    resent = run_text(
        scenario(raw("resends_non_idempotent", extra=extra), "max_sends: 1", proxy=TRUNCATE_FIRST)
    )
    check = only(resent, "max_sends")
    assert not check.passed
    assert check.detail == (
        "most sends of one request: 2 (from the connection log)\nrequest 0 went out 2 times"
    )
    correct = run_text(scenario(raw("correct", extra=extra), "max_sends: 1", proxy=TRUNCATE_FIRST))
    held = only(correct, "max_sends")
    assert held.passed, held.detail
    assert correct.requests[0].failed  # it may have been delivered: failed, not resent
    assert correct.requests[0].error == "MayHaveBeenDelivered"


def test_sends_count_connections_that_carried_the_request() -> None:
    def conn(cid: int, opened: float, up: int, closed_by: str = "client") -> WireConnection:
        return WireConnection("main", cid, opened, opened + 0.01, closed_by, up, 0)

    requests = [
        RequestRecord(index=0, started=0.0, ended=1.0, ok=False),
        RequestRecord(index=1, started=1.0, ended=2.0, ok=True),
    ]
    wire = Wire(
        [
            conn(1, 0.1, 10, "toxic cut"),
            conn(2, 0.5, 10),
            conn(3, 0.6, 0, "toxic rst"),
            conn(4, 1.5, 10),
        ]
    )
    assert wire.sends(requests) == {0: 2, 1: 1}  # conn 3 carried nothing
    assert wire.attempts(requests) == {0: 3, 1: 1}


# -- deadline and watchdog ---------------------------------------------------------------------

DEADLINE = "retry: {attempts: 20, deadline: 500ms, initial: 10ms, cap: 50ms}\n"


@pytest.mark.usefixtures("raw_clients")
def test_gave_up_within_catches_a_client_without_a_deadline(run_text: RunText) -> None:
    text = scenario(
        raw("no_deadline", timeout="100ms", extra=DEADLINE),
        "gave_up_within: 900ms",
        proxy=BLACKHOLE,
    )
    check = only(run_text(text), "gave_up_within")
    assert not check.passed
    assert check.detail.startswith("3 request(s) failed; the slowest gave up after ")
    assert "\nrequest 0 gave up after " in check.detail
    assert check.observed["slowest"] > 0.9


@pytest.mark.usefixtures("raw_clients")
def test_gave_up_within_holds_for_a_client_keeping_its_deadline(run_text: RunText) -> None:
    text = scenario(
        raw("correct", timeout="100ms", extra=DEADLINE), "gave_up_within: 900ms", proxy=BLACKHOLE
    )
    check = only(run_text(text), "gave_up_within")
    assert check.passed, check.detail
    assert check.observed["failed"] == 3


@pytest.mark.usefixtures("raw_clients")
def test_the_watchdog_fails_a_hung_request_at_once_with_its_stack(run_text: RunText) -> None:
    text = scenario(
        raw("no_connect_timeout", timeout="150ms", extra="retry: {attempts: 3}\n"),
        "max_request_time: 300ms\nall_answered: true",
        proxy=STALL,
    )
    started = time.monotonic()
    result = run_text(text)
    assert time.monotonic() - started < 10  # not the 60s scenario timeout
    assert result.status == "failed"  # FAILED (exit 1), not ERROR
    assert [e.name for e in result.expectations] == ["max_request_time"]
    check = result.expectations[0]
    assert check.expected == "every request finished within 300ms"
    assert check.detail.startswith(
        "request 0 was still running after 300ms; the workload thread is stuck at "
    )
    assert "raw_clients.py" in check.detail
    assert "in _one_attempt" in check.detail
    assert "socket.create_connection(endpoint, timeout=" in check.detail
    assert 0.3 <= result.elapsed < 3


def test_max_request_time_holds_and_reports_the_slowest(run_text: RunText) -> None:
    check = only(run_text(scenario(FRAMED, "max_request_time: 2s")), "max_request_time")
    assert check.passed
    assert check.detail.startswith("the slowest request took ")


# -- fails_with by base class and qualified name ------------------------------------------------


@pytest.mark.parametrize(
    "error", ["FrameError", "chaosnet.framing.FrameTooLarge", "chaosnet.framing.FrameError"]
)
def test_fails_with_matches_bases_and_qualified_names(
    run_text: RunText, tmp_path: Path, error: str
) -> None:
    shutil.copy(COUNTEREXAMPLES / "naive_clients.py", tmp_path / "naive_clients.py")
    client = (
        "workload: naive_clients:gives_up_on_permanent_errors\nendpoints: main\nrequests: 2\n"
        "timeout: 200ms\npayload: 100\noptions: {max_reply: 50}\n"
    )
    check = only(run_text(scenario(client, f"fails_with: {{error: {error}}}")), "fails_with")
    assert check.passed, check.detail
    assert (
        check.expected == f"requests fail with {error} (or a subclass) after at most 1 attempt(s)"
    )
