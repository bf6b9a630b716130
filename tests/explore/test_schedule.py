"""Schedules: the envelope's rules hold for every generated schedule, and steps are exact."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaosnet.explore import Fault, Schedule, schedules
from chaosnet.explore.schedule import fit
from chaosnet.scenario.envelope import Envelope
from chaosnet.scenario.model import Step

ENDPOINTS = frozenset({"primary", "fallback"})
PATHS = {
    "primary": frozenset({"primary"}),
    "fallback": frozenset({"fallback"}),
    "db": frozenset({"primary"}),
}


def fault(kind: str, target: str, start: int, duration: int, **extra: Any) -> Fault:
    return Fault(kind=kind, target=target, start=start, duration=duration, **extra)


def test_no_more_faults_at_once_than_max_active() -> None:
    faults = [
        fault("toxic", "primary", 0, 100, toxic="latency"),
        fault("disable", "fallback", 50, 100),
    ]
    kept = fit(faults, max_active=1, paths=None, endpoints=ENDPOINTS)
    assert [f.target for f in kept] == ["primary"]
    kept = fit(faults, max_active=2, paths=None, endpoints=ENDPOINTS)
    assert len(kept) == 2


def test_two_whole_faults_on_one_target_never_overlap() -> None:
    # The enable of the first would end the second disable early.
    faults = [fault("disable", "primary", 0, 100), fault("disable", "primary", 50, 100)]
    assert len(fit(faults, max_active=5, paths=None, endpoints=ENDPOINTS)) == 1
    later = [fault("disable", "primary", 0, 100), fault("disable", "primary", 101, 10)]
    assert len(fit(later, max_active=5, paths=None, endpoints=ENDPOINTS)) == 2


def test_two_toxics_on_one_proxy_may_overlap() -> None:
    faults = [
        fault("toxic", "primary", 0, 100, toxic="latency"),
        fault("toxic", "primary", 10, 100, toxic="reset_peer"),
    ]
    assert len(fit(faults, max_active=5, paths=None, endpoints=ENDPOINTS)) == 2


def test_one_path_stays_up() -> None:
    faults = [fault("disable", "primary", 0, 100), fault("disable", "fallback", 50, 100)]
    assert len(fit(faults, max_active=2, paths=PATHS, endpoints=ENDPOINTS)) == 1
    # A server behind the primary counts as the primary's path.
    faults = [fault("kill", "db", 0, 100), fault("disable", "fallback", 50, 100)]
    assert len(fit(faults, max_active=2, paths=PATHS, endpoints=ENDPOINTS)) == 1
    # A fault that is not an outage (a reset of the first connection) leaves the path up.
    faults = [
        fault("disable", "primary", 0, 100),
        fault("toxic", "fallback", 50, 100, toxic="reset_peer", outage=False),
    ]
    assert len(fit(faults, max_active=2, paths=PATHS, endpoints=ENDPOINTS)) == 2


def test_steps_of_each_kind() -> None:
    schedule = Schedule(
        (
            fault(
                "toxic",
                "fallback",
                5,
                20,
                toxic="reset_peer",
                stream="upstream",
                attributes={"timeout": 0},
                fields={"max_connections": 1},
            ),
            fault("disable", "primary", 10, 30),
            fault("pause", "db", 15, 5),
            fault("restart", "db", 50, 0),
        )
    )
    assert schedule.steps() == [
        {
            "at": "5ms",
            "add_toxic": {
                "proxy": "fallback",
                "type": "reset_peer",
                "name": "explore1_reset_peer",
                "stream": "upstream",
                "timeout": 0,
                "max_connections": 1,
            },
        },
        {"at": "10ms", "disable": "primary"},
        {"at": "15ms", "pause": "db"},
        {"at": "20ms", "resume": "db"},
        {"at": "25ms", "remove_toxic": {"proxy": "fallback", "name": "explore1_reset_peer"}},
        {"at": "40ms", "enable": "primary"},
        {"at": "50ms", "restart": "db"},
    ]
    for step in schedule.steps():
        Step.model_validate(step)  # every step is one a scenario file may hold
    assert "timeline:" in schedule.to_yaml()
    assert schedule.kinds() == ["reset_peer", "disable", "pause", "restart"]


ENVELOPES = st.fixed_dictionaries(
    {
        "faults": st.just(
            [
                {"disable": ["primary", "fallback"]},
                {"kill": ["db"]},
                {"restart": ["db"]},
                {
                    "toxic": "latency",
                    "proxies": ["primary", "fallback"],
                    "streams": ["upstream", "downstream"],
                    "attributes": {"latency": {"min": "10ms", "max": "1s"}, "jitter": [0, 5]},
                },
                {
                    "toxic": "reset_peer",
                    "proxies": ["fallback"],
                    "attributes": {"timeout": 0},
                    "max_connections": {"min": 1, "max": 3},
                },
            ]
        ),
        "max_steps": st.integers(1, 6),
        "max_active": st.integers(1, 3),
        "window": st.integers(1, 2000).map(lambda ms: f"{ms}ms"),
        "min_outage": st.integers(0, 50).map(lambda ms: f"{ms}ms"),
        "max_outage": st.integers(50, 500).map(lambda ms: f"{ms}ms"),
    }
).flatmap(
    lambda env: st.tuples(
        st.just(Envelope.model_validate(env)), schedules(env, endpoints=ENDPOINTS, paths=PATHS)
    )
)


@settings(max_examples=100, deadline=None)
@given(ENVELOPES)
def test_every_generated_schedule_keeps_the_envelope(drawn: tuple[Envelope, Schedule]) -> None:
    env, schedule = drawn
    assert 1 <= len(schedule) <= env.max_steps
    window = round(env.window * 1000)
    shortest, longest = round(env.min_outage * 1000), round(env.max_outage * 1000)
    for f in schedule:
        assert 0 <= f.start <= window
        assert f.duration == 0 if f.kind == "restart" else shortest <= f.duration <= longest
        if f.toxic == "latency":
            assert 10 <= f.attributes["latency"] <= 1000
            assert f.attributes["jitter"] in (0, 5)
        if f.toxic == "reset_peer":
            assert 1 <= f.fields["max_connections"] <= 3
            assert not f.outage
    for f in schedule:  # at every fault's start, the faults on then
        on = [g for g in schedule if g.start <= f.start <= g.end]
        assert len(on) <= env.max_active
        down = set().union(*(PATHS[g.target] for g in on if g.outage))
        assert ENDPOINTS - down, f"every path down at {f.start}ms: {schedule.describe()}"
    for step in schedule.steps():
        Step.model_validate(step)


def test_a_schedule_of_no_fault_describes_itself() -> None:
    assert Schedule(()).describe() == "no fault"


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        ({"faults": []}, "at least 1 item"),
        ({"faults": [{"disable": ["a"], "kill": ["b"]}]}, "exactly one of"),
        ({"faults": [{"toxic": "latency"}]}, "needs proxies"),
        ({"faults": [{"disable": ["a"], "attributes": {"x": 1}}]}, "only a toxic fault"),
        (
            {"faults": [{"disable": ["a"]}], "min_outage": "2s", "max_outage": "1s"},
            "above max_outage",
        ),
        (
            {
                "faults": [
                    {
                        "toxic": "reset_peer",
                        "proxies": ["a"],
                        "max_connections": {"min": 3, "max": 1},
                    }
                ]
            },
            "above max",
        ),
    ],
)
def test_malformed_envelopes_are_refused_with_the_reason(
    envelope: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Envelope.model_validate(envelope)
