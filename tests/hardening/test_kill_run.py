"""Issue 14.15-16: ``chaosnet run`` stopped by SIGINT, SIGTERM or SIGKILL at several points
leaves no process, port or folder behind; SIGINT/SIGTERM write a partial report."""

from __future__ import annotations

import gc
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from chaosnet import control
from chaosnet.control import ControlClient
from chaosnet.proxy.embedded import EmbeddedServer

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0  # the machine may be loaded; nothing here waits without an event
CHAOSNET_RUN = (sys.executable, "-m", "chaosnet.cli", "run")
QUICK = """\
name: quick
servers:
  echo: {builtin: framed_echo}
proxies:
  main: {server: echo}
client:
  workload: framed
  endpoints: main
  requests: 3
  timeout: 1s
expect:
  all_answered: true
"""
SLOW = QUICK.replace("name: quick", "name: slow").replace(
    "requests: 3", "requests: 1000\n  rate: 20/s"
)


class Run:
    """``chaosnet run`` in a child process, its output read line by line."""

    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "a_quick.yaml").write_text(QUICK)
        (tmp_path / "b_slow.yaml").write_text(SLOW)
        self.report = tmp_path / "report.json"
        self.process = subprocess.Popen(
            [*CHAOSNET_RUN, str(tmp_path), "--plain", "--report", "json", str(self.report)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.lines: list[str] = []

    def wait_for(self, marker: str) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline()
                assert line, f"exited before {marker!r}: {''.join(self.lines)}"
                self.lines.append(line)
                if marker in line:
                    return line
        pytest.fail(f"no {marker!r} in {WAIT_S} s: {''.join(self.lines)}")

    def finish(self) -> str:
        try:
            rest, _ = self.process.communicate(timeout=WAIT_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        return "".join(self.lines) + rest

    def servers(self) -> list[tuple[int, int]]:
        """(pid, port) of every server the run reported ready."""
        found = []
        for line in self.lines:
            if "ready on " in line and "(pid " in line:
                port = int(line.split("ready on ")[1].split()[0].rsplit(":", 1)[1])
                found.append((int(line.split("(pid ")[1].split(")")[0]), port))
        return found


def assert_nothing_left(run: Run) -> None:
    deadline = time.monotonic() + 10
    servers = run.servers()
    assert servers, run.lines
    for pid, port in servers:
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie":
            assert time.monotonic() < deadline, f"server pid {pid} still running"
            time.sleep(0.05)
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    leftovers = list(Path(tempfile.gettempdir()).glob(f"chaosnet-servers-{run.process.pid}-*"))
    assert not leftovers, leftovers


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
@pytest.mark.parametrize("point", ["server ready", "workload started"])
def test_interrupted_run_cleans_up_and_reports(
    tmp_path: Path, signum: int, status: int, point: str
) -> None:
    run = Run(tmp_path)
    if point == "server ready":
        run.wait_for("quick: server echo ready")
    else:
        run.wait_for("slow: workload framed started")
    run.process.send_signal(signum)
    output = run.finish()
    assert run.process.returncode == status, output
    assert "interrupted: servers stopped, proxies removed" in output
    assert "Traceback" not in output
    assert_nothing_left(run)
    report = json.loads(run.report.read_text())
    finished = [scenario["name"] for scenario in report["scenarios"]]
    assert finished == ([] if point == "server ready" else ["quick"]), report


def test_killed_run_leaves_no_server(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.wait_for("slow: workload framed started")
    run.process.kill()
    run.finish()
    assert run.process.returncode == -signal.SIGKILL
    pids = [pid for pid, _ in run.servers()]
    deadline = time.monotonic() + 10
    for pid in pids:  # servers die with their parent (PR_SET_PDEATHSIG)
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie":
            assert time.monotonic() < deadline, f"server pid {pid} outlived a killed run"
            time.sleep(0.05)
    left = list(Path(tempfile.gettempdir()).glob(f"chaosnet-servers-{run.process.pid}-*"))
    assert left, "the killed run had a log folder (else this test proves nothing)"
    next_run = subprocess.run(
        [sys.executable, "-c", "from chaosnet.servers.logs import new_log_path; new_log_path('x')"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=WAIT_S,
        check=True,
    )
    assert next_run.returncode == 0
    assert not any(folder.exists() for folder in left), "the next start did not reap them"


def test_a_control_response_is_closed_by_the_client_not_its_finalizer(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signal handler that runs inside a finalizer raises into nothing: a response left to
    # its finalizer once swallowed the SIGTERM of a run, which then ran to its end.
    callers: list[tuple[str, str]] = []
    close = http.client.HTTPResponse.close

    def recording_close(response: http.client.HTTPResponse) -> None:
        code = sys._getframe(1).f_code
        callers.append((code.co_filename, code.co_name))
        close(response)

    monkeypatch.setattr(http.client.HTTPResponse, "close", recording_close)
    client = ControlClient(server.url)
    try:
        for _ in range(3):  # on one kept-alive connection: each request drops the last response
            client.version()
    finally:
        client.close()
    gc.collect()
    # Each response closed by the request that read it (the connection's close closes the
    # last one again, harmlessly); none left for the next request's putrequest to drop.
    assert callers[:3] == [(control.__file__, "_send")] * 3, callers
    assert set(callers[3:]) <= {(http.client.__file__, "close")}, callers
