"""Options, their precedence (ini < env < CLI < marker), the header, the marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosnet.seeds import derive_seed

SEED_PROBE = """
    import pytest
    from chaosnet.seeds import derive_seed

    def test_seed(chaos, request):
        expected = {expected}
        if expected is None:
            expected = derive_seed({session_seed}, request.node.nodeid)
        assert chaos.seed == expected
"""


def run_seed_probe(
    pytester: pytest.Pytester, *args: str, session_seed: int, expected: int | None = None
) -> pytest.RunResult:
    pytester.makepyfile(SEED_PROBE.format(expected=expected, session_seed=session_seed))
    return pytester.runpytest(*args)


def test_header_names_backend_seed_and_leak_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--chaosnet-seed=42")
    result.stdout.fnmatch_lines(["chaosnet: backend=embedded seed=42 leak-check=on"])


def test_a_random_seed_is_chosen_and_printed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    result.stdout.re_match_lines([r"chaosnet: backend=embedded seed=\d+ leak-check=on"])


def test_ini_sets_the_seed(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nchaosnet_seed = 1\n")
    run_seed_probe(pytester, session_seed=1).assert_outcomes(passed=1)


def test_environment_beats_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nchaosnet_seed = 1\n")
    monkeypatch.setenv("CHAOSNET_SEED", "2")
    run_seed_probe(pytester, session_seed=2).assert_outcomes(passed=1)


def test_command_line_beats_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nchaosnet_seed = 1\n")
    monkeypatch.setenv("CHAOSNET_SEED", "2")
    run_seed_probe(pytester, "--chaosnet-seed=3", session_seed=3).assert_outcomes(passed=1)


def test_marker_beats_command_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaosnet(seed=4)
        def test_seed(chaos):
            assert chaos.seed == 4
        """
    )
    pytester.runpytest("--chaosnet-seed=3", "--strict-markers").assert_outcomes(passed=1)


def test_per_test_seeds_do_not_depend_on_other_tests(pytester: pytest.Pytester) -> None:
    nodeid = "test_per_test_seeds_do_not_depend_on_other_tests.py::test_seed"
    expected = derive_seed(7, nodeid)
    pytester.makepyfile(
        f"""
        def test_other(chaos):
            pass

        def test_seed(chaos):
            assert chaos.seed == {expected}
        """
    )
    pytester.runpytest("--chaosnet-seed=7").assert_outcomes(passed=2)
    only = pytester.runpytest("--chaosnet-seed=7", f"{nodeid}")
    only.assert_outcomes(passed=1)


LEAKY = """
    import socket
    import pytest

    KEEP = []

    {marker}
    def test_leaks_a_socket(chaos, echo_server):
        proxy = chaos.proxy(echo_server)
        KEEP.append(socket.create_connection(proxy.address))
"""


@pytest.mark.parametrize(
    ("ini", "env", "cli", "marker", "leak_checked"),
    [
        ("off", None, None, None, False),
        ("off", "on", None, None, True),
        ("off", "on", "off", None, False),
        ("off", "on", "off", "@pytest.mark.chaosnet(leak_check=True)", True),
        (None, None, "on", "@pytest.mark.chaosnet(leak_check=False)", False),
    ],
)
def test_leak_check_precedence(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ini: str | None,
    env: str | None,
    cli: str | None,
    marker: str | None,
    leak_checked: bool,
) -> None:
    if ini is not None:
        pytester.makeini(f"[pytest]\nchaosnet_leak_check = {ini}\n")
    if env is not None:
        monkeypatch.setenv("CHAOSNET_LEAK_CHECK", env)
    pytester.makepyfile(LEAKY.format(marker=marker or ""))
    args = [f"--chaosnet-leak-check={cli}"] if cli else []
    result = pytester.runpytest(*args)
    if leak_checked:
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["*1 resource leaked*", "*socket fd*"])
    else:
        result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--chaosnet-backend=bogus"], {}, "*option --chaosnet-backend: backend must be one of*"),
        ([], {"CHAOSNET_SEED": "abc"}, "*environment CHAOSNET_SEED: seed must be an integer*"),
        (["--chaosnet-leak-check=maybe"], {}, "*leak check must be on or off*"),
        (["--chaosnet-seed=-1"], {}, "*seed must be between 0 and*"),
        (
            [],
            {"CHAOSNET_UNSUPPORTED": "ignore"},
            "*environment CHAOSNET_UNSUPPORTED: unsupported must be fail or skip, got 'ignore'*",
        ),
    ],
)
def test_bad_settings_are_usage_errors_naming_their_source(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_unknown_marker_argument_fails_the_test_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaosnet(sede=1)
        def test_typo(chaos):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown @pytest.mark.chaosnet argument(s) sede*"])


def test_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaosnet(leak_check=False)
        def test_marked():
            pass
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_uses_chaos(chaos): pass")
    result = pytester.runpytest("-p", "no:chaosnet")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'chaos' not found*"])
    assert "chaosnet: backend" not in result.stdout.str()


NEEDS_EXTENSIONS = """
import pytest

@pytest.mark.chaosnet(requires=["truncate_frame"])
def test_marked(chaos, framed_echo_server):
    chaos.proxy(framed_echo_server).toxic("truncate_frame")

def test_unmarked(chaos, framed_echo_server):
    chaos.proxy(framed_echo_server).toxic("refuse_new")

def test_plain(chaos, framed_echo_server):
    chaos.proxy(framed_echo_server).toxic("latency")
"""


@pytest.mark.parametrize("unsupported", [None, "fail", "skip"])
def test_unsupported_extensions_fail_or_skip_with_the_reason(
    pytester: pytest.Pytester, toxiproxy_bins: tuple[Path, Path], unsupported: str | None
) -> None:
    pytester.makepyfile(NEEDS_EXTENSIONS)
    args = ["-rs", "--chaosnet-backend=toxiproxy", f"--chaosnet-toxiproxy-bin={toxiproxy_bins[0]}"]
    if unsupported is not None:
        args.append(f"--chaosnet-unsupported={unsupported}")
    result = pytester.runpytest_subprocess(*args)
    if unsupported == "skip":
        result.assert_outcomes(passed=1, skipped=2)
        result.stdout.fnmatch_lines(
            [
                "SKIPPED*not supported by backend toxiproxy: truncate_frame",
                "SKIPPED*not supported by backend toxiproxy: refuse_new",
            ]
        )
    else:  # the default: the marked test fails before its body, the other in it
        result.assert_outcomes(passed=1, failed=1, errors=1)
        result.stdout.fnmatch_lines(["*not supported by backend toxiproxy: truncate_frame*"])
        result.stdout.fnmatch_lines(
            ["*UnsupportedByBackend: not supported by backend toxiproxy: refuse_new*"]
        )


def test_requires_on_a_backend_that_has_them_runs_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NEEDS_EXTENSIONS)
    pytester.runpytest("--chaosnet-unsupported=skip").assert_outcomes(passed=3)


def test_requires_must_be_a_list_of_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaosnet(requires="truncate_frame")
        def test_typo(chaos):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*requires=...) must be a list of feature names, got 'truncate_frame'*"]
    )
