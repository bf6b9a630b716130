"""Fixtures of the Docker tests: a reachable engine, the locally built images, containers.

On a machine without a Docker engine every test here skips, naming what is
missing (in CI, ``CHAOSNET_REQUIRE_ALL=1`` turns that into a failure).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chaosnet import leaks
from chaosnet.backends.docker import DockerBackend
from chaosnet.servers import ownership
from chaosnet.servers.container import ContainerServer
from chaosnet.servers.docker_engine import docker_client
from tests.docker.fixtures import builtin_container


class Shared:
    """Containers that outlive one test (module-scoped fixtures): not leftovers."""

    def __init__(self) -> None:
        self.holders: list[ContainerServer | DockerBackend] = []

    def keep(self, holder: ContainerServer | DockerBackend) -> None:
        self.holders.append(holder)

    def drop(self, holder: ContainerServer | DockerBackend) -> None:
        self.holders.remove(holder)

    def holds(self, container_id: str) -> bool:
        resource = leaks.Resource("container", container_id)
        return any(holder.exempts(resource) for holder in self.holders)


shared = Shared()


def containers_left() -> list[dict[str, Any]]:
    """This process's containers, the shared ones apart."""
    return [c for c in ownership.labelled_containers() if not shared.holds(c["Id"])]


@pytest.fixture(scope="module")
def shared_framed_echo(servers_image: str) -> Iterator[ContainerServer]:
    """One framed_echo container for the tests of a module that do not disturb it."""
    server = builtin_container(servers_image, "framed_echo", name="shared-framed-echo").start()
    shared.keep(server)
    yield server
    shared.drop(server)
    server.stop()


@pytest.fixture(scope="module")
def shared_toxiproxy(toxiproxy_image: str) -> Iterator[DockerBackend]:
    """Toxiproxy in Docker (the docker backend) for the tests of a module; each test removes
    the proxies it made (``Chaos``)."""
    backend = DockerBackend(toxiproxy_image)
    backend.start()
    shared.keep(backend)
    yield backend
    shared.drop(backend)
    backend.stop()


@pytest.fixture(autouse=True)
def no_container_left() -> Iterator[None]:
    """After each test, this process owns no container but the shared ones: each test
    removes what it made."""
    yield
    if not ownership.created_any():
        return
    left = containers_left()
    if left:
        with docker_client() as client:
            for container in left:
                client.api.remove_container(container["Id"], force=True)
        names = [c["Names"][0].lstrip("/") for c in left]
        pytest.fail(f"containers left behind: {', '.join(names)}", pytrace=False)
