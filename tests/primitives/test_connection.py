"""chaosnet.connection (sync): connect() and FramedClient against a real fault server."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from chaosnet.connection import (
    ClientClosed,
    ConnectionClosed,
    FramedClient,
    RequestMayHaveBeenDelivered,
    connect,
)
from chaosnet.framing import FrameTooLarge, IncompleteFrame
from chaosnet.retry import RetryDetails, RetryError, RetryPolicy, no_waits
from tests.primitives.conftest import (
    Address,
    FaultServer,
    close_after_request,
    echo,
    echo_once,
    fin_then_rst,
    half_body,
    hang,
    header_only,
    oversized,
    partial_header,
    reset_after_request,
    reset_on_accept,
)

StartServer = Callable[..., FaultServer]


class Recorder:
    """A retry policy's hook and sleep, remembering what they saw."""

    def __init__(self) -> None:
        self.retries: list[RetryDetails] = []
        self.sleeps: list[float] = []

    def policy(self, **kwargs: object) -> RetryPolicy:
        kwargs.setdefault("attempts", 3)
        return RetryPolicy(
            on_retry=self.retries.append,
            sleep=self.sleeps.append,
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def errors(self) -> list[BaseException]:
        return [d.error for d in self.retries]

    @property
    def endpoints(self) -> list[Address | None]:
        return [d.endpoint for d in self.retries]


# --- connect() ------------------------------------------------------------------------


def test_connect_fails_over_to_a_fallback_without_waiting(
    fault_server: StartServer, refused_address: Address
) -> None:
    server = fault_server(echo)
    recorder = Recorder()
    with connect([refused_address, server.address], recorder.policy(), timeout=2.5) as sock:
        assert sock.getpeername()[:2] == server.address
        assert sock.gettimeout() == 2.5
    assert recorder.sleeps == []
    assert recorder.endpoints == [refused_address]
    assert isinstance(recorder.errors[0], ConnectionRefusedError)


def test_connect_gives_up_naming_every_endpoints_failure(
    refused_address: Address, fault_server: StartServer
) -> None:
    # A second refusing address: a server that is stopped at once.
    other = fault_server(echo)
    other.stop()
    with pytest.raises(RetryError) as caught:
        connect([refused_address, other.address])  # no policy: each endpoint once
    error = caught.value
    assert [r.endpoint for r in error.attempts] == [refused_address, other.address]
    assert all(isinstance(r.error, ConnectionRefusedError) for r in error.attempts)
    for host, port in (refused_address, other.address):
        assert f"{host}:{port}" in str(error)


def test_connect_rounds_back_off_only_after_the_whole_list_failed(
    refused_address: Address,
) -> None:
    recorder = Recorder()
    with pytest.raises(RetryError) as caught:
        connect([refused_address, refused_address], recorder.policy(attempts=4, seed=1))
    assert len(caught.value.attempts) == 4
    assert len(recorder.sleeps) == 1  # between round 1 and round 2 only


@pytest.mark.parametrize("bad", [("127.0.0.1",), ("127.0.0.1", 0), [], "127.0.0.1:80", [(1, 2)]])
def test_bad_endpoints_are_rejected_clearly(bad: object) -> None:
    with pytest.raises(ValueError, match="endpoints"):
        connect(bad)  # type: ignore[arg-type]


# --- FramedClient: the happy path and its counters -----------------------------------


def test_requests_reuse_one_connection_and_close_releases_it(fault_server: StartServer) -> None:
    server = fault_server(echo)
    client = FramedClient(server.address, retry=RetryPolicy(attempts=2), timeout=2)
    with client:
        assert client.request(b"ping") == b"ping"
        assert client.request(b"") == b""
        assert client.request(b"x" * 200_000) == b"x" * 200_000
        assert (client.attempts, client.connections_opened, client.reconnects) == (3, 1, 0)
        assert client.endpoint == server.address
    assert client.closed
    assert client.endpoint is None
    with pytest.raises(ClientClosed, match="is closed"):
        client.request(b"ping")
    client.close()  # idempotent


def test_an_oversized_request_is_refused_before_connecting(fault_server: StartServer) -> None:
    server = fault_server(echo)
    with FramedClient(server.address, max_frame_size=10) as client, pytest.raises(FrameTooLarge):
        client.request(b"x" * 11)
    assert server.accepted == 0


# --- FramedClient: each fault, for real -----------------------------------------------


def test_refused_primary_fails_over_to_the_fallback(
    fault_server: StartServer, refused_address: Address
) -> None:
    fallback = fault_server(echo)
    recorder = Recorder()
    with FramedClient([refused_address, fallback.address], retry=recorder.policy()) as client:
        assert client.request(b"hello") == b"hello"
        assert client.attempts == 2
        assert client.endpoint == fallback.address
    assert recorder.sleeps == []  # failing over costs no backoff
    assert isinstance(recorder.errors[0], ConnectionRefusedError)


@pytest.mark.parametrize("fault", [reset_after_request, reset_on_accept])
def test_a_reset_connection_is_replaced_and_the_request_resent(
    fault_server: StartServer, fault: Callable[..., None]
) -> None:
    server = fault_server(fault, echo)
    recorder = Recorder()
    with FramedClient(server.address, retry=recorder.policy(initial=0.001)) as client:
        assert client.request(b"again") == b"again"
        assert client.attempts == 2
    assert isinstance(recorder.errors[0], ConnectionResetError | BrokenPipeError)
    if fault is reset_after_request:  # the request was read, so the RST hits recv()
        assert isinstance(recorder.errors[0], ConnectionResetError)
        assert client.reconnects == 1
    # (a reset on accept may beat connect() itself: then no connection was ever opened)
    assert server.accepted == 2


def test_a_broken_pipe_while_sending_is_retried(fault_server: StartServer) -> None:
    server = fault_server(fin_then_rst, echo)
    recorder = Recorder()
    payload = b"p" * (8 << 20)  # larger than the socket buffers: still sending at the RST
    with FramedClient(server.address, retry=recorder.policy(initial=0.001)) as client:
        assert client.request(payload) == payload
        assert client.attempts == 2
    assert isinstance(recorder.errors[0], BrokenPipeError)


def test_a_silent_server_times_out_on_every_attempt(fault_server: StartServer) -> None:
    server = fault_server(hang)
    with no_waits(), FramedClient(server.address, retry=RetryPolicy(attempts=2), timeout=0.1) as c:
        started = time.monotonic()
        with pytest.raises(RetryError) as caught:
            c.request(b"anyone?")
        elapsed = time.monotonic() - started
    assert [type(r.error) for r in caught.value.attempts] == [TimeoutError, TimeoutError]
    assert 0.18 < elapsed < 2.0
    assert server.accepted == 2


def test_the_policy_deadline_cuts_the_request_timeout(fault_server: StartServer) -> None:
    fault_server_ = fault_server(hang)
    policy = RetryPolicy(attempts=5, deadline=0.3, initial=0.01, cap=0.02)
    with FramedClient(fault_server_.address, retry=policy, timeout=30) as client:
        started = time.monotonic()
        with pytest.raises(RetryError, match="deadline"):
            client.request(b"anyone?")
    assert 0.25 < time.monotonic() - started < 2.0


def test_a_close_before_the_reply_is_a_transient_connection_closed(
    fault_server: StartServer,
) -> None:
    server = fault_server(close_after_request)
    client = FramedClient(server.address, retry=RetryPolicy(attempts=2))
    with no_waits(), client, pytest.raises(RetryError) as caught:
        client.request(b"hello")
    assert [type(r.error) for r in caught.value.attempts] == [ConnectionClosed] * 2
    assert "closed the connection before replying" in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "phase", "partial"),
    [
        (partial_header, "header", b"\x00\x00"),
        (header_only, "body", b""),
        (half_body, "body", b"01234"),
    ],
)
def test_a_truncated_reply_is_retried_on_a_new_connection(
    fault_server: StartServer, fault: Callable[..., None], phase: str, partial: bytes
) -> None:
    server = fault_server(fault, echo)
    recorder = Recorder()
    with FramedClient(server.address, retry=recorder.policy(initial=0.001)) as client:
        assert client.request(b"whole") == b"whole"
        assert (client.attempts, client.reconnects) == (2, 1)
    error = recorder.errors[0]
    assert isinstance(error, IncompleteFrame)
    assert (error.phase, error.partial) == (phase, partial)


def test_an_oversized_reply_is_not_retried_and_not_waited_for(fault_server: StartServer) -> None:
    server = fault_server(oversized, echo)
    started = time.monotonic()
    with FramedClient(server.address, retry=RetryPolicy(attempts=5), timeout=10) as client:
        with pytest.raises(FrameTooLarge) as caught:
            client.request(b"hello")
        assert client.attempts == 1
        assert client.endpoint is None  # the connection was closed
    assert caught.value.length == 0xFFFFFFFF
    assert time.monotonic() - started < 5.0  # not the 10 s timeout: no body was awaited
    assert server.accepted == 1


# --- idempotency ----------------------------------------------------------------------


def test_a_non_idempotent_request_that_may_have_arrived_is_not_resent(
    fault_server: StartServer,
) -> None:
    server = fault_server(reset_after_request, echo)
    with FramedClient(server.address, retry=RetryPolicy(attempts=5)) as client:
        with pytest.raises(RequestMayHaveBeenDelivered) as caught:
            client.request(b"charge card", idempotent=False)
        assert client.attempts == 1
    assert isinstance(caught.value.cause, ConnectionResetError)
    assert caught.value.__cause__ is caught.value.cause
    assert caught.value.endpoint == server.address
    assert "not resending" in str(caught.value)
    assert server.accepted == 1


def test_a_non_idempotent_request_is_retried_while_nothing_was_sent(
    fault_server: StartServer, refused_address: Address
) -> None:
    fallback = fault_server(echo)
    with FramedClient([refused_address, fallback.address]) as client:
        assert client.request(b"charge card", idempotent=False) == b"charge card"
        assert client.attempts == 2


def test_an_idle_connection_closed_by_the_server_is_replaced_before_sending(
    fault_server: StartServer,
) -> None:
    server = fault_server(echo_once)
    with FramedClient(server.address, retry=RetryPolicy(attempts=1)) as client:
        assert client.request(b"one") == b"one"
        server.wait_finished()  # the server has closed that connection
        assert client.request(b"two", idempotent=False) == b"two"
        assert (client.attempts, client.reconnects) == (2, 1)


def test_a_reconnect_tries_the_primary_first_again(
    fault_server: StartServer, refused_address: Address
) -> None:
    fallback = fault_server(echo_once)
    recorder = Recorder()
    with FramedClient([refused_address, fallback.address], retry=recorder.policy()) as client:
        assert client.request(b"one") == b"one"
        fallback.wait_finished()
        assert client.request(b"two") == b"two"
        assert client.endpoint == fallback.address
    assert recorder.endpoints == [refused_address, refused_address]
    assert fallback.accepted == 2


def test_a_primary_that_stops_answering_fails_over_within_the_request(
    fault_server: StartServer,
) -> None:
    silent, fallback = fault_server(hang), fault_server(echo)
    recorder = Recorder()
    endpoints = [silent.address, fallback.address]
    with FramedClient(endpoints, retry=recorder.policy(), timeout=0.2) as client:
        assert client.request(b"ping") == b"ping"
        assert (client.attempts, client.endpoint) == (2, fallback.address)
    assert isinstance(recorder.errors[0], TimeoutError)
    assert recorder.endpoints == [silent.address]
    assert recorder.sleeps == []  # failing over costs no backoff


def test_after_a_failure_on_the_fallback_the_primary_is_tried_first(
    fault_server: StartServer,
) -> None:
    primary, fallback = fault_server(echo), fault_server(reset_after_request, echo)
    recorder = Recorder()
    with FramedClient([fallback.address, primary.address], retry=recorder.policy()) as client:
        # the first endpoint resets the first request, the second answers it
        assert client.request(b"one") == b"one"
        assert client.endpoint == primary.address
    assert recorder.endpoints == [fallback.address]
