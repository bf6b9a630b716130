"""ServerProcess with real commands: readiness, failures, stopping, death of the parent."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chaosnet.servers import (
    HttpOk,
    Listening,
    LogLine,
    PortAccepts,
    ReadinessCheck,
    ReadinessContext,
    ServerCrashed,
    ServerError,
    ServerExitedEarly,
    ServerNotReady,
    ServerProcess,
)
from tests.servers.scripts import (
    FLAKY_HTTP,
    GRANDPARENT,
    PORT_LINE,
    PORT_REPORTER,
    python,
)
from tests.support import gone, wait_gone

ROOT = str(Path(__file__).resolve().parents[2])


def accepts(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1.0):
            return True
    except OSError:
        return False


def reporter(tmp_path: Path, **options: Any) -> ServerProcess:
    options = {"ready": LogLine(PORT_LINE), "log_path": tmp_path / "server.log", **options}
    return ServerProcess(python(PORT_REPORTER), **options)


# ---------------------------------------------------------------- readiness


def test_log_line_readiness_learns_the_port_and_passes_env_and_cwd(tmp_path: Path) -> None:
    with reporter(tmp_path, env={"TOKEN": "t-42"}, cwd=tmp_path) as server:
        host, port = server.address
        assert (host, port > 0) == ("127.0.0.1", True)
        assert accepts(server.address)
        assert f"token t-42 cwd {tmp_path}" in server.log_text()


def test_port_readiness_on_a_known_address(tmp_path: Path) -> None:
    with reporter(tmp_path) as first:  # learn a port, then free it for a fixed-port start
        port = first.address[1]
    argv = python(PORT_REPORTER, str(port))
    with ServerProcess(argv, address=("127.0.0.1", port), log_path=tmp_path / "b.log") as server:
        assert accepts(("127.0.0.1", port))
        assert server.address == ("127.0.0.1", port)


def test_port_readiness_with_an_explicit_address_sets_the_address(tmp_path: Path) -> None:
    with reporter(tmp_path) as first:
        port = first.address[1]
    ready = PortAccepts(("127.0.0.1", port))
    argv = python(PORT_REPORTER, str(port))
    with ServerProcess(argv, ready=ready, log_path=tmp_path / "c.log") as server:
        assert server.address == ("127.0.0.1", port)


def test_log_since_a_position_is_one_tests_share(tmp_path: Path) -> None:
    with reporter(tmp_path) as server:
        mark = server.log_position()
        server.stop()
        assert server.log_text(since=mark).strip().endswith("stopped (exit status -15)")
        assert "serving on port" not in server.log_text(since=mark)


def test_log_line_then_port_accepts_uses_the_learnt_address(tmp_path: Path) -> None:
    ready = [LogLine(PORT_LINE), PortAccepts()]
    with reporter(tmp_path, ready=ready) as server:
        assert accepts(server.address)


def test_listening_readiness_finds_the_port_of_a_silent_server(tmp_path: Path) -> None:
    script = "import socket, time; s = socket.create_server(('127.0.0.1', 0)); time.sleep(60)"
    with ServerProcess(python(script), ready=Listening(), log_path=tmp_path / "q.log") as server:
        assert server.address[0] == "127.0.0.1"
        assert accepts(server.address)
        assert server.log_text().count("\n") == 1  # it said nothing but our start line


def test_http_readiness_waits_for_a_200(tmp_path: Path) -> None:
    ready: list[ReadinessCheck] = [LogLine(r"http on port (?P<port>\d+)"), HttpOk("/health")]
    with ServerProcess(python(FLAKY_HTTP), ready=ready, log_path=tmp_path / "h.log") as server:
        log = server.log_text()
        assert log.count('"GET /health HTTP/1.1" 503') == 2
        assert log.count('"GET /health HTTP/1.1" 200') == 1


def test_http_readiness_with_the_stdlib_http_server(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"]
    ready: list[ReadinessCheck] = [LogLine(r"port (?P<port>\d+)"), HttpOk("http://{host}:{port}/")]
    with ServerProcess(argv, ready=ready, cwd=tmp_path, log_path=tmp_path / "h.log") as server:
        assert accepts(server.address)


class FileAppears:
    """A readiness check of the user's own: the server creates a file once ready."""

    learns_address = False

    def __init__(self, path: Path, *, needs_address: bool = False) -> None:
        self.path = path
        self.needs_address = needs_address
        self.attempts = 0

    def describe(self) -> str:
        return f"{self.path.name} to appear"

    def poll(self, ctx: ReadinessContext) -> bool:
        self.attempts += 1
        return self.path.exists()


def test_a_readiness_check_of_ones_own_is_polled_like_the_builtin_ones(tmp_path: Path) -> None:
    flag = tmp_path / "ready.flag"
    script = f"import pathlib, time; time.sleep(0.2); pathlib.Path({str(flag)!r}).touch(); "
    script += "time.sleep(60)"
    check = FileAppears(flag)
    started = time.monotonic()
    with ServerProcess(python(script), ready=check, log_path=tmp_path / "f.log") as server:
        assert flag.exists()
        assert server.running
        assert time.monotonic() - started >= 0.2
        assert check.attempts > 1  # polled until the file came, not passed at once


def test_a_check_of_ones_own_that_never_passes_is_named_in_the_error(tmp_path: Path) -> None:
    check = FileAppears(tmp_path / "never.flag")
    server = reporter(tmp_path, ready=[LogLine(PORT_LINE), check], ready_timeout=0.3)
    with pytest.raises(ServerNotReady, match=r"still waiting for never\.flag to appear"):
        server.start()
    assert gone(server.pid)


def test_a_check_of_ones_own_that_needs_an_address_is_refused_without_one() -> None:
    check = FileAppears(Path("x"), needs_address=True)
    with pytest.raises(ValueError, match="FileAppears needs an address"):
        ServerProcess(python(PORT_REPORTER), ready=check)
    ServerProcess(python(PORT_REPORTER), ready=[LogLine(PORT_LINE), check])  # learnt first: fine


def test_checks_that_cannot_learn_the_address_are_refused_before_starting() -> None:
    with pytest.raises(ValueError, match="PortAccepts needs an address"):
        ServerProcess(python(PORT_REPORTER))
    with pytest.raises(ValueError, match="HttpOk needs an address"):
        ServerProcess(python(PORT_REPORTER), ready=[HttpOk("/health"), LogLine(PORT_LINE)])


def test_a_relative_program_is_found_in_the_servers_cwd(tmp_path: Path) -> None:
    program = tmp_path / "serve"
    program.write_text(f"#!{sys.executable}\n{PORT_REPORTER}")
    program.chmod(0o755)
    ready = LogLine(PORT_LINE)
    with ServerProcess(["./serve"], cwd=tmp_path, ready=ready, log_path=tmp_path / "s.log") as s:
        assert s.name == "serve"
        assert accepts(s.address)


def test_missing_command_is_a_clear_error() -> None:
    server = ServerProcess(["no-such-server-binary-xyz"], ready=())
    with pytest.raises(ServerError, match="command not found: 'no-such-server-binary-xyz'"):
        server.start()


# ---------------------------------------------------------------- failing starts


def test_early_exit_reports_exit_code_and_log_tail(tmp_path: Path) -> None:
    script = "import sys; print('loading config'); print('bad option --frob'); sys.exit(3)"
    server = ServerProcess(python(script), ready=LogLine("never"), log_path=tmp_path / "e.log")
    with pytest.raises(ServerExitedEarly) as failure:
        server.start()
    assert failure.value.returncode == 3
    message = str(failure.value)
    assert "exited with code 3 before it was ready" in message
    assert "| bad option --frob" in message
    assert not server.running
    assert not server.crashed  # a failed start is reported once, not again as a crash


def test_never_ready_times_out_and_leaves_nothing_running(tmp_path: Path) -> None:
    # 2 s, so that even a loaded machine's interpreter has printed its first line by then.
    server = reporter(tmp_path, ready=LogLine("this line never comes"), ready_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(ServerNotReady) as failure:
        server.start()
    assert 2.0 <= time.monotonic() - started < 6.0
    assert "was not ready within 2s" in str(failure.value)
    assert "| serving on port" in str(failure.value)  # the log tail came along
    assert gone(server.pid)


# ---------------------------------------------------------------- stopping


def test_stop_is_graceful_for_a_server_that_obeys_sigterm(tmp_path: Path) -> None:
    server = reporter(tmp_path).start()
    assert server.stop() == -signal.SIGTERM
    assert not server.crashed
    assert "stopped (exit status -15)" in server.log_text()


def test_sigterm_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    server = reporter(tmp_path, env={"IGNORE_TERM": "1"}).start()
    started = time.monotonic()
    assert server.stop(grace=0.2) == -signal.SIGKILL
    assert 0.2 <= time.monotonic() - started < 3.0
    assert not server.crashed


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    server = ServerProcess(
        python(GRANDPARENT), ready=LogLine(PORT_LINE), log_path=tmp_path / "g.log"
    ).start()
    grandchild = int(server.log_text().split("grandchild ")[1].split()[0])
    assert not gone(grandchild)
    server.stop(grace=0.2)  # the grandchild ignores SIGTERM: only the group SIGKILL gets it
    assert wait_gone(grandchild)


def test_a_paused_server_still_stops_gracefully(tmp_path: Path) -> None:
    server = reporter(tmp_path).start()
    server.pause()
    started = time.monotonic()
    assert server.stop(grace=5.0) == -signal.SIGTERM  # SIGCONT followed the SIGTERM
    assert time.monotonic() - started < 4.0


def test_kill_is_immediate(tmp_path: Path) -> None:
    server = reporter(tmp_path, env={"IGNORE_TERM": "1"}).start()
    started = time.monotonic()
    assert server.kill() == -signal.SIGKILL
    assert time.monotonic() - started < 1.0


# ---------------------------------------------------------------- lifecycle


def test_restart_comes_back_on_the_same_port(tmp_path: Path) -> None:
    def argv(port: int) -> list[str]:
        return python(PORT_REPORTER, str(port))

    with ServerProcess(argv, ready=LogLine(PORT_LINE), log_path=tmp_path / "r.log") as server:
        address, first_pid = server.address, server.pid
        server.restart()
        assert server.address == address
        assert server.pid != first_pid
        assert accepts(address)
        assert not server.crashed


def test_restart_of_a_fixed_argv_on_port_0_refuses_to_move(tmp_path: Path) -> None:
    server = reporter(tmp_path).start()
    with pytest.raises(ServerError, match=r"came back on .* instead of"):
        server.restart()
    assert not server.running


def test_pause_and_resume_are_observable_by_a_client(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import socket
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
        print("serving on port", server.getsockname()[1])
        while True:
            conn = server.accept()[0]; conn.sendall(b"hello"); conn.close()
        """
    )
    with ServerProcess(python(script), ready=LogLine(PORT_LINE), log_path=tmp_path / "p.log") as s:
        s.pause()
        assert s.paused
        client = socket.create_connection(s.address, timeout=0.2)  # the kernel's backlog
        with client, pytest.raises(TimeoutError):
            client.recv(5)  # ... but nobody answers
        s.resume()
        with socket.create_connection(s.address, timeout=3.0) as client:
            assert client.recv(5) == b"hello"


def test_an_unexpected_death_is_a_crash(tmp_path: Path) -> None:
    server = reporter(tmp_path).start()
    server.check_alive()
    os.kill(server.pid, signal.SIGKILL)
    assert wait_gone(server.pid)
    assert server.crashed
    with pytest.raises(ServerCrashed, match="died unexpectedly: was killed by SIGKILL") as crash:
        server.check_alive()
    assert crash.value.returncode == -signal.SIGKILL
    assert "| serving on port" in str(crash.value)
    server.stop()  # reaping a dead server is fine, and does not hide the crash
    assert server.crashed


def test_a_server_started_from_a_short_lived_thread_outlives_it(tmp_path: Path) -> None:
    started: list[ServerProcess] = []
    worker = threading.Thread(target=lambda: started.append(reporter(tmp_path).start()))
    worker.start()
    worker.join(10)
    server = started[0]
    try:
        assert accepts(server.address)  # PDEATHSIG is tied to the spawning thread
        server.check_alive()
    finally:
        server.stop()


# ---------------------------------------------------------------- the parent dies

PARENT = """
import sys
sys.path.insert(0, {root!r})
from chaosnet.servers import LogLine, ServerProcess
server = ServerProcess([sys.executable, "-c", {script!r}], ready=LogLine({line!r}),
                       log_path={log!r}).start()
print(server.pid, flush=True)
if sys.argv[1] == "block":
    sys.stdin.read()
"""


def run_parent(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    code = PARENT.format(root=ROOT, script=PORT_REPORTER, line=PORT_LINE, log=str(tmp_path / "l"))
    parent = subprocess.Popen(
        [sys.executable, "-c", code, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    ready, _, _ = select.select([parent.stdout], [], [], 20)
    assert ready, "the parent did not report its server"
    return parent, int(parent.stdout.readline())


def test_the_server_dies_when_its_parent_is_sigkilled(tmp_path: Path) -> None:
    parent, server_pid = run_parent(tmp_path, "block")
    with parent:
        assert not gone(server_pid)
        parent.kill()
        parent.wait(5)
    try:
        assert wait_gone(server_pid), "PR_SET_PDEATHSIG did not kill the orphaned server"
    finally:
        if not gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)


def test_a_server_left_running_is_stopped_at_interpreter_exit(tmp_path: Path) -> None:
    parent, server_pid = run_parent(tmp_path, "exit")
    with parent:
        assert parent.wait(10) == 0
    assert wait_gone(server_pid)
    assert "stopped (exit status" in (tmp_path / "l").read_text()
