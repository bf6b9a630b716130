"""The installed plugin collects scenario files as test items (ini ``chaosnet_scenarios``)."""

from __future__ import annotations

import pytest

PASSING = """
name: echo-ok
servers:
  echo: {builtin: framed_echo}
proxies:
  front: {server: echo}
client:
  workload: framed
  endpoints: front
  requests: 5
  rate: 100/s
expect:
  all_answered: true
"""

FAILING = """
name: naive-no-retry
servers:
  echo: {builtin: framed_echo}
proxies:
  front: {server: echo}
client:
  workload: framed
  endpoints: front
  requests: 10
  rate: 100/s
  timeout: 200ms
  retry: {attempts: 1}
timeline:
  - after_requests: 3
    disable: front
expect:
  all_answered: true
"""


def test_scenario_files_are_collected_and_run(pytester: pytest.Pytester) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "ok.yaml").write_text(PASSING)
    (pytester.path / "scenarios" / "naive.yaml").write_text(FAILING)
    (pytester.path / "notes.yaml").write_text("not: a scenario\n")  # outside the glob
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*naive-no-retry*", "*all_answered*", "*timeline*"])


def test_the_glob_is_configurable(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nchaosnet_scenarios = chaos/*.yml\n")
    (pytester.path / "chaos").mkdir()
    (pytester.path / "chaos" / "ok.yml").write_text(PASSING)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "ignored.yaml").write_text(FAILING)
    pytester.runpytest().assert_outcomes(passed=1)


def test_an_invalid_scenario_is_a_collection_error_with_its_position(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "bad.yaml").write_text(PASSING.replace("requests", "requets"))
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad.yaml:10:3:*requets*did you mean*requests*"])
