"""Docker fixtures other test areas can use too (``pytest_plugins = ["tests.docker.fixtures"]``
in the top-level conftest): a reachable engine, the locally built images, builtin servers in
containers. Without an engine they skip, naming what is missing (fail in CI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaosnet.servers.builtin import ready_line
from chaosnet.servers.container import ContainerServer
from chaosnet.servers.docker_engine import docker_client, engine_problem
from tests import toolchain
from tests.docker import images


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine answers, or the test skips (fails in CI) saying which is missing."""
    problem = engine_problem()
    if problem is not None:
        toolchain.missing(problem)


@pytest.fixture(scope="session")
def servers_image(docker_engine: None) -> str:
    """A local image whose entrypoint runs chaosnet's builtin servers: ``KIND --port P``."""
    with docker_client() as client, images.BuildLock():
        images.ensure_runtime_image(client)
        images.ensure_servers_image(client)
    return images.SERVERS_IMAGE


@pytest.fixture(scope="session")
def chaosnet_image(docker_engine: None) -> str:
    """The repository's Dockerfile (``chaosnet serve`` with Toxiproxy's flags), built locally."""
    with docker_client() as client, images.BuildLock():
        images.ensure_runtime_image(client)
        images.ensure_chaosnet_image(client)
    return images.CHAOSNET_IMAGE


@pytest.fixture(scope="session")
def toxiproxy_image(docker_engine: None, toxiproxy_bins: tuple[Path, Path]) -> str:
    """A local FROM-scratch Toxiproxy image, laid out like ghcr.io/shopify/toxiproxy."""
    with docker_client() as client, images.BuildLock():
        images.ensure_toxiproxy_image(client, toxiproxy_bins[0])
    return images.TOXIPROXY_IMAGE


def builtin_container(image: str, kind: str, **options: Any) -> ContainerServer:
    """A builtin server in a container, on port 0, its port read from its ready line."""
    return ContainerServer(
        image,
        lambda port: [kind, "--port", str(port)],
        name=options.pop("name", kind),
        ready=ready_line(kind),
        **options,
    )
