"""chaosnet.connection (asyncio): AsyncFramedClient against a real fault server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from chaosnet.connection import (
    AsyncFramedClient,
    ClientClosed,
    ConnectionClosed,
    RequestMayHaveBeenDelivered,
)
from chaosnet.framing import FrameTooLarge, IncompleteFrame
from chaosnet.retry import RetryDetails, RetryError, RetryPolicy, no_waits
from tests.primitives.conftest import (
    Address,
    FaultServer,
    close_after_request,
    echo,
    echo_once,
    half_body,
    hang,
    header_only,
    oversized,
    partial_header,
    reset_after_request,
)

StartServer = Callable[..., FaultServer]


def recording_policy(retries: list[RetryDetails], **kwargs: object) -> RetryPolicy:
    kwargs.setdefault("attempts", 3)
    kwargs.setdefault("initial", 0.001)
    return RetryPolicy(on_retry=retries.append, **kwargs)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_requests_reuse_one_connection_and_close_releases_it(
    fault_server: StartServer,
) -> None:
    server = fault_server(echo)
    async with AsyncFramedClient(server.address, timeout=2) as client:
        assert await client.request(b"ping") == b"ping"
        assert await client.request(b"x" * 300_000) == b"x" * 300_000
        assert (client.attempts, client.connections_opened, client.endpoint) == (
            2,
            1,
            server.address,
        )
    with pytest.raises(ClientClosed):
        await client.request(b"ping")


@pytest.mark.asyncio
async def test_refused_primary_fails_over_to_the_fallback(
    fault_server: StartServer, refused_address: Address
) -> None:
    fallback = fault_server(echo)
    retries: list[RetryDetails] = []
    policy = recording_policy(retries, initial=30.0)  # a backoff wait would time the test out
    async with AsyncFramedClient([refused_address, fallback.address], retry=policy) as client:
        assert await client.request(b"hi") == b"hi"
        assert (client.attempts, client.endpoint) == (2, fallback.address)
    assert isinstance(retries[0].error, ConnectionRefusedError)
    assert retries[0].wait == 0


@pytest.mark.asyncio
async def test_a_reset_is_retried_on_a_new_connection(fault_server: StartServer) -> None:
    server = fault_server(reset_after_request, echo)
    retries: list[RetryDetails] = []
    async with AsyncFramedClient(server.address, retry=recording_policy(retries)) as client:
        assert await client.request(b"again") == b"again"
        assert (client.attempts, client.reconnects) == (2, 1)
    assert isinstance(retries[0].error, ConnectionResetError)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (partial_header, IncompleteFrame),
        (header_only, IncompleteFrame),
        (half_body, IncompleteFrame),
        (close_after_request, ConnectionClosed),
    ],
)
async def test_truncated_or_missing_replies_are_retried(
    fault_server: StartServer, fault: Callable[..., None], error_type: type[Exception]
) -> None:
    server = fault_server(fault, echo)
    retries: list[RetryDetails] = []
    async with AsyncFramedClient(server.address, retry=recording_policy(retries)) as client:
        assert await client.request(b"whole") == b"whole"
        assert client.attempts == 2
    assert type(retries[0].error) is error_type


@pytest.mark.asyncio
async def test_each_attempt_times_out_and_the_give_up_lists_them(
    fault_server: StartServer,
) -> None:
    server = fault_server(hang)
    started = time.monotonic()
    with no_waits():
        async with AsyncFramedClient(
            server.address, retry=RetryPolicy(attempts=2), timeout=0.1
        ) as client:
            with pytest.raises(RetryError) as caught:
                await client.request(b"anyone?")
    assert [type(r.error) for r in caught.value.attempts] == [TimeoutError, TimeoutError]
    assert 0.18 < time.monotonic() - started < 2.0


@pytest.mark.asyncio
async def test_an_oversized_reply_is_not_retried(fault_server: StartServer) -> None:
    server = fault_server(oversized)
    async with AsyncFramedClient(server.address, timeout=10) as client:
        with pytest.raises(FrameTooLarge):
            await client.request(b"hello")
        assert client.attempts == 1
    assert server.accepted == 1


@pytest.mark.asyncio
async def test_a_non_idempotent_request_that_may_have_arrived_is_not_resent(
    fault_server: StartServer,
) -> None:
    server = fault_server(hang)
    async with AsyncFramedClient(
        server.address, retry=RetryPolicy(attempts=5), timeout=0.1
    ) as client:
        with pytest.raises(RequestMayHaveBeenDelivered) as caught:
            await client.request(b"charge card", idempotent=False)
        assert client.attempts == 1
    assert isinstance(caught.value.cause, TimeoutError)
    assert server.accepted == 1


@pytest.mark.asyncio
async def test_an_idle_connection_closed_by_the_server_is_replaced(
    fault_server: StartServer,
) -> None:
    server = fault_server(echo_once)
    async with AsyncFramedClient(server.address, retry=RetryPolicy(attempts=1)) as client:
        assert await client.request(b"one") == b"one"
        await asyncio.to_thread(server.wait_finished)  # the server closed that connection
        assert await client.request(b"two", idempotent=False) == b"two"
        assert client.reconnects == 1


@pytest.mark.asyncio
async def test_a_cancelled_request_closes_its_connection_so_no_stale_reply_is_read(
    fault_server: StartServer,
) -> None:
    server = fault_server(hang, echo)
    async with AsyncFramedClient(server.address, timeout=10) as client:
        task = asyncio.create_task(client.request(b"first"))
        assert await asyncio.to_thread(server.requests.acquire, True, 5)  # the server has it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.endpoint is None  # its connection was aborted
        assert await client.request(b"second") == b"second"
        assert client.connections_opened == 2


@pytest.mark.asyncio
async def test_a_primary_that_stops_answering_fails_over_within_the_request(
    fault_server: StartServer,
) -> None:
    silent, fallback = fault_server(hang), fault_server(echo)
    retries: list[RetryDetails] = []
    policy = recording_policy(retries, initial=30.0)  # a backoff wait would time the test out
    endpoints = [silent.address, fallback.address]
    async with AsyncFramedClient(endpoints, retry=policy, timeout=0.2) as client:
        assert await client.request(b"hi") == b"hi"
        assert (client.attempts, client.endpoint) == (2, fallback.address)
    assert isinstance(retries[0].error, TimeoutError)
    assert retries[0].wait == 0
