"""Ownership labels, the reaper of a killed run's containers, and the leak-check probe."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

from chaosnet import leaks
from chaosnet.servers import ownership
from chaosnet.servers.ownership import Owner
from tests import toolchain
from tests.docker.fixtures import builtin_container

CHILD_TIMEOUT_S = 30.0
# A test run in miniature: start a container, say which, then wait to be killed.
CHILD = """
import sys
from chaosnet.servers.builtin import ready_line
from chaosnet.servers.container import ContainerServer

server = ContainerServer(
    sys.argv[1], lambda port: ["echo", "--port", str(port)], name="orphan", ready=ready_line("echo")
)
server.start()
print(server.container_id, flush=True)
if sys.argv[2] == "wait":
    sys.stdin.read()
"""


def _ids(*, mine_only: bool) -> set[str]:
    return {c["Id"] for c in ownership.labelled_containers(mine_only=mine_only)}


def test_the_reaper_removes_what_a_sigkilled_run_left_and_spares_live_owners(
    servers_image: str,
) -> None:
    env = dict(os.environ, PYTHONPATH=str(toolchain.ROOT))
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, servers_image, "wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        ready, _, _ = select.select([child.stdout], [], [], CHILD_TIMEOUT_S)
        line = child.stdout.readline().decode().strip() if ready else ""
        if not line:
            child.kill()
            raise AssertionError(f"the child did not start its container: {child.stderr.read()!r}")
        child.send_signal(signal.SIGKILL)  # no atexit, no teardown: the container stays
        assert child.wait(CHILD_TIMEOUT_S) == -signal.SIGKILL
    orphan = line
    assert orphan not in _ids(mine_only=True)

    with builtin_container(servers_image, "echo", name="alive") as ours:
        ownership.reap_orphans()
        assert ours.running  # this process is alive: its containers are not orphans
        assert ours.container_id in _ids(mine_only=True)
    # Every chaosnet run reaps at its start, so another test of this session (on another
    # xdist worker) may have removed the orphan first: either way, it must be gone.
    assert orphan not in _ids(mine_only=False)


def test_a_run_that_exits_without_stopping_its_container_removes_it(servers_image: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, servers_image, "exit"],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env=dict(os.environ, PYTHONPATH=str(toolchain.ROOT)),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    container = done.stdout.strip()
    assert container
    assert container not in _ids(mine_only=False)


def test_an_owner_is_alive_only_while_its_process_runs() -> None:
    here = Owner.current()
    assert Owner.parse(here.token) == here
    assert here.pid == os.getpid()
    assert here.alive() is True
    with subprocess.Popen(["true"]) as finished:
        finished.wait(10)
    gone = Owner(here.host, here.boot, finished.pid, here.started)
    assert gone.alive() is False
    reused_pid = Owner(here.host, here.boot, here.pid, "12.34")  # same pid, other process
    assert reused_pid.alive() is False
    before_reboot = Owner(here.host, "another-boot", here.pid, here.started)
    assert before_reboot.alive() is False
    elsewhere = Owner("another-host", here.boot, here.pid, here.started)
    assert elsewhere.alive() is None  # cannot tell: the reaper leaves it alone
    assert Owner.parse("not/a/token") is None


def test_the_run_id_comes_from_the_environment_when_set() -> None:
    assert ownership.labels_for("db") == {
        ownership.RUN_LABEL: ownership.run_id(),
        ownership.OWNER_LABEL: Owner.current().token,
        ownership.SERVER_LABEL: "db",
    }
    code = "from chaosnet.servers import ownership; print(ownership.run_id())"
    env = dict(os.environ, PYTHONPATH=str(toolchain.ROOT), CHAOSNET_RUN_ID="run-42")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.stdout.strip() == "run-42", out.stderr


def test_the_leak_check_reports_a_container_left_running_and_nothing_else(
    servers_image: str,
) -> None:
    ownership.register_leak_probe()
    ownership.register_leak_probe()  # idempotent
    check = leaks.LeakCheck(settle=0.1)
    check.start()
    server = builtin_container(servers_image, "echo", name="forgotten").start()
    try:
        report = check.finish()
        # A running container costs this process no socket, thread or child process.
        assert [leak.kind for leak in report.leaks] == ["container"]
        assert "server 'forgotten'" in report.leaks[0].summary
        assert "image chaosnet-test/servers:latest, running" in report.leaks[0].summary
        check.ignore(server)  # a session-scoped server exempts its own container
        assert not check.finish()
    finally:
        server.stop()
