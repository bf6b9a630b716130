"""A scenario run's picture: its result, read into rows, bands, marks, lines and verdicts."""

from __future__ import annotations

from collections.abc import Iterator

from chaosnet.picture.connections import connection_lines
from chaosnet.picture.faults import Change, Effect, bands
from chaosnet.picture.model import (
    Outcome,
    Picture,
    RequestMark,
    Verdict,
    proxy_row,
    server_row,
)
from chaosnet.picture.sample import downsample
from chaosnet.scenario.model import Scenario, Step
from chaosnet.scenario.result import ScenarioResult
from chaosnet.scenario.timeline import TimelineEvent
from chaosnet.scenario.units import format_duration
from chaosnet.scenario.workloads import RequestRecord

#: Server steps that take a server down, and the state they leave it in.
DOWN = {"kill": "killed", "stop": "stopped", "pause": "paused"}


def scenario_picture(result: ScenarioResult) -> Picture:
    """The picture of one scenario run (downsampled, see :mod:`chaosnet.picture.sample`)."""
    end = result.elapsed
    spec = result.spec
    picture = Picture(
        title=result.name,
        kind="scenario",
        status=result.status,
        seed=result.seed,
        backend=result.backend,
        source=str(result.path),
        replay=result.replay_command(),
        end=round(end, 6),
        error=result.error,
        facts=_facts(result),
    )
    if spec is not None:
        picture.rows = [proxy_row(p) for p in spec.proxies] + [server_row(s) for s in spec.servers]
        picture.bands, picture.moments = bands(_changes(spec, result.events), end)
    names = {address: name for name, address in result.proxy_addresses.items()}
    picture.requests = [_mark(r, names) for r in result.requests]
    if result.started_at is not None:
        for proxy, log in result.connections.items():
            picture.connections += connection_lines(proxy, log, result.started_at)
    if not result.workload_started:
        picture.notes.append("the workload did not start: see the error above")
    picture.verdicts = [
        Verdict(e.name, e.passed, e.expected, e.detail, e.failed_at) for e in result.expectations
    ]
    return downsample(picture)


def _facts(result: ScenarioResult) -> dict[str, str]:
    retries = result.retries
    return {
        "file": str(result.path),
        "backend": result.backend,
        "seed": str(result.seed),
        "faults": ", ".join(result.faults) or "none",
        "requests": f"{result.answered}/{result.planned_requests} answered, {retries} retries",
        "workload": format_duration(result.elapsed),
    }


def outcome(record: RequestRecord) -> Outcome:
    if record.failed:
        return "failed"
    return "after retries" if record.attempts > 1 else "first try"


def _mark(record: RequestRecord, names: dict[str, str]) -> RequestMark:
    endpoint = record.endpoint or ""
    if endpoint in names:
        endpoint = f"{names[endpoint]} ({endpoint})"
    error = f"{record.error}: {record.message}" if record.error else ""
    return RequestMark(
        index=record.index,
        start=round(record.started, 6),
        latency=round(max(record.latency, 0.0), 6),
        outcome=outcome(record),
        attempts=record.attempts,
        endpoint=endpoint,
        error=error,
        tries="\n".join(record.tried),
    )


def _changes(spec: Scenario, events: list[TimelineEvent]) -> Iterator[Change]:
    for name, proxy in spec.proxies.items():  # in place before the workload started
        for toxic in proxy.toxics:
            yield _toxic_change(0.0, 0.0, name, toxic.toxic_name, toxic.type, "open", "")
    for event in events:
        step = spec.timeline[event.step]
        if not event.ok:
            yield Change(
                event.time,
                event.done,
                _row(step),
                "failed",
                "instant",
                "step failed",
                f"failed: {event.description}",
                event.error or "",
            )
        else:
            yield _step_change(step, event)


def _toxic_change(
    at: float, done: float, proxy: str, name: str, kind: str, effect: Effect, detail: str
) -> Change:
    return Change(
        at,
        done,
        proxy_row(proxy),
        f"toxic {name}",
        effect,
        "toxic",
        f"{kind} {name}",
        detail,
    )


def _row(step: Step) -> str:
    action, target = step.action, step.target
    if action in ("add_toxic", "update_toxic", "remove_toxic"):
        return proxy_row(target.proxy)
    return proxy_row(target) if action in ("disable", "enable") else server_row(target)


def _step_change(step: Step, event: TimelineEvent) -> Change:
    action, target, row = step.action, step.target, _row(step)
    at, done, text = event.time, event.done, f"{event.trigger}: {event.description}"
    if action == "add_toxic":
        return _toxic_change(at, done, target.proxy, target.toxic_name, target.type, "open", text)
    if action == "remove_toxic":
        return _toxic_change(at, done, target.proxy, target.name, "", "close", text)
    if action == "update_toxic":
        return Change(at, done, row, f"toxic {target.name}", "update", "update", "updated", text)
    if action in ("disable", "enable"):
        effect: Effect = "open" if action == "disable" else "close"
        return Change(at, done, row, "disabled", effect, "disabled", "disabled", text)
    if action in DOWN:
        return Change(at, done, row, "down", "open", DOWN[action], DOWN[action], text)
    if action == "resume":
        return Change(at, done, row, "down", "close", "server", "", text)
    label = "starting" if action == "start" else "restarting"
    return Change(at, done, row, "down", "close", "restart", label, text)
