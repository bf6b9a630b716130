"""toxiproxy-python 0.1.1, the client users already have, unmodified against both servers.

Its quirks shape these tests: the server address is a class-level global of
``toxiproxy.api.APIConsumer``, ``add_toxic`` returns nothing, there is no toxic
update, and 500s are not raised.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from tests.conformance.conftest import Backend
from tests.proxy.support import Upstream, connect, recv_all, recv_exactly, round_trip


@pytest.fixture
def toxiproxy(backend: Backend) -> Iterator[Toxiproxy]:
    saved = APIConsumer.host, APIConsumer.port
    APIConsumer.host, APIConsumer.port = "127.0.0.1", backend.port
    try:
        yield Toxiproxy()
    finally:
        APIConsumer.host, APIConsumer.port = saved


def address_of(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


def test_running_and_version(toxiproxy: Toxiproxy) -> None:
    assert toxiproxy.running() is True
    assert b'"version"' in toxiproxy.version()


def test_create_list_get_destroy(toxiproxy: Toxiproxy, echo_server: Upstream) -> None:
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo_server.port}", name="py1")
    assert proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:")
    assert not proxy.listen.endswith(":0")
    assert round_trip(address_of(proxy.listen), b"py") == b"py"
    assert set(toxiproxy.proxies()) == {"py1"}
    assert toxiproxy.get_proxy("py1").listen == proxy.listen
    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream=f"127.0.0.1:{echo_server.port}", name="py1")
    assert toxiproxy.destroy(proxy) is True
    assert toxiproxy.get_proxy("py1") is None
    with pytest.raises(NotFound):
        proxy.destroy()


def test_toxics(toxiproxy: Toxiproxy, echo_server: Upstream) -> None:
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo_server.port}", name="py2")
    proxy.add_toxic(type="latency", attributes={"latency": 50})
    proxy.add_toxic(type="limit_data", stream="upstream", name="cap", attributes={"bytes": 3})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "cap"}
    assert toxics["latency_downstream"].attributes == {"latency": 50, "jitter": 0}
    assert toxics["cap"].stream == "upstream"
    assert proxy.get_toxic("cap").type == "limit_data"
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    assert proxy.destroy_toxic("cap") is True
    with connect(address_of(proxy.listen)) as sock:
        sock.sendall(b"hello")
        assert recv_exactly(sock, 5) == b"hello"
    with pytest.raises(NotFound):
        proxy.destroy_toxic("cap")


def test_disable_enable_and_down(toxiproxy: Toxiproxy, echo_server: Upstream) -> None:
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo_server.port}", name="py3")
    address = address_of(proxy.listen)
    with proxy.down():
        assert toxiproxy.get_proxy("py3").enabled is False
        with pytest.raises(ConnectionRefusedError):
            connect(address)
    assert toxiproxy.get_proxy("py3").enabled is True
    assert round_trip(address) == b"ping"
    proxy.disable()
    assert proxy.enabled is False
    proxy.enable()
    assert round_trip(address) == b"ping"


def test_reset(toxiproxy: Toxiproxy, echo_server: Upstream) -> None:
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo_server.port}", name="py4")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert toxiproxy.reset() is True
    again = toxiproxy.get_proxy("py4")
    assert again.enabled is True
    assert again.toxics() == {}
    with connect(address_of(again.listen)) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"


def test_populate_and_destroy_all(toxiproxy: Toxiproxy, echo_server: Upstream) -> None:
    up = f"127.0.0.1:{echo_server.port}"
    created = toxiproxy.populate(
        [
            {"name": "py5", "upstream": up, "listen": "127.0.0.1:0"},
            {"name": "py6", "upstream": up, "listen": "127.0.0.1:0"},
        ]
    )
    assert sorted(p.name for p in created) == ["py5", "py6"]
    assert set(toxiproxy.proxies()) == {"py5", "py6"}
    toxiproxy.destroy_all()
    assert toxiproxy.proxies() == {}


def test_reset_peer_seen_by_a_client(toxiproxy: Toxiproxy, echo_server: Upstream) -> None:
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo_server.port}", name="py7")
    proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
    with connect(address_of(proxy.listen)) as sock:
        sock.sendall(b"x")
        with pytest.raises(ConnectionResetError):
            recv_all(sock)
