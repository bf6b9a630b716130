"""The data path without toxics: integrity, half-closes, resets, enable/disable, stop."""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import pytest

from chaosnet.proxy.embedded import EmbeddedServer
from tests.proxy.support import (
    Api,
    Upstream,
    connect,
    echo,
    listen_address,
    recv_all,
    recv_exactly,
    reset_close,
    round_trip,
    upstream,
    wait_for,
)
from tests.support import open_fds


def test_bulk_data_passes_unchanged_both_ways(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    payload = os.urandom(8 << 20)
    with connect(address) as sock:

        def send_then_finish() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send_then_finish)
        sender.start()
        received = recv_all(sock)
        sender.join(5)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_client_half_close_still_gets_the_reply(api: Api) -> None:
    def reply_after_eof(conn: socket.socket) -> None:
        request = recv_all(conn)  # the client's FIN must reach us
        conn.sendall(b"got " + request)
        conn.close()

    with upstream(reply_after_eof) as server:
        address = listen_address(api.create_proxy("p", server.address))
        with connect(address) as sock:
            sock.sendall(b"question")
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b"got question"


def test_server_half_close_lets_the_client_keep_sending(api: Api) -> None:
    received = []

    def greet_then_listen(conn: socket.socket) -> None:
        conn.sendall(b"hello")
        conn.shutdown(socket.SHUT_WR)
        received.append(recv_all(conn))
        conn.close()

    with upstream(greet_then_listen) as server:
        address = listen_address(api.create_proxy("p", server.address))
        with connect(address) as sock:
            assert recv_all(sock) == b"hello"  # EOF from the server's FIN
            sock.sendall(b"still talking")
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b""
        wait_for(lambda: bool(received))
    assert received == [b"still talking"]
    log = api.get("/proxies/p/connections").body
    assert log["connections"][0]["closed_by"] == "upstream"


def test_upstream_down_closes_the_client(api: Api) -> None:
    dead = socket.create_server(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    address = listen_address(api.create_proxy("p", ("127.0.0.1", port)))
    with connect(address) as sock:
        assert recv_all(sock) == b""
    wait_for(lambda: api.get("/proxies/p/connections").body["open"] == 0)
    record = api.get("/proxies/p/connections").body["connections"][0]
    assert record["closed_by"] == "upstream"
    assert "refused" in record["error"].lower()


def test_client_reset_resets_upstream_and_spares_others(api: Api) -> None:
    outcomes: list[str] = []

    def watch(conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                conn.sendall(b"ok")
            outcomes.append("eof")
        except ConnectionResetError:
            outcomes.append("reset")

    with upstream(watch) as server:
        address = listen_address(api.create_proxy("p", server.address))
        bystander = connect(address)
        victim = connect(address)
        victim.sendall(b"x")
        assert recv_exactly(victim, 2) == b"ok"
        reset_close(victim)
        wait_for(lambda: "reset" in outcomes)
        bystander.sendall(b"y")
        assert recv_exactly(bystander, 2) == b"ok"
        bystander.close()
    record = api.get("/proxies/p/connections").body["connections"][1]
    assert (record["closed_by"], record["close_kind"]) == ("client", "rst")


def test_upstream_reset_reaches_the_client_as_a_reset(api: Api) -> None:
    def reset_on_data(conn: socket.socket) -> None:
        conn.recv(10)
        reset_close(conn)

    with upstream(reset_on_data) as server:
        address = listen_address(api.create_proxy("p", server.address))
        with connect(address) as sock:
            sock.sendall(b"boom")
            with pytest.raises(ConnectionResetError):
                recv_all(sock)


def test_disable_refuses_and_closes_enable_listens_again(api: Api, echo_server: Upstream) -> None:
    proxy = api.create_proxy("p", echo_server.address)
    address = listen_address(proxy)
    live = connect(address)
    assert api.post("/proxies/p", {"enabled": False}).body["enabled"] is False
    assert recv_all(live) == b""  # closed by the proxy
    live.close()
    with pytest.raises(ConnectionRefusedError):
        connect(address)
    reply = api.patch("/proxies/p", {"enabled": True})
    assert reply.body["listen"] == proxy["listen"]
    assert round_trip(address) == b"ping"


def test_changing_upstream_restarts_the_proxy(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    live = connect(address)

    def shout(conn: socket.socket) -> None:
        while data := conn.recv(100):
            conn.sendall(data.upper())

    with upstream(shout) as other:
        reply = api.post("/proxies/p", {"upstream": f"127.0.0.1:{other.port}"})
        assert reply.status == 200
        assert recv_all(live) == b""  # the restart closed it
        live.close()
        assert round_trip(listen_address(reply.body), b"abc") == b"ABC"


def test_changing_listen_moves_the_proxy(api: Api, echo_server: Upstream) -> None:
    old = listen_address(api.create_proxy("p", echo_server.address))
    reply = api.patch("/proxies/p", {"listen": "127.0.0.1:0"})
    new = listen_address(reply.body)
    assert new != old
    assert round_trip(new) == b"ping"
    with pytest.raises(ConnectionRefusedError):
        connect(old)


def test_delete_closes_connections(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    with connect(address) as live:
        assert api.delete("/proxies/p").status == 204
        assert recv_all(live) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(address)


def test_many_concurrent_connections(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    socks = [connect(address) for _ in range(100)]
    for i, sock in enumerate(socks):
        sock.sendall(b"%05d" % i)
    for i, sock in enumerate(socks):
        assert recv_exactly(sock, 5) == b"%05d" % i
        sock.close()
    wait_for(lambda: api.get("/proxies/p/connections").body["open"] == 0)
    assert api.get("/proxies/p/connections").body["opened"] == 100


def test_stop_closes_everything_and_leaks_nothing() -> None:
    EmbeddedServer().start().stop()  # uvloop opens a process-wide pipe pair on first use
    with upstream(echo) as server:
        before = open_fds()
        embedded = EmbeddedServer(seed=1).start()
        api = Api(embedded.url)
        address = listen_address(api.create_proxy("p", server.address))
        socks = [connect(address) for _ in range(20)]
        for sock in socks:
            sock.sendall(b"x")
            assert recv_exactly(sock, 1) == b"x"
        api.close()
        embedded.stop()
        for sock in socks:
            assert recv_all(sock) == b""  # the proxy closed its end
            sock.close()
        with pytest.raises(ConnectionRefusedError):
            connect(address)
        with pytest.raises(ConnectionRefusedError):
            connect(("127.0.0.1", embedded.port))
        # the upstream's threads close their ends too
        wait_for(lambda: open_fds().keys() <= before.keys())
        assert embedded.take_errors() == []


def test_changing_a_disabled_proxy_keeps_it_disabled(api: Api, echo_server: Upstream) -> None:
    api.create_proxy("p", echo_server.address, enabled=False)
    reply = api.patch("/proxies/p", {"upstream": "127.0.0.1:9"})
    assert reply.body["enabled"] is False
    assert reply.body["upstream"] == "127.0.0.1:9"
