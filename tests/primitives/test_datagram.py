"""chaosnet.datagram: the wire format, the ledger, and both clients against real UDP servers."""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator

import pytest

from chaosnet.connection import ClientClosed
from chaosnet.datagram import (
    HEADER_SIZE,
    AsyncDatagramClient,
    DatagramClient,
    DatagramTooLarge,
    Ledger,
    MalformedDatagram,
    MalformedReply,
    NoReply,
    decode,
    encode,
)
from chaosnet.retry import RetryError, RetryPolicy, is_transient
from tests.proxy.datagram_support import UdpUpstream, protocol_echo, sink, udp_upstream

Address = tuple[str, int]


@pytest.fixture
def echo() -> Iterator[UdpUpstream]:
    with udp_upstream(protocol_echo) as running:
        yield running


@pytest.fixture
def silent() -> Iterator[UdpUpstream]:
    with udp_upstream(sink) as running:
        yield running


def closed_port() -> Address:
    """A loopback UDP port nobody listens on: sends to it come back as ICMP unreachable."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[:2]


def replying(make: Callable[[int, bytes, int], list[bytes]]) -> Callable[[bytes], list[bytes]]:
    """A server behaviour: ``make(request_id, payload, nth time this id was seen)``."""
    seen: dict[int, int] = {}

    def reply(data: bytes) -> list[bytes]:
        message = decode(data)
        seen[message.request_id] = seen.get(message.request_id, 0) + 1
        return make(message.request_id, message.payload, seen[message.request_id])

    return reply


# -- the wire format -------------------------------------------------------------------


def test_wire_format_is_as_documented() -> None:
    datagram = encode("request", 0x0102030405060708, b"hi")
    head = bytes([1, 1, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8])
    assert datagram == head + struct.pack(">I", zlib.crc32(b"hi", zlib.crc32(head))) + b"hi"
    assert len(datagram) == HEADER_SIZE + 2
    message = decode(datagram)
    assert (message.kind, message.request_id, message.payload) == (
        "request",
        0x0102030405060708,
        b"hi",
    )
    assert decode(encode("reply", 7, b"")).kind == "reply"


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: d[:10], "shorter than the 16-byte header"),
        (lambda d: b"\x02" + d[1:], "version 2"),
        (lambda d: d[:1] + b"\x09" + d[2:], "unknown kind 9"),
        (lambda d: d[:-1], "payload of 4 bytes, the header says 5"),
        (lambda d: d + b"x", "payload of 6 bytes, the header says 5"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "CRC mismatch"),
        (lambda d: d[:5] + bytes([d[5] ^ 0x80]) + d[6:], "CRC mismatch"),
    ],
)
def test_malformed_datagrams_are_errors_with_the_bytes(
    mangle: Callable[[bytes], bytes], reason: str
) -> None:
    bad = mangle(encode("reply", 42, b"hello"))
    with pytest.raises(MalformedDatagram) as failure:
        decode(bad)
    assert failure.value.partial == bad
    assert failure.value.reason.startswith(reason)
    assert is_transient(failure.value)


def test_too_large_is_permanent_and_raised_before_sending(silent: UdpUpstream) -> None:
    with pytest.raises(DatagramTooLarge) as failure:
        encode("request", 1, bytes(100), max_datagram_size=100)
    assert (failure.value.size, failure.value.limit) == (116, 100)
    assert not is_transient(failure.value)
    with DatagramClient(silent.address, max_datagram_size=100) as client:
        with pytest.raises(DatagramTooLarge):
            client.request(bytes(85))
        assert client.attempts == 0
        assert client.ledger.requests == 0
    assert silent.received == []


# -- the ledger (sans-IO) ---------------------------------------------------------------


def test_ledger_takes_only_the_answer_and_counts_the_rest() -> None:
    ledger = Ledger(first_id=100)
    first, _ = ledger.open(b"a")
    assert ledger.receive(encode("reply", first, b"A")) == b"A"
    assert ledger.receive(encode("reply", first, b"A")) is None  # answered already
    second, _ = ledger.open(b"b")
    assert ledger.receive(encode("reply", first, b"A")) is None
    assert ledger.receive(encode("reply", 5, b"?")) is None  # never ours
    assert ledger.receive(encode("request", second, b"b")) is None  # not a reply
    ledger.give_up()
    third, _ = ledger.open(b"c")
    assert ledger.receive(encode("reply", second, b"B")) is None  # its request gave up
    with pytest.raises(MalformedReply):
        ledger.receive(b"junk")
    assert ledger.receive(encode("reply", third, b"C")) == b"C"
    assert (ledger.duplicates, ledger.stray, ledger.late, ledger.malformed) == (2, 2, 1, 1)
    assert (ledger.requests, ledger.answered, ledger.abandoned) == (3, 2, 1)
    assert (first, second, third) == (100, 101, 102)


# -- the blocking client ------------------------------------------------------------------


def test_request_and_reply(echo: UdpUpstream) -> None:
    with DatagramClient(echo.address) as client:
        assert client.request(b"ping") == b"ping"
        assert client.request(b"") == b""
        assert client.endpoint == echo.address
        assert client.attempts == 2


def test_duplicate_replies_are_skipped_and_counted() -> None:
    behaviour = replying(lambda rid, payload, nth: [encode("reply", rid, payload)] * 3)
    with udp_upstream(behaviour) as server, DatagramClient(server.address) as client:
        assert client.request(b"one") == b"one"
        assert client.request(b"two") == b"two"  # the two copies of "one" are read first
        assert client.ledger.duplicates >= 2
        assert client.attempts == 2


def test_a_malformed_reply_is_an_error_never_the_answer() -> None:
    def make(rid: int, payload: bytes, nth: int) -> list[bytes]:
        good = encode("reply", rid, payload)
        return [good[:-1] + bytes([good[-1] ^ 0xFF])] if nth == 1 else [good]

    policy = RetryPolicy(attempts=3, initial=0)
    with udp_upstream(replying(make)) as server:
        with DatagramClient(server.address, retry=policy) as client:
            assert client.request(b"data") == b"data"
            assert client.attempts == 2
            assert client.ledger.malformed == 1
        one_try = DatagramClient(server.address, retry=RetryPolicy(attempts=1))
        with one_try as client, pytest.raises(RetryError) as failure:
            client.request(b"data")
    error = failure.value.attempts[0].error
    assert isinstance(error, MalformedReply)
    assert error.partial[-4:] == b"dat" + bytes([ord("a") ^ 0xFF])
    assert "CRC mismatch" in str(error)


def test_stray_replies_are_skipped() -> None:
    def make(rid: int, payload: bytes, nth: int) -> list[bytes]:
        return [encode("reply", rid + 1000, b"not yours"), encode("reply", rid, payload)]

    with udp_upstream(replying(make)) as server, DatagramClient(server.address) as client:
        assert client.request(b"mine") == b"mine"
        assert client.ledger.stray == 1


def test_a_slow_reply_to_an_earlier_attempt_answers_the_request() -> None:
    def make(rid: int, payload: bytes, nth: int) -> list[bytes]:
        if nth == 1:
            time.sleep(0.15)  # the server is slow once: attempt 1 times out meanwhile
        return [encode("reply", rid, payload + b"#%d" % nth)]

    policy = RetryPolicy(attempts=3, initial=0)
    with (
        udp_upstream(replying(make)) as server,
        DatagramClient(server.address, retry=policy, timeout=0.1) as client,
    ):
        assert client.request(b"r") == b"r#1"  # the same id on every attempt
        assert client.request(b"s") == b"s#1"
        assert client.ledger.duplicates == 1  # the reply to attempt 2, read later


def test_gives_up_within_the_deadline_on_silence(silent: UdpUpstream) -> None:
    # A constant wait, so the last attempt ends near the deadline whatever the draw: after a
    # jittered wait the one final attempt may start up to a whole wait before it.
    policy = RetryPolicy(attempts=None, deadline=0.4, backoff="constant", initial=0.02)
    with DatagramClient(silent.address, retry=policy, timeout=0.1) as client:
        started = time.monotonic()
        with pytest.raises(RetryError) as failure:
            client.request(b"hello?")
        took = time.monotonic() - started
    assert 0.35 <= took < 0.6, took
    assert all(isinstance(a.error, NoReply) for a in failure.value.attempts)
    assert all(a.endpoint == silent.address for a in failure.value.attempts)
    assert "no reply from 127.0.0.1" in str(failure.value)
    assert client.ledger.abandoned == 1
    assert len(silent.received) == client.attempts  # every attempt really went out


def test_fails_over_to_the_fallback_without_backoff(echo: UdpUpstream) -> None:
    dead = closed_port()
    policy = RetryPolicy(attempts=4, initial=5.0)  # any backoff would blow the test budget
    with DatagramClient([dead, echo.address], retry=policy, timeout=1.0) as client:
        started = time.monotonic()
        assert client.request(b"a") == b"a"
        assert client.request(b"b") == b"b"  # each request starts at the primary again
        assert time.monotonic() - started < 1.0
        assert client.attempts == 4
        assert client.endpoint == echo.address


def test_closed_client_refuses(echo: UdpUpstream) -> None:
    client = DatagramClient(echo.address)
    client.close()
    client.close()
    with pytest.raises(ClientClosed):
        client.request(b"x")


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout"):
        DatagramClient(("127.0.0.1", 9), timeout=0)
    with pytest.raises(ValueError, match="max_datagram_size"):
        DatagramClient(("127.0.0.1", 9), max_datagram_size=10)
    with pytest.raises(ValueError, match="endpoints"):
        DatagramClient(("127.0.0.1", 0))


# -- the asyncio client ----------------------------------------------------------------------


def test_async_request_duplicates_and_fallback(echo: UdpUpstream) -> None:
    async def main() -> None:
        dead = closed_port()
        async with AsyncDatagramClient([dead, echo.address], timeout=1.0) as client:
            assert await client.request(b"a") == b"a"
            assert client.attempts == 2
            assert client.endpoint == echo.address

    asyncio.run(main())


def test_async_duplicates_are_skipped() -> None:
    behaviour = replying(lambda rid, payload, nth: [encode("reply", rid, payload)] * 2)

    async def main(address: Address) -> None:
        async with AsyncDatagramClient(address) as client:
            assert await client.request(b"1") == b"1"
            assert await client.request(b"2") == b"2"
            assert client.ledger.duplicates >= 1

    with udp_upstream(behaviour) as server:
        asyncio.run(main(server.address))


def test_async_gives_up_within_the_deadline(silent: UdpUpstream) -> None:
    async def main() -> float:
        policy = RetryPolicy(attempts=None, deadline=0.3, backoff="constant", initial=0.02)
        async with AsyncDatagramClient(silent.address, retry=policy, timeout=0.1) as client:
            started = time.monotonic()
            with pytest.raises(RetryError):
                await client.request(b"anyone?")
            assert client.ledger.abandoned == 1
            return time.monotonic() - started

    took = asyncio.run(main())
    assert 0.25 <= took < 0.5, took


def test_async_cancellation_leaves_the_client_usable(
    echo: UdpUpstream, silent: UdpUpstream
) -> None:
    async def main() -> None:
        async with AsyncDatagramClient(silent.address, timeout=5.0) as client:
            task = asyncio.create_task(client.request(b"never answered"))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.ledger.abandoned == 1
            assert client.ledger.pending is None

    asyncio.run(main())


@pytest.mark.parametrize(
    "error",
    [
        DatagramTooLarge(70_000, 65_507),
        MalformedDatagram("CRC mismatch", b"\x01\x02"),
        MalformedReply("truncated", b"\x01"),
    ],
    ids=["too-large", "malformed", "malformed-reply"],
)
def test_datagram_errors_survive_pickling_with_their_fields(error: Exception) -> None:
    """A worker process (xdist, multiprocessing) passes them on as they were raised."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
