"""``GET /proxies/{name}/connections?wait_open=N``: wait on the event, not by polling."""

from __future__ import annotations

import threading
import time

import pytest

from chaosnet.chaos import Chaos
from chaosnet.control import ControlClient
from chaosnet.errors import ChaosnetError
from chaosnet.proxy.embedded import EmbeddedServer
from tests.proxy.support import Api, Upstream, connect, listen_address


def test_the_answer_waits_for_the_close_the_proxy_has_not_seen_yet(
    api: Api, echo_server: Upstream
) -> None:
    address = listen_address(api.create_proxy("w", echo_server.address))
    sock = connect(address)
    assert api.get("/proxies/w/connections?wait_open=1&timeout_ms=5000").body["open"] == 1
    closer = threading.Timer(0.05, sock.close)  # closes while the request below waits
    closer.start()
    started = time.monotonic()
    body = api.get("/proxies/w/connections?wait_open=0&timeout_ms=5000").body
    elapsed = time.monotonic() - started
    closer.join()
    assert body["open"] == 0
    assert body["connections"][0]["closed_by"] == "client"
    assert 0.04 <= elapsed < 2.0  # answered on the close, long before the timeout


def test_a_wait_that_times_out_answers_with_the_current_log(
    api: Api, echo_server: Upstream
) -> None:
    address = listen_address(api.create_proxy("t", echo_server.address))
    with connect(address):
        started = time.monotonic()
        body = api.get("/proxies/t/connections?wait_open=0&timeout_ms=100").body
        assert 0.09 <= time.monotonic() - started < 2.0
        assert body["open"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("wait_open=-1", "wait_open"),
        ("wait_open=x", "wait_open"),
        ("wait_open=0&timeout_ms=60001", "timeout_ms"),
        ("wait_open=0&timeout_ms=1.5", "timeout_ms"),
    ],
)
def test_bad_wait_parameters_are_400_naming_them(
    api: Api, echo_server: Upstream, query: str, field: str
) -> None:
    api.create_proxy("b", echo_server.address)
    reply = api.get(f"/proxies/b/connections?{query}")
    assert reply.status == 400
    assert reply.body["error"].startswith(f"{field}:")


def test_proxy_wait_connections_raises_when_the_count_is_not_reached(
    server: EmbeddedServer, echo_server: Upstream
) -> None:
    with Chaos(ControlClient(server.url)) as chaos:
        proxy = chaos.proxy(echo_server.address)
        with connect(proxy.address):
            assert proxy.wait_connections(open=1).opened == 1
            expected = r"1 connection\(s\) open after 0.1s, expected 0"
            with pytest.raises(ChaosnetError, match=expected):
                proxy.wait_connections(open=0, timeout=0.1)
        assert proxy.wait_connections(open=0).open == 0
