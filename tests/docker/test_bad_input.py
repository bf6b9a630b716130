"""Bad input: each case is a clear chaosnet error naming the container, and leaves no container."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chaosnet.backends.docker import DockerBackend
from chaosnet.errors import ChaosnetError
from chaosnet.servers import ownership
from chaosnet.servers.builtin import ready_line
from chaosnet.servers.container import ContainerServer, ImageMissing, PortInUse
from chaosnet.servers.docker_engine import DockerUnavailable, engine_problem
from chaosnet.servers.errors import ServerError, ServerExitedEarly
from tests.docker.conftest import containers_left

ABSENT_IMAGE = "chaosnet-test/absent:never-built"
ADDRESS = ("127.0.0.1", 1)


def _assert_no_container_left() -> None:
    assert containers_left() == []


def _framed_echo(image: str, **options: object) -> ContainerServer:
    return ContainerServer(
        image,
        lambda port: ["framed_echo", "--port", str(port)],
        name="framed",
        ready=ready_line("framed_echo"),
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.usefixtures("docker_engine")
def test_a_missing_image_names_it_and_the_pull_command() -> None:
    with pytest.raises(ImageMissing) as caught:
        ContainerServer(ABSENT_IMAGE, name="db", address=("127.0.0.1", 1)).start()
    message = str(caught.value)
    assert "container 'db'" in message
    assert f"image {ABSENT_IMAGE!r} is not present locally" in message
    assert f"docker pull {ABSENT_IMAGE}" in message
    _assert_no_container_left()


def test_a_port_someone_listens_on_is_refused_before_anything_starts(servers_image: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        address = taken.getsockname()
        with pytest.raises(PortInUse) as caught:
            _framed_echo(servers_image, address=address).start()
    message = str(caught.value)
    assert f"container 'framed': 127.0.0.1:{address[1]} is already taken" in message
    _assert_no_container_left()


def test_a_port_bound_elsewhere_makes_the_server_exit_with_its_log(servers_image: str) -> None:
    with socket.socket() as bound:  # bound, not listening: only the server's bind() can tell
        bound.bind(("127.0.0.1", 0))
        address = bound.getsockname()
        with pytest.raises(ServerExitedEarly) as caught:
            _framed_echo(servers_image, address=address).start()
    error = caught.value
    assert error.returncode == 1
    assert error.name == "framed"
    assert "container 'framed' exited with code 1 before it was ready" in str(error)
    assert f"cannot listen on 127.0.0.1:{address[1]}" in error.log_tail
    _assert_no_container_left()


def test_a_container_that_exits_at_start_reports_its_exit_code_and_log(servers_image: str) -> None:
    server = ContainerServer(
        servers_image, ["echo", "--port", "not-a-port"], name="typo", ready=ready_line("echo")
    )
    with pytest.raises(ServerExitedEarly) as caught:
        server.start()
    error = caught.value
    assert error.returncode == 2  # argparse's usage error
    assert "container 'typo' exited with code 2" in str(error)
    assert "invalid int value: 'not-a-port'" in str(error)  # from its log
    _assert_no_container_left()


@pytest.mark.parametrize(
    ("init", "says"),
    [
        (True, "exited with code 127 before it was ready"),  # docker-init's exec fails inside
        (False, "could not start"),  # the engine's exec fails: the start call is refused
    ],
)
def test_a_program_missing_from_the_image_is_named(
    servers_image: str, init: bool, says: str
) -> None:
    server = ContainerServer(
        servers_image,
        [],
        entrypoint=["/no/such/program"],
        name="ghost",
        ready=ready_line("echo"),
        init=init,
    )
    with pytest.raises(ServerExitedEarly) as caught:
        server.start()
    message = str(caught.value)
    assert f"container 'ghost' {says}" in message
    assert "/no/such/program" in message
    assert "no such file or directory" in message.lower()
    _assert_no_container_left()


def test_an_engine_that_is_not_running_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    socket_path = tmp_path / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    with pytest.raises(DockerUnavailable) as caught:
        ContainerServer("any:image", name="db", address=ADDRESS).start()
    message = str(caught.value)
    assert "cannot start container 'db'" in message
    assert f"no Docker engine answers at unix://{socket_path}: {socket_path} does not exist" in (
        message
    )
    assert "is the Docker daemon running?" in message
    problem = engine_problem()
    assert problem is not None
    assert str(socket_path) in problem
    with pytest.raises(DockerUnavailable):
        DockerBackend("any:image").start()
    assert ownership.reap_orphans() == []  # nothing to reap where no engine answers


def test_a_stale_engine_socket_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    socket_path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as stale:  # a daemon that died and left its socket
        stale.bind(str(socket_path))
        monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
        with pytest.raises(DockerUnavailable) as caught:
            ContainerServer("any:image", name="db", address=ADDRESS).start()
    message = str(caught.value)
    assert f"cannot start container 'db': no Docker engine answers at unix://{socket_path}" in (
        message
    )
    assert "Connection refused" in message


def test_reserved_and_unknown_docker_options_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="chaosnet sets network_mode, ports itself"):
        ContainerServer(
            "img", address=ADDRESS, options={"ports": {"80/tcp": 8080}, "network_mode": "bridge"}
        )
    with pytest.raises(ValueError, match="unknown docker run option"):
        ContainerServer("img", address=ADDRESS, options={"no_such_option": 1})


def test_a_port_check_without_an_address_is_refused_before_starting() -> None:
    with pytest.raises(ValueError, match="PortAccepts needs an address"):
        ContainerServer("img", ["serve"])


@pytest.mark.usefixtures("docker_engine")
def test_the_docker_backend_names_the_missing_image_and_the_pull_command() -> None:
    backend = DockerBackend(ABSENT_IMAGE)
    with pytest.raises(ImageMissing, match=f"docker pull {ABSENT_IMAGE}"):
        backend.start()
    with pytest.raises(ChaosnetError, match="docker backend is not started"):
        _ = backend.url
    _assert_no_container_left()


def test_every_container_error_is_a_chaosnet_error() -> None:
    for error in (ImageMissing, PortInUse, ServerExitedEarly, DockerUnavailable):
        assert issubclass(error, ChaosnetError)
    assert issubclass(ImageMissing, ServerError)
