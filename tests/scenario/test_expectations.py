"""Each expectation, passing and failing, on real runs (embedded proxy, real servers)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from chaosnet.scenario.expectations import outages, percentile
from chaosnet.scenario.result import ExpectationResult, ScenarioResult
from chaosnet.scenario.timeline import TimelineEvent
from chaosnet.scenario.workloads import RequestRecord
from tests.scenario.conftest import RunText

COUNTEREXAMPLES = Path(__file__).parent / "counterexamples"


def scenario(
    client: str,
    expect: str,
    *,
    proxy: str = "{server: echo}",
    timeline: str = "",
    server: str = "{builtin: framed_echo}",
) -> str:
    """A scenario with one server ``echo`` behind one proxy ``main``."""
    text = (
        f"servers:\n  echo: {server}\nproxies:\n  main: {proxy}\n"
        f"client:\n{textwrap.indent(client, '  ')}expect:\n{textwrap.indent(expect, '  ')}\n"
    )
    if timeline:
        text += "timeline:\n" + textwrap.indent(timeline, "  ")
    return text


FRAMED = """\
workload: framed
endpoints: main
requests: 6
timeout: 200ms
"""
PACED_RETRYING = """\
workload: framed
endpoints: main
requests: 15
rate: 50/s
timeout: 100ms
retry: {attempts: 30, deadline: 2s, initial: 5ms, cap: 20ms}
"""
OUTAGE = """\
- at: 60ms
  disable: main
- at: 160ms
  enable: main
"""


def only(result: ScenarioResult, name: str) -> ExpectationResult:
    assert result.error is None, result.error
    (found,) = [e for e in result.expectations if e.name == name]
    return found


def test_all_answered_holds(run_text: RunText) -> None:
    result = run_text(scenario(FRAMED, "all_answered: true"))
    assert result.status == "passed"
    assert only(result, "all_answered").observed == {"answered": 6, "planned": 6, "failed": []}
    assert only(result, "all_answered").failed_at is None


def test_all_answered_fails_for_a_client_without_retry(run_text: RunText) -> None:
    timeline = "- after_requests: 2\n  disable: main\n"
    result = run_text(scenario(FRAMED, "all_answered: true", timeline=timeline))
    check = only(result, "all_answered")
    assert result.status == "failed"
    assert not check.passed
    assert check.observed["answered"] == 2
    assert check.detail.splitlines()[0] == "2 of 6 answered"
    assert "request 2 at" in check.detail
    assert "ConnectionRefusedError" in check.detail  # the cause, under the give-up
    (first_failure,) = [r for r in result.requests if r.index == 2]
    assert check.failed_at == first_failure.ended  # broken when request 2 gave up


def test_max_attempts_holds_and_fails(run_text: RunText) -> None:
    proxy = "{server: echo, toxics: [{type: limit_data, bytes: 150}]}"
    client = FRAMED + "retry: {attempts: 3, initial: 1ms}\n"
    passing = run_text(scenario(client, "max_attempts: 2", proxy=proxy))
    assert passing.status == "passed"
    assert only(passing, "max_attempts").observed == 2  # every 3rd reply is cut: one retry
    failing = run_text(scenario(client, "max_attempts: 1", proxy=proxy))
    check = only(failing, "max_attempts")
    assert not check.passed
    assert check.detail.startswith("most attempts: 2 (request 2; 2 seen on the wire); ")
    assert check.failed_at == min(r.ended for r in failing.requests if r.attempts > 1)


def test_recovered_within_holds_after_an_outage(run_text: RunText) -> None:
    result = run_text(scenario(PACED_RETRYING, "recovered_within: 150ms", timeline=OUTAGE))
    check = only(result, "recovered_within")
    assert check.passed, check.detail
    (outage,) = check.observed["outages"]
    assert outage["cleared"] == pytest.approx(0.16, abs=0.05)  # measured from the enable
    assert 0 <= check.observed["worst"] <= 0.15


def test_recovered_within_fails_when_recovery_is_slow(run_text: RunText) -> None:
    slow_client = PACED_RETRYING.replace(
        "initial: 5ms, cap: 20ms", "backoff: constant, initial: 120ms"
    )
    result = run_text(scenario(slow_client, "recovered_within: 10ms", timeline=OUTAGE))
    check = only(result, "recovered_within")
    assert not check.passed
    assert "recovered at" in check.detail
    (outage,) = check.observed["outages"]
    assert check.failed_at == pytest.approx(outage["cleared"] + 0.010, abs=1e-5)


def test_recovered_within_fails_when_no_fault_reached_the_client(run_text: RunText) -> None:
    result = run_text(scenario(FRAMED, "recovered_within: 1s"))
    check = only(result, "recovered_within")
    assert not check.passed
    assert check.detail == (
        "no request was disturbed: the faults never reached the client, so recovery was not "
        "exercised"
    )


def test_latency_percentile_bounds(run_text: RunText) -> None:
    proxy = "{server: echo, toxics: [{type: latency, latency: 40ms}]}"
    passing = run_text(scenario(FRAMED, "latency: {percentile: 50, over: 35ms}", proxy=proxy))
    assert only(passing, "latency").passed
    assert only(passing, "latency").observed >= 0.035
    failing = run_text(scenario(FRAMED, "latency: {percentile: 99, under: 20ms}", proxy=proxy))
    check = only(failing, "latency")
    assert not check.passed
    assert check.detail.startswith("p99 of 6 answered requests: ")
    assert check.failed_at == min(r.ended for r in failing.requests)  # each is over 20ms


def test_elapsed_bounds(run_text: RunText) -> None:
    paced = FRAMED + "rate: 50/s\n"  # 6 requests: the last starts at 100ms
    assert only(run_text(scenario(paced, "elapsed: {over: 90ms, under: 5s}")), "elapsed").passed
    check = only(run_text(scenario(paced, "elapsed: {under: 50ms}")), "elapsed")
    assert not check.passed
    assert check.observed >= 0.09
    assert check.failed_at == pytest.approx(check.observed, abs=1e-6)  # judged at the end


KV = """\
workload: kv
endpoints: main
requests: 12
rate: 60/s
timeout: 60ms
retry: {attempts: 20, deadline: 2s, initial: 5ms, cap: 20ms}
"""
LOST_ACKS = """\
- at: 30ms
  add_toxic: {proxy: main, type: timeout, name: lost-acks, timeout: 0}
- at: 130ms
  remove_toxic: {proxy: main, name: lost-acks}
"""


def test_delivery_exactly_once_with_a_deduplicating_server(run_text: RunText) -> None:
    result = run_text(
        scenario(
            KV, "delivery: exactly_once", server="{builtin: kv, dedupe: true}", timeline=LOST_ACKS
        )
    )
    check = only(result, "delivery")
    assert check.passed, check.detail
    assert check.observed["acknowledged"] == 12
    assert check.observed["redelivered"] >= 1  # the lost acknowledgements made resends


def test_delivery_catches_duplicates_without_dedupe(run_text: RunText) -> None:
    text = scenario(KV, "delivery: exactly_once", server="{builtin: kv}", timeline=LOST_ACKS)
    check = only(run_text(text), "delivery")
    assert not check.passed
    assert check.observed["duplicated"]
    assert "DUPLICATED" in check.detail
    at_least_once = text.replace("delivery: exactly_once", "delivery: at_least_once")
    assert only(run_text(at_least_once), "delivery").passed  # duplicates are allowed there
    at_most_once = text.replace("delivery: exactly_once", "delivery: at_most_once")
    assert not only(run_text(at_most_once), "delivery").passed


def callable_scenario(tmp_path: Path, workload: str, expect: str, **client: str) -> str:
    shutil.copy(COUNTEREXAMPLES / "naive_clients.py", tmp_path / "naive_clients.py")
    extra = "".join(f"{key}: {value}\n" for key, value in client.items())
    body = f"workload: naive_clients:{workload}\nendpoints: main\nrequests: 3\ntimeout: 200ms\n"
    return scenario(body + extra, expect)


def test_fails_with_holds_when_a_permanent_error_is_not_retried(
    run_text: RunText, tmp_path: Path
) -> None:
    text = callable_scenario(
        tmp_path,
        "gives_up_on_permanent_errors",
        "fails_with: {error: FrameTooLarge}",
        payload="100",
        options="{max_reply: 50}",
    )
    check = only(run_text(text), "fails_with")
    assert check.passed, check.detail
    assert check.observed == {"failed": 3, "errors": {"FrameTooLarge": 3}, "max_attempts": 1}


def test_fails_with_catches_a_client_that_retries_a_permanent_error(
    run_text: RunText, tmp_path: Path
) -> None:
    text = callable_scenario(
        tmp_path,
        "retries_everything",
        "fails_with: {error: FrameTooLarge, attempts: 1}",
        payload="100",
        options="{max_reply: 50}",
    )
    check = only(run_text(text), "fails_with")
    assert not check.passed
    assert check.observed["max_attempts"] == 3
    assert "retried a permanent error: request 0" in check.detail


def test_fails_with_fails_when_nothing_failed(run_text: RunText) -> None:
    check = only(run_text(scenario(FRAMED, "fails_with: {error: FrameTooLarge}")), "fails_with")
    assert not check.passed
    assert check.detail == "0 request(s) failed: none"


def test_no_leaks_holds_for_the_builtin_clients(run_text: RunText) -> None:
    result = run_text(scenario(PACED_RETRYING, "no_leaks: true", timeline=OUTAGE))
    assert only(result, "no_leaks").passed, only(result, "no_leaks").detail


def test_no_leaks_catches_a_socket_left_open(run_text: RunText, tmp_path: Path) -> None:
    result = run_text(callable_scenario(tmp_path, "leaks_a_socket", "no_leaks: true"))
    check = only(result, "no_leaks")
    assert not check.passed
    assert "socket fd" in check.detail
    assert "naive_clients.py" in check.detail  # where the leaked socket was created


def test_connections_counts_from_the_connection_log(run_text: RunText) -> None:
    proxy = "{server: echo, toxics: [{type: reset_peer, timeout: 0, max_connections: 2}]}"
    client = FRAMED + "retry: {attempts: 5, initial: 1ms}\n"
    passing = run_text(scenario(client, "connections: {main: {opened: 3, open: 0}}", proxy=proxy))
    assert only(passing, "connections").observed == {"main": {"opened": 3, "open": 0}}
    failing = run_text(scenario(client, "connections: {main: {opened: 1}}", proxy=proxy))
    assert only(failing, "connections").detail == "main: opened 3, expected 1"


def test_a_step_that_never_fired_fails_the_run(run_text: RunText, tmp_path: Path) -> None:
    shutil.copy(COUNTEREXAMPLES / "naive_clients.py", tmp_path / "naive_clients.py")
    text = scenario(
        "workload: naive_clients:ignores_the_schedule\nendpoints: main\nrequests: 3\n",
        "max_attempts: 5",
        timeline="- after_requests: 1\n  disable: main\n",
    )
    result = run_text(text)
    check = only(result, "timeline")
    assert not check.passed
    assert check.observed == {"unfired": ["step 0: disable proxy main"]}


# -- the arithmetic, on records made by hand --------------------------------------------


def record(
    index: int, start: float, end: float, *, ok: bool = True, attempts: int = 1
) -> RequestRecord:
    return RequestRecord(index=index, started=start, ended=end, ok=ok, attempts=attempts)


def event(time: float, action: str) -> TimelineEvent:
    return TimelineEvent(time, 0, f"at {time}", action, action)


def test_an_outage_is_measured_from_the_step_that_lifted_it() -> None:
    requests = [
        record(0, 0.0, 0.01),
        record(1, 0.1, 0.5, ok=False, attempts=5),
        record(2, 0.6, 0.75, attempts=3),
        record(3, 0.8, 0.81),
    ]
    (outage,) = outages(requests, [event(0.05, "disable"), event(0.7, "enable")])
    assert (outage.start, outage.cleared, outage.recovered) == (0.1, 0.7, 0.75)
    assert outage.seconds == pytest.approx(0.05)


def test_an_outage_without_a_lifting_step_counts_from_its_start() -> None:
    (outage,) = outages([record(0, 0.2, 0.5, attempts=2)], [])
    assert outage.seconds == pytest.approx(0.3)


def test_an_outage_at_the_end_never_recovered() -> None:
    (outage,) = outages([record(0, 0.0, 0.1), record(1, 0.2, 0.3, ok=False)], [])
    assert outage.recovered is None
    assert outage.seconds is None


def test_percentile_is_nearest_rank() -> None:
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert percentile(values, 50) == 0.5
    assert percentile(values, 99) == 1.0
    assert percentile([0.3], 1) == 0.3


def test_a_client_faster_than_the_steps_confirmation_recovered_at_once() -> None:
    slow_start = TimelineEvent(0.3, 1, "at 300ms", "start", "start server echo", duration=0.2)
    (outage,) = outages([record(0, 0.1, 0.45, attempts=4)], [slow_start])
    assert outage.cleared == pytest.approx(0.5)  # the server's readiness was seen at 500ms
    assert outage.seconds == 0.0  # but the client had got through at 450ms
