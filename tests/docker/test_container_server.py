"""ContainerServer: readiness, logs and lifecycle of a containerised server, seen by clients."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest

from chaosnet.connection import FramedClient
from chaosnet.framing import encode_frame
from chaosnet.retry import RetryPolicy
from chaosnet.servers import ownership
from chaosnet.servers.builtin import ready_line
from chaosnet.servers.container import ContainerServer
from chaosnet.servers.docker_engine import docker_client
from chaosnet.servers.errors import ServerCrashed, ServerNotReady
from chaosnet.servers.factories import ContainerFactory
from chaosnet.servers.lifecycle import RealServer
from chaosnet.servers.process import ServerProcess
from chaosnet.servers.readiness import HttpOk, Listening, LogLine
from tests.docker import images
from tests.docker.conftest import containers_left
from tests.docker.fixtures import builtin_container

QUICK = 0.5


@pytest.fixture
def framed_echo(servers_image: str) -> Iterator[ContainerServer]:
    with builtin_container(servers_image, "framed_echo") as server:
        yield server


def _container(server: ContainerServer) -> dict[str, object]:
    assert server.container_id is not None
    with docker_client() as client:
        info: dict[str, object] = client.api.inspect_container(server.container_id)
    return info


def test_a_builtin_server_in_a_container_answers_on_the_port_it_reported(
    shared_framed_echo: ContainerServer,
) -> None:
    host, port = shared_framed_echo.address
    assert host == "127.0.0.1"
    assert port > 0
    with FramedClient(shared_framed_echo.address) as client:
        assert client.request(b"ping") == b"ping"
    log = shared_framed_echo.log_text()
    assert f"chaosnet-server framed_echo listening on 127.0.0.1:{port}" in log
    assert "starting container: image chaosnet-test/servers:latest" in log


def test_the_container_uses_the_host_network_and_carries_the_owner_labels(
    shared_framed_echo: ContainerServer,
) -> None:
    info = _container(shared_framed_echo)
    host_config = info["HostConfig"]
    assert isinstance(host_config, dict)
    assert host_config["NetworkMode"] == "host"
    assert not host_config.get("PortBindings")
    config = info["Config"]
    assert isinstance(config, dict)
    labels = config["Labels"]
    assert labels[ownership.OWNER_LABEL] == ownership.Owner.current().token
    assert labels[ownership.RUN_LABEL] == ownership.run_id()
    assert labels[ownership.SERVER_LABEL] == "shared-framed-echo"


def test_listening_finds_the_port_of_a_server_that_does_not_print_it(servers_image: str) -> None:
    server = ContainerServer(servers_image, ["echo", "--port", "0"], ready=Listening())
    with server, socket.create_connection(server.address, timeout=2) as sock:
        sock.sendall(b"hello")
        assert sock.recv(16) == b"hello"


def test_http_readiness_with_an_entrypoint_of_our_own(
    docker_server: ContainerFactory, servers_image: str
) -> None:
    server = docker_server(
        servers_image,
        lambda port: ["-m", "http.server", "--bind", "127.0.0.1", str(port)],
        entrypoint=[images.interpreter()],
        name="http",
        ready=[LogLine(r"Serving HTTP on \S+ port (?P<port>\d+)"), HttpOk("/")],
    )
    host, port = server.address
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as response:
        assert response.status == 200


def test_log_position_gives_what_one_test_made_the_server_write(servers_image: str) -> None:
    verbose = ContainerServer(
        servers_image,
        lambda port: ["echo", "--verbose", "--port", str(port)],
        name="verbose-echo",
        ready=LogLine(r"listening on 127\.0\.0\.1:(?P<port>\d+)$"),
    )
    with verbose:
        before = verbose.log_position()
        with socket.create_connection(verbose.address, timeout=2) as sock:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
        verbose.stop()
        since = verbose.log_text(since=before)
    assert "connection from 127.0.0.1:" in since
    assert "listening on" not in since


def test_stop_refuses_clients_and_removes_the_container(framed_echo: ContainerServer) -> None:
    address = framed_echo.address
    container_id = framed_echo.container_id
    assert framed_echo.stop() == 0  # the server handles SIGTERM and exits cleanly
    assert framed_echo.container_id is None
    assert not framed_echo.running
    assert not framed_echo.crashed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2)
    assert container_id not in {c["Id"] for c in ownership.labelled_containers()}


def test_kill_is_sigkill(framed_echo: ContainerServer) -> None:
    assert framed_echo.kill() == -9
    assert "stopped (exit status -9)" in framed_echo.log_tail()


def test_a_client_with_retries_rides_through_a_restart_on_the_same_address(
    framed_echo: ContainerServer,
) -> None:
    before = framed_echo.address
    policy = RetryPolicy(attempts=10, deadline=5.0, initial=0.01)
    with FramedClient(framed_echo.address, retry=policy, timeout=2.0) as client:
        assert client.request(b"one") == b"one"
        framed_echo.restart()
        assert framed_echo.address == before
        assert client.request(b"two") == b"two"  # its old connection died with the container
        assert client.reconnects >= 1


def test_pause_freezes_the_server_resume_answers_what_waited_stop_thaws_it(
    framed_echo: ContainerServer,
) -> None:
    with socket.create_connection(framed_echo.address, timeout=2) as sock:
        framed_echo.pause()
        assert framed_echo.paused
        sock.sendall(encode_frame(b"waiting"))
        sock.settimeout(QUICK)
        with pytest.raises(TimeoutError):
            sock.recv(64)
        framed_echo.resume()
        assert not framed_echo.paused
        sock.settimeout(2)
        assert sock.recv(64) == encode_frame(b"waiting")
    framed_echo.pause()
    assert framed_echo.stop(grace=2.0) == 0  # thawed first, it acted on SIGTERM


def test_a_container_killed_behind_our_back_is_a_crash_with_its_log(
    framed_echo: ContainerServer,
) -> None:
    assert framed_echo.container_id is not None
    with docker_client() as client:
        client.api.kill(framed_echo.container_id)
        client.api.wait(framed_echo.container_id, timeout=5)
    assert framed_echo.crashed
    with pytest.raises(ServerCrashed) as caught:
        framed_echo.check_alive()
    message = str(caught.value)
    assert "'framed_echo'" in message
    assert "was killed by SIGKILL" in message
    assert "listening on 127.0.0.1:" in message  # the log's last lines
    framed_echo.stop()
    assert framed_echo.crashed  # stopping a dead server does not hide its crash


def test_not_ready_in_time_reports_the_log_and_removes_the_container(servers_image: str) -> None:
    server = ContainerServer(
        servers_image,
        ["echo", "--port", "0"],
        name="never-ready",
        # It does start (the first check passes), then never prints the second line.
        ready=[ready_line("echo"), LogLine("a line the server never prints")],
        ready_timeout=1.0,
    )
    with pytest.raises(ServerNotReady) as caught:
        server.start()
    message = str(caught.value)
    assert "container 'never-ready' was not ready within 1s" in message
    assert "still waiting for a log line matching 'a line the server never prints'" in message
    assert "chaosnet-server echo listening on 127.0.0.1:" in message
    assert server.container_id is None
    assert containers_left() == []


def test_a_container_server_has_the_interface_of_a_server_process() -> None:
    expected = {name for name in dir(ServerProcess) if not name.startswith("_")}
    assert {"start", "restart", "check_alive", "log_text"} <= expected  # the whole lifecycle
    expected |= {"__enter__", "__exit__"}
    missing = {name for name in expected if not hasattr(ContainerServer, name)}
    assert missing == set()
    protocol = {name for name in vars(RealServer) if not name.startswith("_")}
    assert protocol <= set(dir(ContainerServer)) & set(dir(ServerProcess))


def test_wait_returns_the_status_of_a_container_that_exits_by_itself(servers_image: str) -> None:
    script = (
        "import signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1}); "
        "import os; print('ready', os.environ['GREETING'], flush=True); "
        "signal.sigwait({signal.SIGUSR1}); sys.exit(3)"
    )
    server = ContainerServer(
        servers_image,
        ["-c", script],
        entrypoint=[images.interpreter()],
        env={"GREETING": "hello"},
        name="exits-by-itself",
        ready=LogLine("^ready hello$"),  # the environment reached it
    )
    with server:
        assert server.wait(0.05) is None
        assert server.container_id is not None
        with docker_client() as client:
            client.api.kill(server.container_id, signal="SIGUSR1")  # asks it to exit
        assert server.wait(5.0) == 3
        assert server.crashed  # nobody called stop(): the test should hear of it
