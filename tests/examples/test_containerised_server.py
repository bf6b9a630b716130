"""A real server in a container, a fault-injecting proxy in front, a client that recovers."""

from __future__ import annotations

from chaosnet.chaos import Chaos
from chaosnet.connection import FramedClient
from chaosnet.retry import RetryDetails, RetryPolicy
from chaosnet.servers.builtin import ready_line
from chaosnet.servers.factories import ContainerFactory


def test_client_survives_a_reset_in_front_of_a_container(
    chaos: Chaos, docker_server: ContainerFactory, servers_image: str
) -> None:
    server = docker_server(
        servers_image,
        lambda port: ["framed_echo", "--port", str(port)],  # binds 127.0.0.1, host network
        ready=ready_line("framed_echo"),  # it prints the port it got
    )
    proxy = chaos.proxy(server)
    reset = proxy.toxic("reset_peer", timeout=0)

    def lift(details: RetryDetails) -> None:
        reset.remove()

    policy = RetryPolicy(attempts=3, deadline=5.0, initial=0.01, on_retry=lift)
    with FramedClient(proxy.address, retry=policy) as client:
        assert client.request(b"from a container") == b"from a container"
        assert client.attempts == 2
