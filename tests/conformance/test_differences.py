"""Where chaosnet deliberately differs from Toxiproxy 2.12, shown on both servers.

Each test asserts what each server does, so the list in docs/proxy.md
("Differences from Toxiproxy") stays true. Toxiproxy's behaviour here is a bug
or a sharp edge that chaosnet fixes; the reason is in each docstring.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.conformance.conftest import Backend
from tests.proxy.support import (
    Api,
    Upstream,
    connect,
    listen_address,
    recv_all,
    reset_close,
    upstream,
)


def test_client_half_close_keeps_the_reply(backend: Backend, api: Api) -> None:
    """A client that sends its request and shuts down writing still gets the answer.

    Toxiproxy closes both sockets on the first EOF, so the reply is lost.
    """

    def reply_after_eof(conn: socket.socket) -> None:
        request = recv_all(conn)
        conn.sendall(b"got " + request)
        conn.close()

    with upstream(reply_after_eof) as server:
        address = listen_address(api.create_proxy("d1", server.address))
        with connect(address) as sock:
            sock.sendall(b"question")
            sock.shutdown(socket.SHUT_WR)
            try:
                reply = recv_all(sock)
            except ConnectionResetError:
                reply = b"<reset>"
    assert reply == (b"got question" if backend.is_chaosnet else b"")


def test_reset_peer_toxicity_zero(backend: Backend, api: Api) -> None:
    """Toxiproxy #603: a reset_peer toxic with toxicity 0 still turns closes into resets."""

    def send_and_close(conn: socket.socket) -> None:
        conn.sendall(b"done")
        conn.close()

    with upstream(send_and_close) as server:
        address = listen_address(api.create_proxy("d2", server.address))
        api.add_toxic("d2", "reset_peer", toxicity=0.0)
        if backend.is_chaosnet:
            with connect(address) as sock:
                assert recv_all(sock) == b"done"
        else:  # the reset can beat connect() itself back to the client
            with pytest.raises(ConnectionResetError), connect(address) as sock:
                recv_all(sock)


def test_reset_peer_added_to_a_live_connection(
    backend: Backend, api: Api, echo_server: Upstream
) -> None:
    """Toxiproxy sets SO_LINGER 0 only on connections opened after the toxic, so a live one
    gets a FIN instead of the reset the toxic promises."""
    address = listen_address(api.create_proxy("d3", echo_server.address))
    with connect(address) as sock:
        sock.sendall(b"a")
        assert sock.recv(1) == b"a"
        api.add_toxic("d3", "reset_peer")
        sock.sendall(b"b")
        if backend.is_chaosnet:
            with pytest.raises(ConnectionResetError):
                recv_all(sock)
        else:
            assert recv_all(sock) == b""


def test_upstream_reset_stays_a_reset(backend: Backend, api: Api) -> None:
    """An upstream RST reaches the client as a RST; Toxiproxy turns it into a FIN."""

    def reset_on_data(conn: socket.socket) -> None:
        conn.recv(10)
        reset_close(conn)

    with upstream(reset_on_data) as server:
        address = listen_address(api.create_proxy("d4", server.address))
        with connect(address) as sock:
            sock.sendall(b"boom")
            if backend.is_chaosnet:
                with pytest.raises(ConnectionResetError):
                    recv_all(sock)
            else:
                assert recv_all(sock) == b""


def test_timeout_counts_from_the_start_not_the_last_chunk(
    backend: Backend, api: Api, echo_server: Upstream
) -> None:
    """Toxiproxy restarts the timeout at every chunk, so a chatty client is never cut."""
    address = listen_address(api.create_proxy("d5", echo_server.address))
    api.add_toxic("d5", "timeout", stream="upstream", attributes={"timeout": 150})
    with connect(address) as sock:
        sock.settimeout(0.06)
        start = time.monotonic()
        closed_at = None
        while time.monotonic() - start < 0.45 and closed_at is None:
            try:
                sock.sendall(b"tick")
                if sock.recv(10) == b"":
                    closed_at = time.monotonic() - start
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed_at = time.monotonic() - start
    if backend.is_chaosnet:
        assert closed_at is not None
        assert 0.14 <= closed_at < 0.4
    else:
        assert closed_at is None


@pytest.mark.parametrize(
    "toxic",
    [
        {"type": "latency", "attributes": {"latncy": 10}},
        {"type": "latency", "toxicity": 5},
        {"type": "latency", "attributes": {"latency": -10}},
        {"type": "latency", "colour": "red"},
        {"type": "slicer", "attributes": {"delay": 1}},
    ],
)
def test_strict_toxic_validation(
    backend: Backend, api: Api, echo_server: Upstream, toxic: dict[str, object]
) -> None:
    """Unknown fields, out-of-range values and unusable defaults (a slicer without
    average_size recurses forever in Toxiproxy once data flows) are 400s in chaosnet."""
    api.create_proxy("d6", echo_server.address)
    reply = api.post("/proxies/d6/toxics", toxic)
    assert reply.status == (400 if backend.is_chaosnet else 200)


def test_missing_listen_means_loopback(backend: Backend, api: Api, echo_server: Upstream) -> None:
    """Toxiproxy listens on every interface when ``listen`` is missing; chaosnet on loopback."""
    reply = api.post("/proxies", {"name": "d7", "upstream": f"127.0.0.1:{echo_server.port}"})
    assert reply.status == 201
    host = reply.body["listen"].rpartition(":")[0]
    assert host == ("127.0.0.1" if backend.is_chaosnet else "[::]")


def test_populate_bad_address_is_400(backend: Backend, api: Api, echo_server: Upstream) -> None:
    """A malformed listen address in /populate is the client's mistake: 400, not Toxiproxy's
    500. On both, the entries before it are created and returned with the error."""
    up = f"127.0.0.1:{echo_server.port}"
    reply = api.post(
        "/populate",
        [
            {"name": "d8a", "listen": "127.0.0.1:0", "upstream": up},
            {"name": "d8b", "listen": "local373", "upstream": up},
        ],
    )
    assert reply.status == (400 if backend.is_chaosnet else 500)
    assert [p["name"] for p in reply.body["proxies"]] == ["d8a"]
    if backend.is_chaosnet:
        assert reply.body["error"] == "listen: expected host:port, got 'local373'"
    else:
        assert reply.body["error"] == "listen tcp: address local373: missing port in address"


def test_upstream_is_validated(backend: Backend, api: Api) -> None:
    """An upstream that is not host:port is refused up front instead of failing every dial."""
    reply = api.post("/proxies", {"name": "d9", "upstream": "nohostport"})
    assert reply.status == (400 if backend.is_chaosnet else 201)


def test_errors_are_always_json(backend: Backend) -> None:
    """Toxiproxy answers 403 and unknown paths in plain text; chaosnet always in JSON."""
    browser = Api(backend.url, user_agent="Mozilla/5.0")
    plain = Api(backend.url)
    try:
        forbidden = browser.get("/proxies")
        missing = plain.get("/no/such/path")
    finally:
        browser.close()
        plain.close()
    assert (forbidden.status, missing.status) == (403, 404)
    if backend.is_chaosnet:
        assert forbidden.body == {"error": "User agent not allowed", "status": 403}
        assert missing.body["status"] == 404
    else:
        assert isinstance(forbidden.body, str)
        assert isinstance(missing.body, str)


def test_no_logger_field(backend: Backend, api: Api, echo_server: Upstream) -> None:
    """Toxiproxy 2.12 leaks its internal ``"Logger": {}`` into every proxy object."""
    proxy = api.create_proxy("d10", echo_server.address)
    assert ("Logger" in proxy) is not backend.is_chaosnet
