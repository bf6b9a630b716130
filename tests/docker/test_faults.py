"""Faults injected in front of a containerised server, through chaosnet's embedded proxy and
through Toxiproxy in Docker (the ``docker`` backend), and a client with retries recovering."""

from __future__ import annotations

import pytest

from chaosnet.backends import open_backend
from chaosnet.backends.docker import DockerBackend
from chaosnet.backends.embedded import EmbeddedBackend
from chaosnet.chaos import Chaos, ToxicHandle
from chaosnet.connection import FramedClient
from chaosnet.control import ControlClient
from chaosnet.retry import RetryDetails, RetryPolicy, is_transient
from chaosnet.servers.container import ContainerServer
from chaosnet.servers.docker_engine import docker_client
from chaosnet.settings import DEFAULT_DOCKER_IMAGE


@pytest.fixture
def framed_echo(shared_framed_echo: ContainerServer) -> ContainerServer:
    return shared_framed_echo


@pytest.fixture
def toxiproxy_in_docker(shared_toxiproxy: DockerBackend) -> DockerBackend:
    return shared_toxiproxy


def _healing_policy(toxic: list[ToxicHandle], errors: list[BaseException]) -> RetryPolicy:
    """Retries; the first failure removes the fault (an event, not a timer)."""

    def heal(details: RetryDetails) -> None:
        errors.append(details.error)
        while toxic:
            toxic.pop().remove()

    return RetryPolicy(attempts=5, deadline=5.0, initial=0.01, on_retry=heal)


def test_the_docker_backend_runs_the_toxiproxy_api_on_loopback(
    toxiproxy_in_docker: DockerBackend,
) -> None:
    assert toxiproxy_in_docker.url.startswith("http://127.0.0.1:")
    client = ControlClient(toxiproxy_in_docker.url, backend="docker")
    assert client.version()["version"] == "2.12.0"
    assert client.extensions == frozenset()  # the real Toxiproxy: no chaosnet extension
    assert "Starting Toxiproxy" in toxiproxy_in_docker.log_tail()
    assert toxiproxy_in_docker.take_errors() == []


def test_a_client_recovers_from_a_reset_injected_by_toxiproxy_in_docker(
    toxiproxy_in_docker: DockerBackend, framed_echo: ContainerServer
) -> None:
    control = ControlClient(toxiproxy_in_docker.url, backend="docker")
    with Chaos(control) as chaos:
        proxy = chaos.proxy(framed_echo)
        fault = [proxy.toxic("reset_peer", timeout=0)]
        errors: list[BaseException] = []
        with FramedClient(proxy.address, retry=_healing_policy(fault, errors)) as client:
            assert client.request(b"ping") == b"ping"
    assert len(errors) == 1
    assert is_transient(errors[0])


def test_a_client_recovers_from_a_refusal_by_toxiproxy_in_docker(
    toxiproxy_in_docker: DockerBackend, framed_echo: ContainerServer
) -> None:
    control = ControlClient(toxiproxy_in_docker.url, backend="docker")
    with Chaos(control) as chaos:
        proxy = chaos.proxy(framed_echo)
        proxy.disable()
        refused: list[BaseException] = []

        def enable(details: RetryDetails) -> None:
            refused.append(details.error)
            proxy.enable()

        policy = RetryPolicy(attempts=5, deadline=5.0, initial=0.01, on_retry=enable)
        with FramedClient(proxy.address, retry=policy) as client:
            assert client.request(b"ping") == b"ping"
    assert [type(e) for e in refused] == [ConnectionRefusedError]


def test_a_client_recovers_from_a_reset_injected_by_the_embedded_proxy(
    framed_echo: ContainerServer,
) -> None:
    backend = EmbeddedBackend(seed=1)
    backend.start()
    try:
        with Chaos(ControlClient(backend.url, backend="embedded")) as chaos:
            proxy = chaos.proxy(framed_echo)
            policy = RetryPolicy(attempts=5, deadline=5.0, initial=0.01)
            with (
                proxy.toxic("reset_peer", timeout=0, max_connections=1),
                FramedClient(proxy.address, retry=policy) as client,
            ):
                assert client.request(b"ping") == b"ping"  # 1st connection reset, 2nd answers
            log = proxy.wait_connections(open=0)
            assert log.opened == 2
    finally:
        backend.stop()
    assert backend.take_errors() == []


def test_a_toxiproxy_container_that_dies_is_reported_by_take_errors(
    toxiproxy_image: str,
) -> None:
    backend = open_backend("docker", docker_image=toxiproxy_image)
    assert isinstance(backend, DockerBackend)
    backend.start()
    try:
        _kill_and_check_reported(backend)
    finally:
        backend.stop()
    assert backend.take_errors() == []  # stopped: nothing more to report


def _kill_and_check_reported(backend: DockerBackend) -> None:
    server = backend.server
    assert server is not None
    assert server.container_id is not None
    with docker_client() as client:
        client.api.kill(server.container_id)
    assert server.wait(5.0) == -9
    errors = backend.take_errors()
    assert len(errors) == 1
    assert "Toxiproxy container (chaosnet-test/toxiproxy:2.12.0) stopped unexpectedly" in str(
        errors[0]
    )
    assert "Starting Toxiproxy" in str(errors[0])


def test_the_default_image_is_the_upstream_one() -> None:
    assert DockerBackend().image == DEFAULT_DOCKER_IMAGE == "ghcr.io/shopify/toxiproxy:2.12.0"
    assert DockerBackend(None).name == "docker"
