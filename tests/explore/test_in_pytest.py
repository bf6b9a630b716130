"""Exploration in a user's own tests: @given(schedules(...)) with run_schedule on chaos proxies."""

from __future__ import annotations

import pytest

TEST = """
import pytest
from hypothesis import HealthCheck, given, settings

from chaosnet.explore import run_schedule, schedules
from chaosnet.servers import builtin_server
from tests.explore.clients import {client}
from chaosnet.scenario.workloads import WorkloadContext
from chaosnet.retry import RetryPolicy

ENVELOPE = {{
    "faults": [
        {{"disable": ["primary"]}},
        {{"toxic": "reset_peer", "proxies": ["fallback"], "attributes": {{"timeout": 0}},
          "max_connections": 1}},
    ],
    "max_steps": 2,
    "window": "20ms",
    "min_outage": "150ms",
    "max_outage": "150ms",
}}


@pytest.fixture(scope="module")
def fallback_server():
    with builtin_server("framed_echo") as server:
        yield server


@pytest.fixture
def paths(chaos, framed_echo_server, fallback_server):
    return {{
        "primary": chaos.proxy(framed_echo_server.address, name="primary"),
        "fallback": chaos.proxy(fallback_server.address, name="fallback"),
    }}


@settings(max_examples=12, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=schedules(ENVELOPE, endpoints=["primary", "fallback"]))
def test_client_survives(chaos, paths, schedule):
    with run_schedule(schedule, chaos):
        ctx = WorkloadContext(
            scenario="t", endpoints=[paths["primary"].address, paths["fallback"].address],
            proxies={{}}, servers={{}}, retry=RetryPolicy(attempts=10, deadline=2.0, seed=1),
            seed=1, count=16, rate=80.0, payload_size=16, timeout=0.1, idempotent=True,
            max_frame_size=1 << 20, options={{}}, on_request_done=lambda r: None,
            before_request=lambda n: None,
        )
        {client}(ctx)
    failed = [r for r in ctx.records if not r.ok]
    assert not failed, failed[0].message
"""


def test_a_correct_client_passes_every_example(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TEST.format(client="persistent"))
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


@pytest.mark.timeout(120)
def test_a_compound_bug_fails_with_the_schedule_as_scenario_yaml(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TEST.format(client="last_resort"))
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "fault schedule, as a scenario timeline:" in text
    assert "disable: primary" in text
    assert "type: reset_peer" in text
    assert "primary and fallback both failed" in text
