"""Fixtures for the embedded proxy's tests: a fresh server per test, real upstreams."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.proxy.loop import prepare_process
from tests.proxy.support import (
    Api,
    echo_server,  # noqa: F401  (the one definition, shared)
)

SEED = 1234


@pytest.fixture(scope="session", autouse=True)
def _loop_library_ready() -> None:
    prepare_process()  # uvloop's once-per-process pipe is not a leak of the first test


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    """An embedded server; the test fails if an exception escaped its engine."""
    with EmbeddedServer(seed=SEED) as running:
        yield running
        errors = running.take_errors()
    assert not errors, f"engine errors: {errors!r}"


@pytest.fixture
def api(server: EmbeddedServer) -> Iterator[Api]:
    client = Api(server.url)
    yield client
    client.close()
