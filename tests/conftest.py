"""Fixtures shared by every area of the test-suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import toolchain

# Docker fixtures (engine, locally built images) for every area that runs containers.
from tests.docker.fixtures import (  # noqa: F401
    chaosnet_image,
    docker_engine,
    servers_image,
    toxiproxy_image,
)


@pytest.fixture(scope="session")
def toxiproxy_bins() -> tuple[Path, Path]:
    """(toxiproxy-server, toxiproxy-cli) of the pinned real Toxiproxy."""
    found = toolchain.toxiproxy_binaries()
    if isinstance(found, str):
        toolchain.missing(found)
        raise AssertionError("unreachable")
    return found
