"""Issue 14.14 and the kill tests for pytest: a run with the plugin stopped by SIGINT
(exit 2, no traceback: fixtures are torn down before the session's server stops),
SIGTERM or SIGKILL leaves no server process, port or log folder behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

WAIT_S = 60.0
TEST_FILE = """
import os, pathlib, signal, threading

def test_stopped_midway(chaos, framed_echo_server):
    proxy = chaos.proxy(upstream=framed_echo_server.address)
    state = f"{framed_echo_server.pid} {framed_echo_server.address[1]} {proxy.address[1]}"
    pathlib.Path("state.tmp").write_text(state)
    pathlib.Path("state.tmp").rename("state")
    if os.environ.get("SELF_INTERRUPT"):
        os.kill(os.getpid(), signal.SIGINT)
    threading.Event().wait(60)
"""


def start(pytester: pytest.Pytester, *, self_interrupt: bool) -> subprocess.Popen[str]:
    pytester.makepyfile(test_stopped=TEST_FILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAOSNET_", "PYTEST_"))}
    if self_interrupt:
        env["SELF_INTERRUPT"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_stopped.py"],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_state(pytester: pytest.Pytester, process: subprocess.Popen[str]) -> list[int]:
    """(server pid, server port, proxy port), once the test has written them (renamed whole)."""
    state = pytester.path / "state"
    deadline = time.monotonic() + WAIT_S
    while not state.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the inner test never started"
        time.sleep(0.05)
    return [int(part) for part in state.read_text().split()]


def finish(process: subprocess.Popen[str]) -> str:
    try:
        output, _ = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    return output


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def assert_nothing_left(pid: int, server_pid: int, ports: list[int]) -> None:
    deadline = time.monotonic() + 10
    while psutil.pid_exists(server_pid) and psutil.Process(server_pid).status() != "zombie":
        assert time.monotonic() < deadline, f"server pid {server_pid} outlived the run"
        time.sleep(0.05)
    for port in ports:  # its sockets close as the kernel reaps it: within the same deadline
        while _accepts(port):
            assert time.monotonic() < deadline, f"port {port} still open"
            time.sleep(0.05)
    folders = list(Path(tempfile.gettempdir()).glob(f"chaosnet-servers-{pid}-*"))
    if folders:  # a killed run cannot remove its own: the next start does
        from chaosnet.servers.logs import reap_dead_log_dirs

        reap_dead_log_dirs()
        assert not any(folder.exists() for folder in folders)


def test_ctrl_c_exits_2_without_traceback(pytester: pytest.Pytester) -> None:
    process = start(pytester, self_interrupt=True)
    server_pid, server_port, proxy_port = wait_for_state(pytester, process)
    output = finish(process)
    assert process.returncode == 2, output  # pytest's INTERRUPTED
    assert "KeyboardInterrupt" in output
    assert "Traceback (most recent call last)" not in output, output
    assert "BackendUnreachable" not in output, output
    assert "error" not in output.splitlines()[-1].lower(), output
    assert not list(Path(tempfile.gettempdir()).glob(f"chaosnet-servers-{process.pid}-*"))
    assert_nothing_left(process.pid, server_pid, [server_port, proxy_port])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_signalled_run_leaves_nothing(pytester: pytest.Pytester, signum: int) -> None:
    process = start(pytester, self_interrupt=False)
    server_pid, server_port, proxy_port = wait_for_state(pytester, process)
    process.send_signal(signum)
    output = finish(process)
    if signum == signal.SIGINT:
        assert process.returncode == 2, output
        assert "Traceback (most recent call last)" not in output, output
    else:
        assert process.returncode == -signum, output
    assert_nothing_left(process.pid, server_pid, [server_port, proxy_port])
