"""Every kind of bad input is reported as ``file:line:col: message`` before anything starts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chaosnet.scenario.loader import ScenarioInvalid, load_file, load_paths
from tests.scenario.conftest import MINIMAL, WriteScenario, problems_of


def with_client(**changes: str) -> str:
    """MINIMAL with client lines replaced or added (``key: value`` text)."""
    lines = MINIMAL.splitlines()
    start = lines.index("client:")
    end = lines.index("expect:")
    client = {ln.split(":", 1)[0].strip(): ln for ln in lines[start + 1 : end]}
    for key, value in changes.items():
        client[key] = f"  {key}: {value}"
    return "\n".join([*lines[: start + 1], *client.values(), *lines[end:]]) + "\n"


def test_the_minimal_scenario_is_valid(write_scenario: WriteScenario) -> None:
    scenario, problems = load_file(write_scenario(MINIMAL))
    assert problems == []
    assert scenario is not None
    assert scenario.name == "scenario"  # the file name without .yaml


def test_a_yaml_syntax_error_points_at_the_problem(write_scenario: WriteScenario) -> None:
    path = write_scenario("proxies:\n  main: {server: echo\nclient: x\n")
    assert problems_of(path) == [
        "3:7: YAML syntax error: expected ',' or '}', but got ':' (while parsing a flow mapping)"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "1:1: a scenario is a mapping, got an empty file"),
        ("- a\n- b\n", "1:1: a scenario is a mapping, got list"),
        (
            "a: 1\n---\nb: 2\n",
            "2:1: YAML syntax error: expected a single document in the "
            "stream, but found another document",
        ),
    ],
)
def test_a_file_must_hold_one_mapping(
    write_scenario: WriteScenario, text: str, problem: str
) -> None:
    assert problems_of(write_scenario(text)) == [problem]


def test_an_unknown_key_suggests_the_right_one(write_scenario: WriteScenario) -> None:
    path = write_scenario(MINIMAL.replace("  timeout: 500ms", "  timeot: 500ms"))
    assert problems_of(path) == ["9:3: client: unknown key 'timeot' (did you mean 'timeout'?)"]


def test_an_unknown_key_with_no_close_match_lists_the_keys(write_scenario: WriteScenario) -> None:
    path = write_scenario(MINIMAL + "colour: blue\n")
    assert problems_of(path) == [
        "12:1: unknown key 'colour' (expected one of: name, description, timeout, servers, "
        "proxies, client, timeline, expect, explore)"
    ]


def test_a_misspelt_required_key_is_reported_once(write_scenario: WriteScenario) -> None:
    path = write_scenario(MINIMAL.replace("  workload: framed", "  workloda: framed"))
    assert problems_of(path) == ["6:3: client: unknown key 'workloda' (did you mean 'workload'?)"]


def test_a_missing_key_points_at_its_mapping(write_scenario: WriteScenario) -> None:
    path = write_scenario(MINIMAL.replace("  endpoints: main\n", ""))
    assert problems_of(path) == ["6:3: client: missing required key 'endpoints'"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"requests": "many"}, "8:13: client.requests: expected an integer, got 'many'"),
        ({"requests": "0"}, "8:13: client.requests: must be >= 1, got 0"),
        ({"idempotent": "'yes'"}, "10:15: client.idempotent: expected true or false, got 'yes'"),
        (
            {"timeout": "fast"},
            "9:12: client.timeout: a duration is a number of seconds or a "
            "string like '250ms', got 'fast'",
        ),
        (
            {"rate": "50/h"},
            "10:9: client.rate: unknown rate unit '/h' in '50/h' (use /s, /ms or /min)",
        ),
        ({"endpoints": "[]"}, "7:14: client.endpoints: must not be empty"),
        (
            {"endpoints": "'my proxy'"},
            "7:14: client.endpoints[0]: 'my proxy' is not a valid "
            "name: use letters, digits, '_', '.' and '-', starting with a letter or '_'",
        ),
    ],
)
def test_a_wrong_type_or_value_names_the_field(
    write_scenario: WriteScenario, change: dict[str, str], problem: str
) -> None:
    assert problems_of(write_scenario(with_client(**change))) == [problem]


def test_an_unknown_toxic_type_suggests_the_right_one(write_scenario: WriteScenario) -> None:
    text = MINIMAL.replace(
        "  main: {server: echo}", "  main:\n    server: echo\n    toxics:\n      - type: latncy"
    )
    assert problems_of(write_scenario(text)) == [
        "7:15: proxies.main.toxics[0].type: unknown toxic type 'latncy' (did you mean 'latency'?)"
    ]


def test_toxic_attributes_are_checked_per_type(write_scenario: WriteScenario) -> None:
    text = MINIMAL.replace(
        "  main: {server: echo}",
        "  main:\n    server: echo\n    toxics:\n"
        "      - {type: latency, latency: 100, rate: 5}\n"
        "      - {type: truncate_frame, at: middle, then: explode}\n"
        "      - {type: slicer, average_size: 8, delay: soon}",
    )
    assert problems_of(write_scenario(text)) == [
        "7:39: proxies.main.toxics[0]: unknown key 'rate' (expected one of: type, name, stream, "
        "toxicity, skip_connections, max_connections, seed, skip_messages, max_messages, "
        "message_scope, latency, jitter)",
        "8:36: proxies.main.toxics[1].at: must be 'header' or 'body', got 'middle'; "
        "or expected an integer, got 'middle'",
        "8:50: proxies.main.toxics[1].then: must be 'close', 'reset' or 'hang', got 'explode'",
        "9:48: proxies.main.toxics[2].delay: a duration is a number of seconds or a string "
        "like '250ms', got 'soon'",
    ]


def test_an_update_step_checks_attributes_against_the_toxics_type(
    write_scenario: WriteScenario,
) -> None:
    text = MINIMAL.replace(
        "  main: {server: echo}",
        "  main:\n    server: echo\n    toxics:\n      - {type: latency, latency: 10}",
    ) + textwrap.dedent("""\
        timeline:
          - after_requests: 1
            update_toxic: {proxy: main, name: latency_downstream, latncy: 20}
          - after_requests: 2
            update_toxic: {proxy: main, name: latency_downstream, jitter: -3}
        """)
    assert problems_of(write_scenario(text)) == [
        "17:59: timeline[0].update_toxic: unknown attribute 'latncy' for a latency toxic "
        "(did you mean 'latency'?) (its attributes: latency, jitter)",
        "19:67: timeline[1].update_toxic.jitter: cannot be negative, got -3",
    ]


def test_references_to_unknown_servers_proxies_and_toxics(write_scenario: WriteScenario) -> None:
    text = textwrap.dedent("""\
        servers:
          echo: {builtin: framed_echo}
        proxies:
          main: {server: eho}
        client:
          workload: framed
          endpoints: [main, backup]
          requests: 5
        timeline:
          - after_requests: 1
            kill: ech
          - after_requests: 2
            disable: mian
          - after_requests: 3
            remove_toxic: {proxy: main, name: nothing}
        expect:
          all_answered: true
        """)
    assert problems_of(write_scenario(text)) == [
        "4:18: proxies.main.server: unknown server 'eho' (did you mean 'echo'?)",
        "7:21: client.endpoints[1]: unknown proxy 'backup' (known: main)",
        "11:11: timeline[0].kill: unknown server 'ech' (did you mean 'echo'?)",
        "13:14: timeline[1].disable: unknown proxy 'mian' (did you mean 'main'?)",
        "15:39: timeline[2].remove_toxic.name: proxy main has no toxic 'nothing'",
    ]


def test_a_workload_must_fit_its_server(write_scenario: WriteScenario) -> None:
    path = write_scenario(with_client(workload="kv"))
    assert problems_of(path) == [
        "7:14: client.endpoints[0]: the kv workload talks to a kv server, but proxy main "
        "leads to a framed_echo server"
    ]


@pytest.mark.parametrize(
    ("workload", "problem"),
    [
        (
            "framd",
            "client.workload: unknown workload 'framd' (did you mean 'framed'?): use "
            "framed, kv, stream, datagram, http, or a callable as package.module:function",
        ),
        (
            "no_such_module_x:run",
            "client.workload: cannot import 'no_such_module_x': No module named 'no_such_module_x'",
        ),
        (
            "naive_clients:no_retyr",
            "client.workload: 'naive_clients' has no attribute "
            "'no_retyr' (did you mean 'no_retry'?)",
        ),
        (
            "naive_clients:DEFAULT_PAYLOAD",
            "client.workload: naive_clients:DEFAULT_PAYLOAD is not a function, it is a bytes",
        ),
        (
            "broken_module:run",
            "client.workload: importing 'broken_module' failed: "
            "ZeroDivisionError: division by zero",
        ),
    ],
)
def test_an_unknown_workload_or_unimportable_callable(
    write_scenario: WriteScenario, workload: str, problem: str, tmp_path: Path
) -> None:
    (tmp_path / "naive_clients.py").write_text(
        (Path(__file__).parent / "counterexamples" / "naive_clients.py").read_text()
    )
    (tmp_path / "broken_module.py").write_text("RATIO = 1 / 0\n")
    assert problems_of(write_scenario(with_client(workload=workload))) == [f"6:13: {problem}"]


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ("at: -1s", "timeline[0].at: a duration cannot be negative, got '-1s'"),
        (
            "at: 2s",
            "timeline[0].at: step at 2s is after the run ends: 5 requests at 10/s "
            "start their last request at 400ms",
        ),
        (
            "after_requests: 5",
            "timeline[0].after_requests: after_requests 5 is beyond the run: "
            "client.requests is 5, so a step can come after at most 4 "
            "requests",
        ),
    ],
)
def test_impossible_timelines(write_scenario: WriteScenario, step: str, problem: str) -> None:
    text = with_client(rate="10/s") + f"timeline:\n  - {step}\n    disable: main\n"
    assert problems_of(write_scenario(text)) == [f"14:{5 + len(step.split(':')[0]) + 2}: {problem}"]


def test_a_step_at_a_time_needs_a_paced_workload(write_scenario: WriteScenario) -> None:
    text = MINIMAL + "timeline:\n  - at: 100ms\n    disable: main\n"
    assert problems_of(write_scenario(text)) == [
        "13:9: timeline[0].at: a step at a time needs client.rate, so the run has a known "
        "length (or use after_requests)"
    ]


def test_a_step_needs_one_trigger_and_one_action(write_scenario: WriteScenario) -> None:
    text = (
        MINIMAL + "timeline:\n  - after_requests: 1\n  - at: 1s\n    after_requests: 1\n"
        "    disable: main\n"
    )
    assert problems_of(write_scenario(text)) == [
        "13:5: timeline[0]: a step needs exactly one action: add_toxic, update_toxic, "
        "remove_toxic, disable, enable, kill, stop, start, restart, pause, resume",
        "14:5: timeline[1]: a step needs exactly one of at or after_requests",
    ]


def test_a_scenario_must_expect_something(write_scenario: WriteScenario) -> None:
    path = write_scenario(
        MINIMAL.replace("  all_answered: true", "  {}").replace("expect:\n  {}", "expect: {}")
    )
    assert problems_of(path) == [
        "10:9: expect: expect needs at least one expectation; a scenario must check"
    ]


def test_duplicate_keys_are_an_error(write_scenario: WriteScenario) -> None:
    path = write_scenario(MINIMAL.replace("  requests: 5\n", "  requests: 5\n  requests: 6\n"))
    assert problems_of(path) == ["9:3: duplicate key 'requests' (first at line 8)"]


def test_several_problems_in_one_file_are_all_reported(write_scenario: WriteScenario) -> None:
    path = write_scenario(with_client(requests="-1", timeout="never", payload="a lot"))
    assert problems_of(path) == [
        "8:13: client.requests: must be >= 1, got -1",
        "9:12: client.timeout: a duration is a number of seconds or a string like '250ms', "
        "got 'never'",
        "10:12: client.payload: a size is a number of bytes or a string like '64KiB', got 'a lot'",
    ]


def test_problems_of_every_file_are_reported_together(write_scenario: WriteScenario) -> None:
    good = write_scenario(MINIMAL, "good.yaml")
    bad1 = write_scenario(MINIMAL.replace("framed_echo", "ecko"), "bad1.yaml")
    bad2 = write_scenario(MINIMAL.replace("requests: 5", "requests: x"), "bad2.yaml")
    with pytest.raises(ScenarioInvalid) as caught:
        load_paths([good.parent])
    assert str(caught.value).splitlines() == [
        f"{bad1}:2:19: servers.echo.builtin: must be 'echo', 'framed_echo', 'kv', 'udp_echo' "
        "or 'http', "
        "got 'ecko' (did you mean 'echo'?)",
        f"{bad2}:8:13: client.requests: expected an integer, got 'x'",
    ]


def test_two_files_may_not_share_a_scenario_name(write_scenario: WriteScenario) -> None:
    first = write_scenario("name: same\n" + MINIMAL, "a.yaml")
    second = write_scenario("name: same\n" + MINIMAL, "b.yaml")
    with pytest.raises(ScenarioInvalid) as caught:
        load_paths([first, second])
    assert str(caught.value) == (
        f"{second}:1:7: scenario name 'same' is also used by {first}; names must be unique in a run"
    )


def test_a_backend_without_an_extension_refuses_it_by_name(write_scenario: WriteScenario) -> None:
    text = MINIMAL.replace(
        "  main: {server: echo}",
        "  main:\n    server: echo\n    toxics:\n"
        "      - {type: truncate_frame}\n      - {type: latency, latency: 5, max_connections: 1}",
    )
    path = write_scenario(text)
    with pytest.raises(ScenarioInvalid) as caught:
        load_paths([path], backend_extensions=frozenset(), backend="toxiproxy")
    assert str(caught.value).splitlines() == [
        f"{path}:7:16: proxies.main.toxics[0].type: not supported by backend toxiproxy: "
        "truncate_frame",
        f"{path}:8:37: proxies.main.toxics[1].max_connections: not supported by backend "
        "toxiproxy: max_connections",
    ]


def test_missing_paths_and_empty_folders_are_usage_errors(tmp_path: Path) -> None:
    from chaosnet.errors import ChaosnetError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ChaosnetError) as caught:
        load_paths([tmp_path / "nope.yaml", tmp_path / "empty"])
    assert str(caught.value).splitlines() == [
        f"{tmp_path / 'nope.yaml'}: no such file or folder",
        f"{tmp_path / 'empty'}: no scenario files (*.yaml, *.yml) in this folder",
    ]


UDP = """\
servers:
  echo: {builtin: udp_echo}
proxies:
  main: {server: echo, transport: udp}
client:
  workload: datagram
  endpoints: main
  requests: 5
  timeout: 100ms
expect:
  all_answered: true
"""


def test_a_udp_scenario_is_valid(write_scenario: WriteScenario) -> None:
    scenario, problems = load_file(
        write_scenario(UDP.replace("transport: udp", "transport: udp, flow_timeout: 2s"))
    )
    assert problems == []
    assert scenario is not None
    assert scenario.spec.proxies["main"].flow_timeout_ms == 2000


def test_udp_mistakes_are_named_where_they_are(write_scenario: WriteScenario) -> None:
    text = UDP.replace(
        "  main: {server: echo, transport: udp}",
        "  main:\n    server: echo\n    transport: udp\n    toxics:\n"
        "      - {type: slicer, average_size: 10}\n"
        "  tcp: {server: echo}",
    ).replace("  endpoints: main", "  endpoints: [main, tcp]")
    text += (
        "timeline:\n  - after_requests: 1\n"
        "    add_toxic: {proxy: tcp, type: loss, probability: 0.5}\n"
    )
    path = write_scenario(text)
    assert problems_of(path) == [
        "8:16: proxies.main.toxics[0].type: slicer works on tcp proxies, not on a udp proxy "
        "(proxy main)",
        "12:21: client.endpoints[1]: the datagram workload needs a udp proxy, but proxy tcp "
        "is transport tcp",
        "19:35: timeline[0].add_toxic.type: loss works on udp proxies, not on a tcp proxy "
        "(proxy tcp)",
    ]


def test_flow_timeout_needs_a_udp_proxy(write_scenario: WriteScenario) -> None:
    path = write_scenario(
        MINIMAL.replace("  main: {server: echo}", "  main: {server: echo, flow_timeout: 1s}")
    )
    [problem] = problems_of(path)
    assert problem.endswith("flow_timeout is for datagram proxies (transport: udp)")


def test_a_backend_without_datagram_proxies_refuses_them_by_name(
    write_scenario: WriteScenario,
) -> None:
    path = write_scenario(UDP)
    with pytest.raises(ScenarioInvalid) as caught:
        load_paths([path], backend_extensions=frozenset(), backend="toxiproxy")
    assert str(caught.value).splitlines() == [
        f"{path}:4:35: proxies.main.transport: not supported by backend toxiproxy: udp"
    ]


def test_an_exploration_fault_must_fit_its_proxy(write_scenario: WriteScenario) -> None:
    text = UDP.replace("  requests: 5\n", "  requests: 5\n  rate: 10/s\n") + (
        "explore:\n  faults:\n    - toxic: slicer\n      proxies: [main]\n"
        "      attributes: {average_size: 10}\n  window: 100ms\n  max_outage: 100ms\n"
    )
    path = write_scenario(text)
    assert (
        "15:14: explore.faults[0].toxic: slicer works on tcp proxies, not on a udp proxy "
        "(proxy main)" in problems_of(path)
    )


def test_a_protocol_and_message_targeting_are_refused_for_toxiproxy_by_name(
    write_scenario: WriteScenario,
) -> None:
    text = MINIMAL.replace(
        "  main: {server: echo}",
        "  main:\n    server: echo\n    protocol: length_prefix\n    toxics:\n"
        "      - {type: latency, latency: 5, skip_messages: 1}",
    )
    path = write_scenario(text)
    with pytest.raises(ScenarioInvalid) as caught:
        load_paths([path], backend_extensions=frozenset(), backend="toxiproxy")
    assert str(caught.value).splitlines() == [
        f"{path}:6:5: proxies.main.protocol: not supported by backend toxiproxy: protocol",
        f"{path}:8:37: proxies.main.toxics[0].skip_messages: not supported by backend "
        "toxiproxy: skip_messages",
    ]


def test_a_bad_protocol_option_names_the_field(write_scenario: WriteScenario) -> None:
    text = MINIMAL.replace(
        "  main: {server: echo}",
        "  main: {server: echo, protocol: line, protocol_options: {eol: x}}",
    )
    (problem,) = problems_of(write_scenario(text))
    assert "protocol_options.eol: unknown option of line (known: delimiter, max_size)" in problem
