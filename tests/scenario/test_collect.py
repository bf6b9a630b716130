"""Scenario files as pytest items (run through pytester, as a user's project would)."""

from __future__ import annotations

import pytest

from tests.scenario.conftest import MINIMAL

CONFTEST = """
from chaosnet.scenario import collect
from chaosnet.settings import Settings


def pytest_addoption(parser):
    collect.add_ini(parser)


def pytest_collect_file(file_path, parent):
    return collect.collect_file(file_path, parent, settings=lambda: Settings(seed=99))
"""
FAILING = MINIMAL.replace("all_answered: true", "elapsed: {under: 1us}")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.mkdir("scenarios")
    return pytester


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest(
        "-p", "no:chaosnet", "-p", "no:cacheprovider", "-p", "no:asyncio", *args
    )


def test_each_scenario_file_is_one_item(project: pytest.Pytester) -> None:
    project.path.joinpath("scenarios", "echo_ok.yaml").write_text(MINIMAL)
    project.path.joinpath("scenarios", "named.yaml").write_text("name: custom\n" + MINIMAL)
    result = run(project, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["scenarios/echo_ok.yaml::echo_ok PASSED*", "scenarios/named.yaml::custom PASSED*"]
    )


def test_a_failed_expectation_reads_like_an_assertion_with_the_timeline(
    project: pytest.Pytester,
) -> None:
    project.path.joinpath("scenarios", "slow.yaml").write_text(FAILING)
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   AssertionError: scenario slow: elapsed did not hold",
            "E     elapsed: expected workload took under 0.001ms",
            "E       workload took *",
            "timeline (seed 99, backend embedded):",
            "*0.000s  workload started",
            "*requests 0-4 answered",
            "*workload finished: 5/5 answered, 0 retries",
            "replay: chaosnet run *slow.yaml --seed 99 -k slow --backend embedded",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_an_invalid_file_is_a_collection_error_with_its_location(
    project: pytest.Pytester,
) -> None:
    project.path.joinpath("scenarios", "typo.yaml").write_text(
        MINIMAL.replace("requests: 5", "requets: 5")
    )
    result = run(project)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*scenarios/typo.yaml:8:3: client: unknown key 'requets' (did you mean 'requests'?)"]
    )
    assert "Traceback" not in result.stdout.str()


def test_the_glob_is_configurable(project: pytest.Pytester) -> None:
    project.path.joinpath("scenarios", "default.yaml").write_text(MINIMAL)
    project.mkdir("chaos")
    project.path.joinpath("chaos", "mine.yml").write_text(MINIMAL)
    project.path.joinpath("chaos", "ignored.yaml").write_text(MINIMAL)
    project.makeini("[pytest]\nchaosnet_scenarios = chaos/*.yml\n")
    result = run(project, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["chaos/mine.yml::mine PASSED*"])


def test_k_selects_scenario_items_by_name(project: pytest.Pytester) -> None:
    project.path.joinpath("scenarios", "one.yaml").write_text("name: alpha\n" + MINIMAL)
    project.path.joinpath("scenarios", "two.yaml").write_text("name: beta\n" + FAILING)
    result = run(project, "-k", "alpha")
    result.assert_outcomes(passed=1, deselected=1)


def test_other_yaml_files_are_left_alone(project: pytest.Pytester) -> None:
    project.path.joinpath("config.yaml").write_text("not: a scenario\n")
    project.path.joinpath("scenarios", "ok.yaml").write_text(MINIMAL)
    run(project).assert_outcomes(passed=1)


def test_items_share_the_sessions_control_server_when_given_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        CONFTEST.replace(
            "settings=lambda: Settings(seed=99))",
            "settings=lambda: Settings(seed=99), backend=shared)",
        )
        + """
STARTED = []


def shared():
    if not STARTED:
        from chaosnet.backends import open_backend

        backend = open_backend("embedded")
        backend.start()
        STARTED.append(backend)
    return STARTED[0]


def pytest_unconfigure(config):
    for backend in STARTED:
        print(f"stopping the shared backend {backend.url}")
        backend.stop()
"""
    )
    pytester.mkdir("scenarios")
    pytester.path.joinpath("scenarios", "a.yaml").write_text(MINIMAL)
    pytester.path.joinpath("scenarios", "b.yaml").write_text(MINIMAL)
    result = pytester.runpytest_subprocess(
        "-p", "no:chaosnet", "-p", "no:cacheprovider", "-p", "no:asyncio", "-s"
    )
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("stopping the shared backend http://127.0.0.1:") == 1
