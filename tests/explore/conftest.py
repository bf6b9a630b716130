"""Scenario text for the exploration tests: the bundled envelope, and a narrow one."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "scenarios" / "explore_fallback.yaml"
CLIENTS = "tests.explore.clients"

#: Two faults that break the last-resort client when they overlap: a narrow envelope
#: in which most schedules of two faults fail it, so tests find a failure quickly.
NARROW = """\
servers:
  primary: {builtin: framed_echo}
  fallback: {builtin: framed_echo}
proxies:
  primary: {server: primary}
  fallback: {server: fallback}
client:
  workload: framed
  endpoints: [primary, fallback]
  requests: 16
  rate: 80/s
  timeout: 100ms
  retry: {attempts: 10, deadline: 2s, initial: 10ms, cap: 50ms}
expect:
  all_answered: true
explore:
  faults:
    - disable: [primary]
    - toxic: reset_peer
      proxies: [fallback]
      attributes: {timeout: 0}
      max_connections: 1
  max_steps: 2
  window: 20ms
  min_outage: 150ms
  max_outage: 150ms
"""


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
