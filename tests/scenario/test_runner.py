"""The runner: seeds, the stage's all-or-nothing start, and runs that cannot complete."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from chaosnet.backends.toxiproxy import ToxiproxyBackend
from chaosnet.cli import main
from chaosnet.scenario.model import Client
from chaosnet.scenario.workloads import retry_policy
from chaosnet.seeds import derive_seed
from tests.scenario.conftest import MINIMAL, RecordingListener, RunText, WriteScenario

COUNTEREXAMPLES = Path(__file__).parent / "counterexamples"
SLICED = MINIMAL.replace(
    "main: {server: echo}",
    "main: {server: echo, toxics: [{type: slicer, average_size: 5, size_variation: 4}]}",
)


def toxic_seeds(run_text: RunText, embedded_control: object, seed: int) -> list[object]:
    """Run SLICED with ``seed``; the seed fields of its toxics, read from the control server."""
    listener = RecordingListener()
    seen: list[object] = []

    def read() -> None:
        from chaosnet.control import ControlClient

        assert isinstance(embedded_control, ControlClient)
        for proxy in embedded_control.proxies().values():
            seen.extend(t.extra.get("seed") for t in proxy.toxics)

    listener.on_workload_started = read
    assert run_text(SLICED, seed=seed, listener=listener).status == "passed"
    return seen


def test_toxic_seeds_follow_the_run_seed(run_text: RunText, embedded: object) -> None:
    control = embedded.control  # type: ignore[attr-defined]
    first = toxic_seeds(run_text, control, 1234)
    assert first == [derive_seed(1234, "main", "slicer_downstream")]
    assert toxic_seeds(run_text, control, 1234) == first
    assert toxic_seeds(run_text, control, 1235) != first


def test_retry_jitter_and_payloads_follow_the_run_seed() -> None:
    client = Client.model_validate({"workload": "framed", "endpoints": ["p"], "retry": {}})
    policy = retry_policy(client, derive_seed(7, "retry"))
    assert policy is not None
    assert policy.seed == derive_seed(7, "retry") != derive_seed(8, "retry")
    assert retry_policy(client.model_copy(update={"retry": None}), 7) is None
    assert derive_seed(7, "retry") == 2598430404  # stable across runs and Python versions


def test_payloads_are_reproducible_from_the_seed(run_text: RunText, tmp_path: Path) -> None:
    (tmp_path / "payloads.py").write_text(
        textwrap.dedent("""\
        SEEN = []
        def record(ctx):
            for req in ctx.schedule():
                with req:
                    SEEN.append(req.payload)
        """)
    )
    text = MINIMAL.replace("workload: framed", "workload: payloads:record").replace(
        "all_answered: true", "max_attempts: 1"
    )
    import importlib

    run_text(text, seed=5)
    module = importlib.import_module("payloads")
    first = list(module.SEEN)
    module.SEEN.clear()
    run_text(text, seed=5)
    assert first == module.SEEN
    assert len(set(first)) == 5  # one payload per request
    module.SEEN.clear()
    run_text(text, seed=6)
    assert first != module.SEEN


def test_a_failing_step_is_an_error_that_stops_the_run(run_text: RunText) -> None:
    text = MINIMAL.replace("requests: 5", "requests: 5\n  rate: 50/s") + textwrap.dedent("""\
        timeline:
          - after_requests: 1
            remove_toxic: {proxy: main, name: later}
          - after_requests: 2
            add_toxic: {proxy: main, type: latency, name: later, latency: 1}
        """)
    result = run_text(text)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("step 0 (remove main/later) failed: DELETE ")
    assert "HTTP 404" in result.error
    assert len(result.requests) < 5  # the run stopped
    assert [e.ok for e in result.events] == [False]


def test_a_crashing_callable_is_an_error_with_its_traceback(
    run_text: RunText, tmp_path: Path
) -> None:
    (tmp_path / "crashing.py").write_text("def run(ctx):\n    raise RuntimeError('boom')\n")
    result = run_text(MINIMAL.replace("workload: framed", "workload: crashing:run"))
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("the workload crashing:run raised RuntimeError: boom\n")
    assert 'crashing.py", line 2, in run' in result.error


def test_a_workload_over_the_scenario_timeout_is_stopped(run_text: RunText, tmp_path: Path) -> None:
    (tmp_path / "stuck.py").write_text("def run(ctx):\n    ctx.stop_event.wait(30)\n")
    text = "timeout: 300ms\n" + MINIMAL.replace("workload: framed", "workload: stuck:run")
    result = run_text(text)
    assert result.status == "error"
    assert result.error == "the workload did not finish within the scenario timeout (0.3s)"
    assert result.duration < 5


def test_a_url_backend_without_an_extension_is_refused_at_start(
    capsys: pytest.CaptureFixture[str],
    write_scenario: WriteScenario,
    toxiproxy_bins: tuple[Path, Path],
) -> None:
    path = write_scenario(
        MINIMAL.replace(
            "main: {server: echo}", "main: {server: echo, toxics: [{type: truncate_frame}]}"
        )
    )
    backend = ToxiproxyBackend(binary=toxiproxy_bins[0])
    backend.start()
    url = backend.url
    try:
        code = main(["run", str(path), "--backend", url])
    finally:
        backend.stop()
    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines()[0] == (
        f"{path}:4:40: proxies.main.toxics[0].type: not supported by backend {url}: truncate_frame"
    )
    assert "server echo ready" not in out  # refused before anything started


def test_unsupported_skip_leaves_out_what_the_backend_cannot_do(
    capsys: pytest.CaptureFixture[str],
    write_scenario: WriteScenario,
    toxiproxy_bins: tuple[Path, Path],
) -> None:
    """``--unsupported skip``: the scenario needing an extension is named and left out, the
    others run; the run passes."""
    needs = write_scenario(
        MINIMAL.replace(
            "main: {server: echo}", "main: {server: echo, toxics: [{type: truncate_frame}]}"
        ),
        name="needs.yaml",
    )
    plain = write_scenario(MINIMAL, name="plain.yaml")
    backend = ToxiproxyBackend(binary=toxiproxy_bins[0])
    backend.start()
    url = backend.url
    try:
        code = main(["run", str(needs), str(plain), "--backend", url, "--unsupported", "skip"])
    finally:
        backend.stop()
    out, err = capsys.readouterr()
    assert code == 0, err
    skipped = [line for line in out.splitlines() if line.startswith("skipped ")]
    assert skipped == [
        f"skipped {needs} (needs): proxies.main.toxics[0].type: not supported by backend "
        f"{url}: truncate_frame"
    ]
    assert "1 passed" in out


def test_bundled_counterexamples_fail_for_the_right_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    code = main(["run", str(COUNTEREXAMPLES), "--report", "json", str(report)])
    capsys.readouterr()
    assert code == 1
    import json

    verdicts = {
        s["name"]: {e["name"]: e["passed"] for e in s["expectations"]}
        for s in json.loads(report.read_text())["scenarios"]
    }
    assert verdicts["naive-no-retry"]["all_answered"] is False
    assert verdicts["naive-resend"] == {"all_answered": True, "delivery": False}
    assert verdicts["retries-permanent-error"] == {"fails_with": False}


def test_callables_are_found_next_to_the_scenario(run_text: RunText, tmp_path: Path) -> None:
    shutil.copy(COUNTEREXAMPLES / "naive_clients.py", tmp_path / "naive_clients.py")
    text = MINIMAL.replace("workload: framed", "workload: naive_clients:no_retry")
    assert run_text(text).status == "passed"  # no fault: even a naive client passes
