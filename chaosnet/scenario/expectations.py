"""Check a scenario's expectations against what the run observed; report the observed values.

Each check returns an :class:`ExpectationResult` with the value seen, so a
passing run documents its margins and a failing one says by how much and
where (which request, which outage, which step).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chaosnet.control import ConnectionLogInfo
from chaosnet.delivery import DeliveryReport, check_delivery
from chaosnet.kv import WriteRecord
from chaosnet.leaks import LeakReport
from chaosnet.scenario.model import (
    Backoff,
    Bounds,
    ConnectionCounts,
    CountRange,
    Expectations,
    FailsWith,
    LatencyBound,
)
from chaosnet.scenario.result import ExpectationResult
from chaosnet.scenario.timeline import TimelineEvent
from chaosnet.scenario.units import format_duration
from chaosnet.scenario.wire import Wire
from chaosnet.scenario.workloads import RequestRecord

SHOWN = 5


@dataclass
class Observation:
    """Everything the expectations are checked against."""

    requests: list[RequestRecord]
    planned: int
    events: list[TimelineEvent]
    elapsed: float
    unfired: list[str]  # descriptions of timeline steps that never fired
    leaks: LeakReport | None = None
    writes: list[WriteRecord] | None = None
    connections: dict[str, ConnectionLogInfo] | None = None
    wire: Wire | None = None  # every proxy's connections, on the workload's clock
    #: The client cut the run short (the watchdog fired; under ``chaosnet check`` also a
    #: workload that raised): the run is judged by that alone.
    cut_short: ExpectationResult | None = None


#: Checked while the run goes (the watchdog), not from the observation afterwards.
LIVE = ("max_request_time",)


def evaluate(expect: Expectations, obs: Observation) -> list[ExpectationResult]:
    """Every expectation of the file, in the file's order, then the timeline's own check.

    A run the watchdog stopped is judged by the watchdog alone: the rest would
    only describe a run cut short.
    """
    if obs.cut_short is not None:
        return [obs.cut_short]
    results = [
        _CHECKS[name](getattr(expect, name), obs) for name in expect.chosen() if name not in LIVE
    ]
    if expect.max_request_time is not None:
        results.append(request_time_held(expect.max_request_time, obs.requests))
    if obs.unfired:
        results.append(_timeline_incomplete(obs))
    return [_when_failed(result, obs) for result in results]


def _when_failed(result: ExpectationResult, obs: Observation) -> ExpectationResult:
    """A failed check that names no moment was broken by the run as a whole: its end."""
    if result.passed:
        return replace(result, failed_at=None)
    if result.failed_at is None:
        return replace(result, failed_at=obs.elapsed)
    return result


def _first_end(records: Sequence[RequestRecord]) -> float | None:
    """When the first of these requests ended: the moment it broke an expectation."""
    return min((r.ended for r in records), default=None)


def _fmt(seconds: float) -> str:
    return format_duration(seconds)


def _describe_failure(record: RequestRecord) -> str:
    tries = f"{record.attempts} attempt{'s' if record.attempts != 1 else ''}"
    return (
        f"request {record.index} at {_fmt(record.started)}: {record.error}: {record.message} "
        f"({tries})"
    )


# -- the checks -------------------------------------------------------------------------


def _all_answered(_: object, obs: Observation) -> ExpectationResult:
    failed = [r for r in obs.requests if r.failed]
    answered = len(obs.requests) - len(failed)
    passed = not failed and len(obs.requests) == obs.planned
    lines = [_describe_failure(r) for r in failed[:SHOWN]]
    if len(failed) > SHOWN:
        lines.append(f"... and {len(failed) - SHOWN} more")
    if len(obs.requests) < obs.planned:
        lines.append(f"only {len(obs.requests)} of {obs.planned} requests were made")
    return ExpectationResult(
        "all_answered",
        passed,
        f"all {obs.planned} requests answered",
        {
            "answered": answered,
            "planned": obs.planned,
            "failed": [
                {"index": r.index, "error": r.error, "message": r.message, "attempts": r.attempts}
                for r in failed[:SHOWN]
            ],
        },
        f"{answered} of {obs.planned} answered" + "".join(f"\n{line}" for line in lines),
        failed_at=_first_end(failed),
    )


def _max_attempts(limit: int, obs: Observation) -> ExpectationResult:
    worst = max(obs.requests, key=lambda r: r.attempts, default=None)
    most = worst.attempts if worst else 0
    over = [r for r in obs.requests if r.attempts > limit]
    detail = f"most attempts: {most}"
    if worst is not None:
        seen = f"; {worst.wire_attempts} seen on the wire" if worst.wire_attempts else ""
        detail += f" (request {worst.index}{seen})"
    if over:
        detail += f"; {len(over)} request(s) over {limit}"
    return ExpectationResult(
        "max_attempts",
        not over,
        f"at most {limit} attempts per request",
        most,
        detail,
        failed_at=_first_end(over),
    )


@dataclass(frozen=True)
class Outage:
    start: float  # the first disturbed request started
    cleared: float | None  # the last recovery step during the outage
    recovered: float | None  # the first success after it ended; None: never

    @property
    def seconds(self) -> float | None:
        """From the lifting of the fault to the first success (0 if the client was faster
        than the step's own confirmation, e.g. a server's readiness check)."""
        if self.recovered is None:
            return None
        return max(0.0, self.recovered - max(self.start, self.cleared or self.start))

    def to_json(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 6),
            "cleared": None if self.cleared is None else round(self.cleared, 6),
            "recovered": None if self.recovered is None else round(self.recovered, 6),
            "seconds": None if self.seconds is None else round(self.seconds, 6),
        }


def outages(requests: Sequence[RequestRecord], events: Sequence[TimelineEvent]) -> list[Outage]:
    """Runs of disturbed requests, each up to the next success.

    A request was disturbed when it failed, took more than one attempt, or was
    under way when a step lifted a fault (it waited the fault out: refused
    connects, which no proxy sees, may be all its retries).

    The clock of a recovery starts when the last step that lifted a fault
    during the outage had taken effect (a toxic removed, a proxy enabled, a
    server back and ready), or at the outage's start when no step did (a fault
    that lifts itself).
    """
    ordered = sorted(requests, key=lambda r: r.index)
    lifts = [e.time for e in events if e.recovery]
    found: list[Outage] = []
    i = 0
    while i < len(ordered):
        first = ordered[i]
        spanned = any(first.started <= t <= first.ended for t in lifts)
        if first.ok and first.attempts <= 1 and not spanned:
            i += 1
            continue
        j = i
        while j < len(ordered) and ordered[j].failed:
            j += 1
        recovered = ordered[j].ended if j < len(ordered) else None
        until = recovered if recovered is not None else math.inf
        clears = [e.done for e in events if e.recovery and first.started <= e.time <= until]
        found.append(Outage(first.started, max(clears) if clears else None, recovered))
        i = j + 1
    return found


def _recovered_within(limit: float, obs: Observation) -> ExpectationResult:
    found = outages(obs.requests, obs.events)
    expected = f"every outage over within {_fmt(limit)} of its cause being lifted"
    if not found:
        return ExpectationResult(
            "recovered_within",
            False,
            expected,
            {"outages": []},
            "no request was disturbed: the faults never reached the client, "
            "so recovery was not exercised",
        )
    never = [o for o in found if o.recovered is None]
    worst = max(
        (o for o in found if o.seconds is not None), key=lambda o: o.seconds or 0.0, default=None
    )
    passed = not never and worst is not None and (worst.seconds or 0.0) <= limit
    lines = []
    for outage in found:
        since = (
            f"lifted at {_fmt(outage.cleared)}"
            if outage.cleared is not None
            else "no step lifted it"
        )
        if outage.recovered is None:
            lines.append(f"outage from {_fmt(outage.start)} ({since}): never recovered")
        else:
            lines.append(
                f"outage from {_fmt(outage.start)} ({since}): recovered at "
                f"{_fmt(outage.recovered)}, {_fmt(outage.seconds or 0.0)} after"
            )
    observed_value = None if never or worst is None else round(worst.seconds or 0.0, 6)
    late = [
        max(o.start, o.cleared or o.start) + limit
        for o in found
        if o.seconds is None or o.seconds > limit
    ]
    return ExpectationResult(
        "recovered_within",
        passed,
        expected,
        {"worst": observed_value, "outages": [o.to_json() for o in found]},
        "\n".join(lines),
        failed_at=min(late, default=None),
    )


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100] of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _bounds_text(bounds: Bounds) -> str:
    parts = []
    if bounds.over is not None:
        parts.append(f"over {_fmt(bounds.over)}")
    if bounds.under is not None:
        parts.append(f"under {_fmt(bounds.under)}")
    return " and ".join(parts)


def _within(value: float, bounds: Bounds) -> bool:
    return (bounds.under is None or value < bounds.under) and (
        bounds.over is None or value > bounds.over
    )


def _latency(bound: LatencyBound, obs: Observation) -> ExpectationResult:
    answered = [r.latency for r in obs.requests if r.ok]
    under = bound.under
    slow = [r for r in obs.requests if r.ok and under is not None and r.latency >= under]
    expected = f"p{bound.percentile:g} latency {_bounds_text(bound)}"
    if not answered:
        return ExpectationResult("latency", False, expected, None, "no request was answered")
    value = percentile(answered, bound.percentile)
    return ExpectationResult(
        "latency",
        _within(value, bound),
        expected,
        round(value, 6),
        f"p{bound.percentile:g} of {len(answered)} answered requests: {_fmt(value)} "
        f"(min {_fmt(min(answered))}, max {_fmt(max(answered))})",
        failed_at=_first_end(slow) if value >= (under or math.inf) else None,
    )


def _elapsed(bounds: Bounds, obs: Observation) -> ExpectationResult:
    return ExpectationResult(
        "elapsed",
        _within(obs.elapsed, bounds),
        f"workload took {_bounds_text(bounds)}",
        round(obs.elapsed, 6),
        f"workload took {_fmt(obs.elapsed)}",
    )


def delivery_report(
    requests: Sequence[RequestRecord], writes: Sequence[WriteRecord]
) -> DeliveryReport:
    """Per logical write (its key), how often the server applied it.

    Keys, not request ids: a client that resends a write under a new request
    id (a non-idempotent resend) defeats server-side dedupe, and only the key
    shows the duplicate.
    """
    keyed = [r for r in requests if r.key is not None]
    acked = [r.key for r in keyed if r.ok and r.key is not None]
    unacked = [r.key for r in keyed if r.failed and r.key is not None]
    by_key = [replace(w, request_id=w.key) for w in writes]
    return check_delivery(acked, unacked, by_key)


def _delivery(mode: str, obs: Observation) -> ExpectationResult:
    report = delivery_report(obs.requests, obs.writes or [])
    unacked = report.unacknowledged
    passed = {
        "exactly_once": report.ok and unacked == 0,
        "at_least_once": not report.lost and unacked == 0,
        "at_most_once": not report.duplicated,
    }[mode]
    detail = (
        f"{report.acknowledged} write(s) acknowledged, {unacked} not; lost "
        f"{len(report.lost)}, duplicated {len(report.duplicated)}, resent and "
        f"deduplicated {len(report.redelivered)}\n{report.render()}"
    )
    if unacked and mode != "at_most_once":
        detail += f"\n{unacked} write(s) never acknowledged"
    return ExpectationResult(
        "delivery",
        passed,
        f"every write delivered {mode.replace('_', ' ')}",
        {
            "acknowledged": report.acknowledged,
            "unacknowledged": unacked,
            "lost": list(report.lost[:SHOWN]),
            "duplicated": dict(list(report.duplicated.items())[:SHOWN]),
            "redelivered": len(report.redelivered),
        },
        detail,
    )


def _fails_with(spec: FailsWith, obs: Observation) -> ExpectationResult:
    failed = [r for r in obs.requests if r.failed]
    errors = Counter(r.error or "?" for r in failed)
    other = [r for r in failed if spec.error not in r.error_chain]
    retried = [r for r in failed if spec.error in r.error_chain and r.attempts > spec.attempts]
    passed = bool(failed) and not other and not retried
    lines = [
        f"{len(failed)} request(s) failed: "
        + (", ".join(f"{name} x{n}" for name, n in errors.items()) or "none")
    ]
    lines += [f"wrong error: {_describe_failure(r)}" for r in other[:SHOWN]]
    lines += [f"retried a permanent error: {_describe_failure(r)}" for r in retried[:SHOWN]]
    return ExpectationResult(
        "fails_with",
        passed,
        f"requests fail with {spec.error} (or a subclass) after at most {spec.attempts} attempt(s)",
        {
            "failed": len(failed),
            "errors": dict(errors),
            "max_attempts": max((r.attempts for r in failed), default=0),
        },
        "\n".join(lines),
        failed_at=_first_end(other + retried),
    )


def _no_leaks(_: object, obs: Observation) -> ExpectationResult:
    report = obs.leaks
    leaked = [] if report is None else [leak.render() for leak in report.leaks]
    return ExpectationResult(
        "no_leaks",
        not leaked,
        "no socket, thread or process left by the client",
        leaked,
        "\n".join(leaked) if leaked else "nothing leaked",
    )


def _connections(expected: dict[str, Any], obs: Observation) -> ExpectationResult:
    observed: dict[str, dict[str, int]] = {}
    wrong = []
    for proxy, counts in expected.items():
        log = (obs.connections or {}).get(proxy)
        if log is None:
            wrong.append(f"{proxy}: no connection log")
            continue
        observed[proxy] = {"opened": log.opened, "open": log.open}
        for what in ("opened", "open"):
            want = getattr(counts, what)
            if want is not None and not _count_fits(getattr(log, what), want):
                wrong.append(f"{proxy}: {what} {getattr(log, what)}, expected {_count_text(want)}")
    wanted = "; ".join(f"{proxy}: {_counts_text(c)}" for proxy, c in expected.items())
    return ExpectationResult(
        "connections",
        not wrong,
        wanted,
        observed,
        "\n".join(wrong)
        if wrong
        else "; ".join(f"{p}: opened {c['opened']}, open {c['open']}" for p, c in observed.items()),
    )


def _count_fits(value: int, want: int | CountRange) -> bool:
    if isinstance(want, int):
        return value == want
    return (want.min is None or value >= want.min) and (want.max is None or value <= want.max)


def _count_text(want: int | CountRange) -> str:
    if isinstance(want, int):
        return str(want)
    if want.min is not None and want.max is not None:
        return f"{want.min} to {want.max}"
    return f"at least {want.min}" if want.min is not None else f"at most {want.max}"


def _counts_text(counts: ConnectionCounts) -> str:
    parts = [
        f"{what} {_count_text(want)}"
        for what in ("opened", "open")
        if (want := getattr(counts, what)) is not None
    ]
    return ", ".join(parts)


# -- from the wire ------------------------------------------------------------------------


def _no_wire(name: str, expected: str) -> ExpectationResult:
    return ExpectationResult(name, False, expected, None, "no connection log to judge by")


def _max_connect_rate(limit: float, obs: Observation) -> ExpectationResult:
    expected = f"at most {limit:g} connects/s during an outage on the wire"
    if obs.wire is None:
        return _no_wire("max_connect_rate", expected)
    found = obs.wire.outages()
    if not found:
        return ExpectationResult(
            "max_connect_rate", True, expected, None, "no outage on the wire (no failed run)"
        )
    worst = max(found, key=lambda o: o.rate)
    over = [o for o in found if o.rate > limit]
    lines = [
        f"{o.describe()}: {len(o.opens) - 1} reconnects at {o.rate:.0f}/s"
        + ("  <- too fast" if o in over else "")
        for o in found[:SHOWN]
    ]
    return ExpectationResult(
        "max_connect_rate",
        not over,
        expected,
        round(worst.rate, 3),
        "\n".join(lines),
    )


def _backoff(spec: Backoff, obs: Observation) -> ExpectationResult:
    expected = f"reconnects back off: not every gap under {_fmt(spec.floor)}" + (
        ", and the gaps grow" if spec.grows else ""
    )
    if obs.wire is None:
        return _no_wire("backoff", expected)
    found = obs.wire.outages()
    if not found:
        return ExpectationResult(
            "backoff",
            False,
            expected,
            {"outages": []},
            "no outage on the wire (no run of failed connections): the backoff was not exercised",
        )
    lines, bad = [], 0
    for outage in found:
        gaps = outage.gaps
        shown = ", ".join(_fmt(g) for g in gaps[:8]) + (" ..." if len(gaps) > 8 else "")
        problems = []
        if max(gaps) < spec.floor:
            problems.append(f"every gap under {_fmt(spec.floor)}")
        if spec.grows and not _grows(gaps):
            problems.append("the gaps do not grow")
        bad += bool(problems)
        verdict = f"  <- {'; '.join(problems)}" if problems else ""
        lines.append(f"{outage.describe()}: gaps {shown}{verdict}")
    return ExpectationResult(
        "backoff",
        bad == 0,
        expected,
        {"outages": [[round(g, 6) for g in o.gaps] for o in found[:SHOWN]]},
        "\n".join(lines[:SHOWN]),
    )


def _grows(gaps: Sequence[float]) -> bool:
    """The later half of the gaps is longer on average than the earlier half."""
    if len(gaps) < 2:
        return True  # one gap cannot show a trend; the floor judges it
    half = len(gaps) // 2
    early, late = gaps[:half], gaps[len(gaps) - half :]
    return sum(late) / len(late) > sum(early) / len(early)


def _max_sends(limit: int, obs: Observation) -> ExpectationResult:
    expected = f"no request sent to the server more than {limit} time(s)"
    if obs.wire is None:
        return _no_wire("max_sends", expected)
    sends = obs.wire.sends(obs.requests)
    over = sorted((i for i, n in sends.items() if n > limit), key=lambda i: -sends[i])
    most = max(sends.values(), default=0)
    how = "message log" if obs.wire.messages is not None else "connection log"
    lines = [f"most sends of one request: {most} (from the {how})"]
    lines += [f"request {i} went out {sends[i]} times" for i in over[:SHOWN]]
    return ExpectationResult(
        "max_sends", not over, expected, {"most": most, "over": over[:SHOWN]}, "\n".join(lines)
    )


def _gave_up_within(limit: float, obs: Observation) -> ExpectationResult:
    failed = [r for r in obs.requests if r.failed]
    late = [r for r in failed if r.latency > limit]
    slowest = max((r.latency for r in failed), default=0.0)
    lines = [f"{len(failed)} request(s) failed; the slowest gave up after {_fmt(slowest)}"]
    lines += [
        f"request {r.index} gave up after {_fmt(r.latency)}: {r.error}: {r.message}"
        for r in late[:SHOWN]
    ]
    return ExpectationResult(
        "gave_up_within",
        not late,
        f"every failed request gave up within {_fmt(limit)}",
        {"failed": len(failed), "slowest": round(slowest, 6)},
        "\n".join(lines),
    )


def request_time_held(limit: float, requests: Sequence[RequestRecord]) -> ExpectationResult:
    """The watchdog did not fire: every request finished within ``limit``."""
    slowest = max((r.latency for r in requests), default=0.0)
    return ExpectationResult(
        "max_request_time",
        True,
        f"every request finished within {_fmt(limit)}",
        round(slowest, 6),
        f"the slowest request took {_fmt(slowest)}",
    )


def request_hung(limit: float, where: str, index: int | None, stack: str) -> ExpectationResult:
    """The watchdog fired: what was running, and where the workload's thread was stuck."""
    what = f"request {index}" if index is not None else "the workload (between requests)"
    return ExpectationResult(
        "max_request_time",
        False,
        f"every request finished within {_fmt(limit)}",
        {"request": index, "stack": stack},
        f"{what} was still running after {_fmt(limit)}; the workload thread is {where}:\n{stack}",
    )


def workload_crashed(error: str) -> ExpectationResult:
    """Under ``chaosnet check`` the workload is the client judged: its crash is its failure."""
    return ExpectationResult(
        "workload", False, "the client's workload runs to its end", None, error
    )


def _timeline_incomplete(obs: Observation) -> ExpectationResult:
    return ExpectationResult(
        "timeline",
        False,
        "every timeline step fired",
        {"unfired": obs.unfired},
        f"the workload ended at {_fmt(obs.elapsed)} before these steps fired:\n"
        + "\n".join(obs.unfired),
    )


_CHECKS: dict[str, Callable[[Any, Observation], ExpectationResult]] = {
    "all_answered": _all_answered,
    "max_attempts": _max_attempts,
    "recovered_within": _recovered_within,
    "latency": _latency,
    "elapsed": _elapsed,
    "delivery": _delivery,
    "fails_with": _fails_with,
    "no_leaks": _no_leaks,
    "connections": _connections,
    "max_connect_rate": _max_connect_rate,
    "backoff": _backoff,
    "max_sends": _max_sends,
    "gave_up_within": _gave_up_within,
}
