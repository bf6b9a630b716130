"""Real servers that cannot bind port 0: ``{port}`` in argv, chosen by chaosnet, with the
listener verified and collisions retried; readiness by a probe or a command. Debian's
``redis-server`` is the real server (installed by ``.ci/run``)."""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Iterator

import pytest

from chaosnet.errors import ChaosnetError
from chaosnet.servers import (
    Command,
    PortAccepts,
    Probe,
    ServerError,
    ServerExitedEarly,
    ServerProcess,
    ports,
)
from tests import toolchain

PING = b"*1\r\n$4\r\nPING\r\n"


def redis_argv() -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        toolchain.missing("redis-server is not installed (Debian package redis-server)")
        raise AssertionError("unreachable")
    return [binary, "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


def redis_ping(address: tuple[str, int]) -> bool:
    """A Redis PING over RESP: the server is ready once it answers PONG."""
    with socket.create_connection(address, timeout=1.0) as sock:
        sock.sendall(PING)
        return sock.recv(64).startswith(b"+PONG")


@pytest.fixture
def held() -> Iterator[socket.socket]:
    """A port another process (this one) already listens on."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_redis_on_a_port_chosen_by_chaosnet_ready_by_ping() -> None:
    with ServerProcess(redis_argv(), ready=Probe(redis_ping), name="redis") as redis:
        host, port = redis.address
        assert (host, port > 0) == ("127.0.0.1", True)
        assert f"--port {port}" in " ".join(redis.argv)
        assert ports.listens_on(redis.pid, port)
        assert redis_ping(redis.address)
        redis.restart()
        assert redis.address == (host, port)  # a restart comes back on the same port
        assert redis_ping(redis.address)


def test_readiness_by_a_command() -> None:
    cli = shutil.which("redis-cli")
    if cli is None:
        toolchain.missing("redis-cli is not installed (Debian package redis-tools)")
    ready = Command([str(cli), "-h", "{host}", "-p", "{port}", "ping"])
    with ServerProcess(redis_argv(), ready=ready, name="redis") as redis:
        assert redis_ping(redis.address)


def test_a_port_taken_before_the_server_binds_is_retried(
    monkeypatch: pytest.MonkeyPatch, held: socket.socket
) -> None:
    """The first port chosen is taken by the time redis binds: it exits, chaosnet sees the
    port is taken and starts it again on another one."""
    picks = iter([held.getsockname()[1]])
    real_pick = ports.pick_free_port
    monkeypatch.setattr(
        ports, "pick_free_port", lambda host="127.0.0.1": next(picks, None) or real_pick(host)
    )
    with ServerProcess(redis_argv(), ready=Probe(redis_ping), name="redis") as redis:
        assert redis.address[1] != held.getsockname()[1]
        assert ports.listens_on(redis.pid, redis.address[1])
    assert "Address already in use" in redis.log_text()


def test_another_listener_on_the_port_is_not_mistaken_for_the_server(
    monkeypatch: pytest.MonkeyPatch, held: socket.socket
) -> None:
    """A server that does not bind (here: it only sleeps) while something else accepts on
    its port passes a port check, but is not the listener: every attempt is refused."""
    port = held.getsockname()[1]
    monkeypatch.setattr(ports, "pick_free_port", lambda host="127.0.0.1": port)
    sleeper = [sys.executable, "-c", "import sys, time; time.sleep(30)", "{port}"]
    server = ServerProcess(sleeper, ready=PortAccepts(), name="impostor", port_attempts=3)
    with pytest.raises(ServerError) as caught:
        server.start()
    assert str(caught.value).startswith(
        f"server 'impostor': no port chosen for {{port}} worked in 3 attempts: {port} "
        "(another process listens there)"
    )
    assert not server.running


def test_a_server_failing_for_its_own_reasons_is_not_retried() -> None:
    argv = [*redis_argv(), "--no-such-option", "x"]
    with pytest.raises(ServerExitedEarly, match="exited with code 1 before it was ready"):
        ServerProcess(argv, ready=Probe(redis_ping), name="redis").start()


def test_a_probe_error_is_shown_when_never_ready() -> None:
    def refuses(address: tuple[str, int]) -> bool:
        raise ConnectionRefusedError(f"nothing on {address[1]}")

    server = ServerProcess(redis_argv(), ready=Probe(refuses), name="redis", ready_timeout=0.5)
    with pytest.raises(ServerError) as caught:
        server.start()
    assert "still waiting for probe refuses (last: ConnectionRefusedError: nothing on" in str(
        caught.value
    )
    assert not server.running


def test_a_missing_readiness_command_is_an_error_at_once() -> None:
    server = ServerProcess(redis_argv(), ready=Command(["no-such-cli-xyz"]), name="redis")
    with pytest.raises(ChaosnetError, match="readiness command not found: 'no-such-cli-xyz'"):
        server.start()
    assert not server.running


def test_port_placeholder_and_address_together_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\{port\} in argv means chaosnet chooses the port"):
        ServerProcess(redis_argv(), address=("127.0.0.1", 6379))


def test_command_needs_a_list() -> None:
    with pytest.raises(ValueError, match="Command needs a non-empty argv list"):
        Command("redis-cli ping")  # type: ignore[arg-type]


def test_the_plugin_fixture_takes_the_placeholder(
    server_process: object,  # the plugin's factory: everything stopped at teardown
) -> None:
    redis = server_process(redis_argv(), ready=Probe(redis_ping))  # type: ignore[operator]
    assert redis_ping(redis.address)
