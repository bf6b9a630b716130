"""Fixtures for the hardening tests: an embedded server with short connection bounds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaosnet.proxy.embedded import EmbeddedServer
from tests.proxy.conftest import _loop_library_ready, echo_server  # noqa: F401
from tests.proxy.support import Api

IDLE_S = 0.5  # the server's idle/header-read bound in these tests (10 s by default)


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    """An embedded server; the test fails if an exception escaped its engine."""
    with EmbeddedServer(seed=7, idle_timeout=IDLE_S) as running:
        yield running
        errors = running.take_errors()
    assert not errors, f"engine errors: {errors!r}"


@pytest.fixture
def api(server: EmbeddedServer) -> Iterator[Api]:
    client = Api(server.url)
    yield client
    client.close()
