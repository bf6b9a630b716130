"""Issue 14, control API: malformed input is a JSON 4xx, connections are bounded in time
and number, browsers and other sites are refused, and nothing blocks the event loop."""

from __future__ import annotations

import gzip
import socket
import time
import zlib

import pytest

from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.proxy.httpconn import MAX_CONNECTIONS
from tests.hardening.conftest import IDLE_S
from tests.hardening.rawhttp import RawReply, exchange, request
from tests.proxy.support import Api, Upstream

VERSION_BUDGET_S = 0.1
HUGE_PORT = "9" * 5000
_ZEROS = b"\0" * (64 << 20)
BOMBS = {"gzip": gzip.compress(_ZEROS, 1), "deflate": zlib.compress(_ZEROS, 1)}  # 64 MiB inflated
del _ZEROS


def answered(server: EmbeddedServer, data: bytes, **kwargs: bool) -> RawReply:
    reply = exchange((server.host, server.port), data, **kwargs)
    assert reply is not None, "the server closed the connection without answering"
    return reply


def assert_json_error(reply: RawReply, status: int, *words: str) -> None:
    assert reply.status == status, reply
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    body = reply.json()
    assert body["status"] == status
    for word in words:
        assert word in body["error"], body


def version_time(server: EmbeddedServer) -> float:
    start = time.monotonic()
    reply = answered(server, request("GET", "/version"))
    assert reply.status == 200
    return time.monotonic() - start


# -- 1. one strict parser for ports and hosts ------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("listen", "127.0.0.1:²", ["listen", "port must be a number"]),
        ("upstream", "127.0.0.1:²", ["upstream", "port must be a number"]),
        ("listen", f"127.0.0.1:{HUGE_PORT}", ["listen", "5000 characters"]),
        ("upstream", f"127.0.0.1:{HUGE_PORT}", ["upstream", "port must be a number"]),
        ("listen", "a..b:0", ["listen"]),
        ("upstream", "a..b:9", ["upstream", "invalid host"]),
        ("upstream", f"{'x' * 64}.example:9", ["upstream", "too long"]),
        ("upstream", f"{'a.' * 130}b:9", ["upstream", "longer than 253"]),
        ("listen", "[not-v6]:0", ["listen", "IPv6"]),
    ],
)
def test_malformed_addresses_are_400(
    api: Api, echo_server: Upstream, field: str, value: str, words: list[str]
) -> None:
    body = {"name": "p", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_server.port}"}
    reply = api.post("/proxies", {**body, field: value})
    assert reply.status == 400, reply
    assert all(word in reply.body["error"] for word in words), reply.body
    assert len(reply.body["error"]) < 300  # a 5,000-digit port is not echoed back whole
    api.create_proxy("ok", echo_server.address)
    patch = api.patch("/proxies/ok", {field: value})
    assert patch.status == 400, patch


@pytest.mark.parametrize("query", ["wait_open=%C2%B2", f"wait_open=0&timeout_ms={HUGE_PORT}"])
def test_malformed_connection_wait_is_400(api: Api, echo_server: Upstream, query: str) -> None:
    api.create_proxy("w", echo_server.address)
    reply = api.get(f"/proxies/w/connections?{query}")
    assert reply.status == 400, reply
    assert "must be a whole number" in reply.body["error"]


def test_listen_host_is_never_resolved_on_the_loop(api: Api, echo_server: Upstream) -> None:
    # 9. A name other than localhost would need a resolver call on the event loop.
    reply = api.post(
        "/proxies", {"name": "n", "listen": "example.com:0", "upstream": "127.0.0.1:1"}
    )
    assert reply.status == 400, reply
    assert "IP address or localhost" in reply.body["error"]
    made = api.post(
        "/proxies",
        {"name": "l", "listen": "LOCALHOST:0", "upstream": f"127.0.0.1:{echo_server.port}"},
    )
    assert made.status == 201, made
    assert made.body["listen"].startswith("127.0.0.1:")


# -- 4. compressed bodies are refused before anything inflates them -------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "GZIP"])
def test_encoded_bodies_are_415_and_never_inflated(server: EmbeddedServer, encoding: str) -> None:
    bomb = BOMBS["deflate" if encoding == "deflate" else "gzip"]
    reply = answered(
        server,
        request("POST", "/proxies", headers={"Content-Encoding": encoding}, body=bomb),
    )
    assert_json_error(reply, 415, "Content-Encoding", "uncompressed")
    assert version_time(server) < VERSION_BUDGET_S  # nothing is inflating on the loop


def test_plain_text_body_with_encoding_header_is_415(server: EmbeddedServer) -> None:
    reply = answered(
        server, request("POST", "/proxies", headers={"Content-Encoding": "gzip"}, body=b"{}")
    )
    assert_json_error(reply, 415, "gzip")


# -- 5. connections are bounded in time and number ------------------------------------------------


def closed_by_server(sock: socket.socket, within: float) -> float:
    """Seconds until the server closed ``sock`` (EOF); fails if it stays open ``within``."""
    start = time.monotonic()
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pytest.fail(f"the API kept the connection open for {within} s")
    return time.monotonic() - start


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"GET /version HTTP/1.1\r\nHost: local",
        b"GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ],
    ids=["idle", "partial-header", "keep-alive"],
)
def test_api_connections_time_out(server: EmbeddedServer, sent: bytes) -> None:
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(sent)
        waited = closed_by_server(sock, within=IDLE_S * 8)
    assert IDLE_S * 0.5 <= waited <= IDLE_S * 6


def test_slow_body_is_408(server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaosnet.proxy import httpconn

    monkeypatch.setattr(httpconn.read_body, "__defaults__", (0.3,))
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request("POST", "/proxies", headers={"Content-Length": "100"}) + b"{")
        data = b""
        while b'"status": 408' not in data and (chunk := sock.recv(65536)):
            data += chunk
    assert b" 408 " in data.split(b"\r\n")[0], data
    assert b"request body not received within 0.3 s" in data


def test_idle_connections_never_shut_the_api_out(server: EmbeddedServer) -> None:
    idle = [
        socket.create_connection((server.host, server.port)) for _ in range(MAX_CONNECTIONS + 64)
    ]
    try:
        assert version_time(server) < VERSION_BUDGET_S * 5
        closed = 0
        for sock in idle[:64]:
            sock.settimeout(2)
            closed += sock.recv(1) == b""
        assert closed == 64  # the oldest idle ones made room
    finally:
        for sock in idle:
            sock.close()


# -- 6. a half-closed request is answered ----------------------------------------------------


def test_half_closed_request_is_answered(server: EmbeddedServer) -> None:
    for _ in range(20):
        reply = answered(
            server, b"GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n", half_close=True
        )
        assert reply.status == 200
        assert b'"version"' in reply.body


# -- 7. every error body is JSON, aiohttp's own parser errors included -------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"FOO /version HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"get /version HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /v\xc3\xa9rsion HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /version HTTP/1.1\r\n\r\n",
        b"GET /version HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET /version HTTP/9.9\r\nHost: localhost\r\n\r\n",
        b"GET /version HTTP/1.1\r\nHost: localhost\r\nContent-Length: -4\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls",
        b"GET /version HTTP/1.1\r\nHost: localhost\r\nExpect: gzip\r\n\r\n",  # fuzzer
    ],
    ids=[
        "FOO",
        "lowercase",
        "non-ascii",
        "star",
        "no-host",
        "bad-header",
        "version",
        "length",
        "tls",
        "expect",
    ],
)
def test_parser_errors_are_json(server: EmbeddedServer, raw: bytes) -> None:
    reply = answered(server, raw)
    assert 400 <= reply.status < 500, reply
    assert reply.headers["content-type"].startswith("application/json"), reply
    assert reply.json()["status"] == reply.status


# -- 8. DNS rebinding and cross-site requests --------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"Host": "evil.com"}, ["evil.com", "loopback"]),
        ({"Host": "evil.com:8474"}, ["evil.com"]),
        ({"Host": "127.0.0.1.evil.com"}, ["loopback"]),
        ({"Origin": "http://evil.com"}, ["Origin"]),
        ({"Origin": "null"}, ["Origin"]),
        ({"Sec-Fetch-Site": "cross-site"}, ["cross-site"]),
        ({"Sec-Fetch-Site": "same-site"}, ["same-site"]),
        ({"User-Agent": "mozilla/5.0"}, ["User agent"]),
        ({"User-Agent": "MOZILLA/5.0 (X11)"}, ["User agent"]),
    ],
)
def test_cross_site_requests_are_403(
    server: EmbeddedServer, headers: dict[str, str], words: list[str]
) -> None:
    host = headers.pop("Host", "localhost")
    reply = answered(server, request("GET", "/version", headers=headers, host=host))
    assert_json_error(reply, 403, *words)


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "localhost"},
        {"Host": "LocalHost:8474"},
        {"Host": "127.0.0.1"},
        {"Host": "127.0.0.1:8474"},
        {"Host": "[::1]:8474"},
        {"Host": "localhost", "Origin": "http://127.0.0.1:3000"},
        {"Host": "localhost", "Sec-Fetch-Site": "same-origin"},
        {"Host": "localhost", "User-Agent": "python-requests/2.32"},
    ],
)
def test_local_requests_are_served(server: EmbeddedServer, headers: dict[str, str]) -> None:
    host = headers.pop("Host")
    reply = answered(server, request("GET", "/version", headers=headers, host=host))
    assert reply.status == 200, reply
