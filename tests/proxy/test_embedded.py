"""EmbeddedServer: fast start, clean stop, clear errors, engine errors surfaced."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from chaosnet.errors import ChaosnetError
from chaosnet.proxy import toxics
from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.proxy.toxics.base import Toxic
from tests.proxy.support import Api, Upstream, connect, listen_address, recv_all, round_trip


def proxy_threads() -> set[threading.Thread]:
    """Embedded-server threads alive now (others, e.g. a session's, may share the process)."""
    return {t for t in threading.enumerate() if t.name == "chaosnet-proxy"}


def test_starts_in_milliseconds_and_reports_its_address() -> None:
    others = proxy_threads()
    start = time.monotonic()
    server = EmbeddedServer(seed=5).start()
    try:
        assert time.monotonic() - start < 0.5
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert (server.host, server.seed) == ("127.0.0.1", 5)
        api = Api(server.url)
        assert api.get("/version").status == 200
        api.close()
    finally:
        server.stop()
    server.stop()  # idempotent
    assert proxy_threads() == others


def test_seed_is_chosen_when_not_given() -> None:
    with EmbeddedServer() as server:
        api = Api(server.url)
        assert api.get("/chaosnet").body["seed"] == server.seed
        api.close()


def test_taken_port_is_a_clear_error() -> None:
    others = proxy_threads()
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ChaosnetError, match=f"cannot listen on 127.0.0.1:{port}"):
            EmbeddedServer(port=port).start()
    finally:
        taken.close()
    assert proxy_threads() == others


class ExplodingToxic(Toxic):
    type_name = "explode"
    __slots__ = ()

    def on_data(self, data: bytes) -> None:
        raise RuntimeError("toxic bug")


def test_an_exception_in_a_toxic_is_surfaced_and_contained(
    monkeypatch: pytest.MonkeyPatch, echo_server: Upstream
) -> None:
    monkeypatch.setitem(toxics.REGISTRY, "explode", ExplodingToxic)
    with EmbeddedServer() as server:
        api = Api(server.url)
        address = listen_address(api.create_proxy("p", echo_server.address))
        with connect(address) as bystander:
            api.add_toxic("p", "explode", max_connections=1)
            with connect(address) as victim:
                victim.sendall(b"x")
                with pytest.raises(ConnectionResetError):
                    recv_all(victim)
            bystander.sendall(b"fine")
            assert bystander.recv(4) == b"fine"
        assert round_trip(address) == b"ping"
        errors = server.take_errors()
        assert [str(e) for e in errors] == ["toxic bug"]
        assert server.take_errors() == []  # drained
        record = api.get("/proxies/p/connections").body["connections"][1]
        assert record["closed_by"] == "proxy"
        assert "toxic bug" in record["error"]
        api.close()
