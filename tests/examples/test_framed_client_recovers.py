"""A FramedClient survives the faults networks throw at it: what a user's tests look like.

Every example runs on any backend (the embedded proxy, the real Toxiproxy,
Toxiproxy in Docker): the fault hits the first attempt, and the retry hook
lifts it, so the test is deterministic without sleeping.
"""

from __future__ import annotations

import pytest

from chaosnet.chaos import Chaos
from chaosnet.connection import FramedClient
from chaosnet.framing import IncompleteFrame, recv_frame, send_frame
from chaosnet.retry import RetryDetails, RetryPolicy
from chaosnet.servers import ServerProcess


def lift_after_first_failure(undo: object) -> RetryPolicy:
    """A policy whose first retry undoes the fault, and records what it retried."""

    def on_retry(details: RetryDetails) -> None:
        if details.attempt == 1:
            undo()  # type: ignore[operator]

    return RetryPolicy(attempts=4, deadline=5.0, initial=0.01, on_retry=on_retry)


def test_survives_a_refusal(chaos: Chaos, framed_echo_server: ServerProcess) -> None:
    proxy = chaos.proxy(framed_echo_server)
    proxy.disable()  # the first connect is refused
    with FramedClient(proxy.address, retry=lift_after_first_failure(proxy.enable)) as client:
        assert client.request(b"ping") == b"ping"
        assert client.attempts == 2


def test_survives_a_reset(chaos: Chaos, framed_echo_server: ServerProcess) -> None:
    proxy = chaos.proxy(framed_echo_server)
    reset = proxy.toxic("reset_peer", timeout=0)
    with FramedClient(proxy.address, retry=lift_after_first_failure(reset.remove)) as client:
        assert client.request(b"ping") == b"ping"
        assert client.reconnects >= 1


def test_survives_a_truncated_frame(chaos: Chaos, framed_echo_server: ServerProcess) -> None:
    proxy = chaos.proxy(framed_echo_server)
    # The reply's header and 2 bytes of its body get through, then the proxy closes.
    cut = proxy.toxic("limit_data", bytes=6)
    with FramedClient(proxy.address, retry=lift_after_first_failure(cut.remove)) as client:
        assert client.request(b"a longer reply") == b"a longer reply"
        assert client.attempts == 2


def test_a_truncated_frame_is_reported_as_such(
    chaos: Chaos, framed_echo_server: ServerProcess
) -> None:
    proxy = chaos.proxy(framed_echo_server)
    with proxy.toxic("limit_data", bytes=6):
        import socket

        with socket.create_connection(proxy.address, timeout=5) as sock:
            send_frame(sock, b"a longer reply")
            with pytest.raises(IncompleteFrame) as cut:
                recv_frame(sock)
    assert cut.value.phase == "body"
    assert cut.value.partial == b"a "


def test_latency_spike_over_the_timeout_goes_to_the_fallback(
    chaos: Chaos, framed_echo_server: ServerProcess
) -> None:
    primary = chaos.proxy(framed_echo_server, name="primary")
    fallback = chaos.proxy(framed_echo_server, name="fallback")
    policy = RetryPolicy(attempts=3, deadline=5.0, initial=0.01)
    with primary.toxic("latency", latency=2000):
        endpoints = [primary.address, fallback.address]
        with FramedClient(endpoints, retry=policy, timeout=0.2) as client:
            assert client.request(b"ping") == b"ping"
            assert client.endpoint == fallback.address
