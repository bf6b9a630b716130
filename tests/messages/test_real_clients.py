"""Message faults through real sockets, seen by real clients: redis-py and httpx.

Each test names the fault the way a user thinks of it ("the 3rd reply", "the first
two requests") and checks both what the client saw and what the proxy's message
log recorded on the wire.
"""

from __future__ import annotations

import http.client
import socket
from typing import BinaryIO

import httpx
import pytest
import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from chaosnet.chaos import Chaos
from chaosnet.retry import RetryPolicy
from chaosnet.servers.process import ServerProcess

TIMEOUT_S = 5.0


def redis_client(proxy_address: tuple[str, int], retries: int = 0) -> redis.Redis:
    # RESP2 and no CLIENT SETINFO: no handshake, the replies are exactly the test's commands
    # (redis-py 8's RESP3 handshake is HELLO and CLIENT MAINT_NOTIFICATIONS, two replies more).
    return redis.Redis(
        host=proxy_address[0],
        port=proxy_address[1],
        socket_timeout=TIMEOUT_S,
        driver_info=None,
        protocol=2,
        retry=Retry(ConstantBackoff(0.01), retries),
        retry_on_error=[redis.ConnectionError],
    )


def test_third_redis_reply_truncated_in_its_body_redis_py_retry_recovers(
    chaos: Chaos, redis_server: ServerProcess
) -> None:
    proxy = chaos.proxy(redis_server.address, protocol="resp")
    with redis_client(proxy.address, retries=3) as client:
        client.set("first", "1")
        client.set("key", "a value long enough to cut")
        proxy.toxic(
            "truncate_message", stream="downstream", at="body", skip_messages=2, max_messages=1
        )
        assert client.get("key") == b"a value long enough to cut"  # cut, then retried
    replies = proxy.messages.replies()
    cut = [r for r in replies if r.toxics]
    assert len(cut) == 1
    # The log records what the server sent (whole); the client got its head and half its body.
    assert (cut[0].connection, cut[0].index, cut[0].summary) == (1, 2, "bulk")
    assert [(r.connection, r.index, r.complete) for r in replies if r.connection == 2] == [
        (2, 0, True)
    ]
    assert proxy.connections.opened == 2


def test_without_retries_redis_py_sees_the_truncated_reply(
    chaos: Chaos, redis_server: ServerProcess
) -> None:
    proxy = chaos.proxy(redis_server.address, protocol="resp")
    proxy.toxic("truncate_message", stream="downstream", at="body", then="reset", skip_messages=1)
    with redis_client(proxy.address) as client:
        client.set("key", "value")
        with pytest.raises(redis.ConnectionError):
            client.get("key")


def test_redis_pipeline_with_one_injected_reply_stays_in_order(
    chaos: Chaos, redis_server: ServerProcess
) -> None:
    proxy = chaos.proxy(redis_server.address, protocol="resp")
    proxy.toxic(
        "inject_reply",
        stream="upstream",
        error="TRYAGAIN injected by the proxy",
        skip_messages=1,
        max_messages=1,
    )
    with redis_client(proxy.address) as client:
        pipe = client.pipeline(transaction=False)
        pipe.set("a", "1").incr("a").get("a").incr("a")
        results = pipe.execute(raise_on_error=False)
        assert results[0] is True
        assert isinstance(results[1], redis.ResponseError)
        assert str(results[1]) == "injected by the proxy"  # redis-py drops the error code
        assert results[2:] == [b"1", 2]  # the INCR never reached redis
        assert client.get("a") == b"2"
    requests = proxy.messages.requests()
    assert [(r.summary, r.forwarded) for r in requests[:4]] == [
        ("SET", True),
        ("INCRBY", False),  # redis-py sends INCR as INCRBY a 1
        ("GET", True),
        ("INCRBY", True),
    ]
    replies = proxy.messages.replies()
    assert [r.summary for r in replies[:4]] == [
        "+OK",
        "injected by inject_reply_upstream",
        "bulk",
        "integer",
    ]


def http_get_with_retries(client: httpx.Client, path: str) -> httpx.Response:
    """A client that retries 503 after the server's Retry-After, as a careful client does."""

    def attempt() -> httpx.Response:
        response = client.get(path)
        if response.status_code == 503:
            raise ServiceUnavailable(float(response.headers.get("Retry-After", "1")))
        return response

    policy = RetryPolicy(
        attempts=4, deadline=TIMEOUT_S, retry_on=lambda e: getattr(e, "after", False)
    )
    return policy.call(attempt)


class ServiceUnavailable(Exception):
    def __init__(self, after: float) -> None:
        super().__init__(f"503, retry after {after}s")
        self.after = after


@pytest.fixture(params=["builtin", "stdlib"])
def any_http_server(
    request: pytest.FixtureRequest, http_server: ServerProcess, stdlib_http_server: ServerProcess
) -> ServerProcess:
    return http_server if request.param == "builtin" else stdlib_http_server


def test_first_two_http_requests_get_503_then_the_retrying_client_succeeds(
    chaos: Chaos, any_http_server: ServerProcess
) -> None:
    proxy = chaos.proxy(any_http_server.address, protocol="http1")
    proxy.toxic(
        "inject_reply",
        stream="upstream",
        status=503,
        headers={"Retry-After": "0", "Connection": "close"},
        max_messages=2,
        message_scope="proxy",  # the count goes on across the client's reconnects
    )
    host, port = proxy.address
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=TIMEOUT_S) as client:
        response = http_get_with_retries(client, "/")
    assert response.status_code == 200
    requests = proxy.messages.requests()
    assert [(r.summary, r.forwarded) for r in requests] == [
        ("GET /", False),
        ("GET /", False),
        ("GET /", True),
    ]
    assert [r.summary for r in proxy.messages.replies()] == [
        "injected by inject_reply_upstream",
        "injected by inject_reply_upstream",
        "200",
    ]
    assert proxy.connections.opened == 3


def test_reset_before_the_second_response_on_a_keep_alive_connection(
    chaos: Chaos, http_server: ServerProcess
) -> None:
    proxy = chaos.proxy(http_server.address, protocol="http1")
    proxy.toxic("reset_peer", stream="downstream", timeout=0, skip_messages=1)
    host, port = proxy.address
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=TIMEOUT_S) as client:
        assert client.get("/").text == "ok"
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.get("/echo")
    log = proxy.wait_connections(open=0)
    assert log.opened == 1  # the same keep-alive connection
    record = log.records[0]
    assert (record.closed_by, record.close_kind) == ("toxic reset_peer_downstream", "rst")
    assert (record.messages_upstream, record.messages_downstream) == (2, 2)
    second = proxy.messages.replies()[1]
    assert second.toxics == ["reset_peer_downstream"]
    assert second.complete  # read from the server whole, never passed on


def test_chunked_response_cut_mid_chunk_raises_the_clients_protocol_error(
    chaos: Chaos, http_server: ServerProcess
) -> None:
    proxy = chaos.proxy(http_server.address, protocol="http1")
    proxy.toxic("truncate_message", stream="downstream", at="body")
    host, port = proxy.address
    with (
        httpx.Client(base_url=f"http://{host}:{port}", timeout=TIMEOUT_S) as client,
        pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"),
    ):
        client.get("/stream/10000?chunk=1000")
    (reply,) = proxy.messages.replies()
    assert reply.toxics == ["truncate_message_downstream"]
    assert (
        proxy.wait_connections(open=0).records[0].closed_by == "toxic truncate_message_downstream"
    )


def test_pipelined_http_requests_with_one_injected_reply_stay_in_order(
    chaos: Chaos, http_server: ServerProcess
) -> None:
    proxy = chaos.proxy(http_server.address, protocol="http1")
    proxy.toxic(
        "inject_reply",
        stream="upstream",
        status=429,
        body="slow down",
        skip_messages=1,
        max_messages=1,
    )
    paths = ["/wait/50", "/echo", "/bytes/5", "/status/201"]
    requests = b"".join(
        f"POST {p} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(p)}\r\n\r\n{p}".encode()
        for p in paths
    )
    with socket.create_connection(proxy.address, timeout=TIMEOUT_S) as sock:
        sock.sendall(requests)  # all four at once: pipelined
        reader = SharedReader(sock)
        answers = []
        for _ in paths:
            response = http.client.HTTPResponse(reader)  # type: ignore[arg-type]
            response.begin()
            answers.append((response.status, response.read()))
    assert answers == [
        (200, b"waited 50"),
        (429, b"slow down"),
        (200, b"01234"),
        (201, b"status 201"),
    ]
    assert [r.summary for r in proxy.messages.requests()] == [f"POST {p}" for p in paths]


class SharedReader:
    """One buffered reader for every response of a pipelined connection.

    ``http.client.HTTPResponse`` makes its own buffered file of the socket and closes
    it after the body; with pipelining that buffer already holds the next responses.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def makefile(self, mode: str) -> NoClose:
        return NoClose(self._file)


class NoClose:
    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)

    def close(self) -> None:
        pass  # the next response reads on
