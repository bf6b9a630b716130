"""chaosnet.framing's asyncio adapters, over real loopback TCP streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from chaosnet.framing import (
    FrameTooLarge,
    IncompleteFrame,
    StreamDesynchronized,
    encode_frame,
    is_desynchronized,
    read_frame,
    write_frame,
)

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.StreamWriter]


@asynccontextmanager
async def connected() -> AsyncIterator[Streams]:
    """(client reader, client writer, server writer) of one loopback TCP connection."""
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def on_client(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(writer)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    reader, writer = await asyncio.open_connection(host, port)
    peer = await asyncio.wait_for(accepted.get(), 5)
    try:
        yield reader, writer, peer
    finally:
        for w in (writer, peer):
            w.close()
            await w.wait_closed()
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_frames_round_trip_and_a_clean_eof_reads_as_none() -> None:
    big = bytes(range(256)) * 4096
    async with connected() as (reader, _, peer):
        for payload in (b"", b"hello", big):
            await write_frame(peer, payload)
        peer.write_eof()
        assert await read_frame(reader) == b""
        assert await read_frame(reader) == b"hello"
        assert await read_frame(reader) == big
        assert await read_frame(reader) is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("sent", "phase", "expected", "partial"),
    [(b"\x00\x00\x00", "header", 4, b"\x00\x00\x00"), (b"\x00\x00\x00\x05ab", "body", 5, b"ab")],
)
async def test_a_truncated_frame_raises_incomplete_frame(
    sent: bytes, phase: str, expected: int, partial: bytes
) -> None:
    async with connected() as (reader, _, peer):
        peer.write(sent)
        peer.write_eof()
        with pytest.raises(IncompleteFrame) as caught:
            await read_frame(reader)
        assert (caught.value.phase, caught.value.expected) == (phase, expected)
        assert caught.value.partial == partial


@pytest.mark.asyncio
async def test_cancelling_between_header_and_body_marks_the_stream_desynchronised() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"\x00\x00\x00\x0a012")  # header of a 10-byte frame, 3 body bytes
    task = asyncio.create_task(read_frame(reader))
    await asyncio.sleep(0)  # the task consumes the header and waits for the body
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert is_desynchronized(reader)
    reader.feed_data(b"3456789" + encode_frame(b"next"))
    # Without the guard, body bytes "3456" would be parsed as a header.
    with pytest.raises(StreamDesynchronized, match="CancelledError while reading a 10-byte body"):
        await read_frame(reader)


@pytest.mark.asyncio
async def test_cancelling_while_waiting_for_a_header_keeps_the_stream_in_sync() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"\x00\x00")  # half a header
    task = asyncio.create_task(read_frame(reader))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not is_desynchronized(reader)
    reader.feed_data(b"\x00\x02ok")
    assert await read_frame(reader) == b"ok"


@pytest.mark.asyncio
async def test_a_timeout_mid_body_over_tcp_leaves_a_clear_error_for_the_next_read() -> None:
    async with connected() as (reader, _, peer):
        peer.write(b"\x00\x00\x00\x0a012")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(read_frame(reader), 0.1)
        peer.write(b"3456789")
        with pytest.raises(StreamDesynchronized):
            await read_frame(reader)


@pytest.mark.asyncio
async def test_an_oversized_header_is_refused_at_once_and_the_stream_is_unusable() -> None:
    async with connected() as (reader, _, peer):
        peer.write(b"\x7f\xff\xff\xff")  # 2 GiB announced; the body never comes
        with pytest.raises(FrameTooLarge) as caught:
            await asyncio.wait_for(read_frame(reader, max_frame_size=1024), 5)
        assert (caught.value.length, caught.value.limit) == (0x7FFFFFFF, 1024)
        with pytest.raises(StreamDesynchronized, match="over the limit"):
            await read_frame(reader)


@pytest.mark.asyncio
async def test_write_frame_checks_the_limit_before_writing() -> None:
    async with connected() as (reader, _, peer):
        with pytest.raises(FrameTooLarge):
            await write_frame(peer, b"x" * 11, max_frame_size=10)
        await write_frame(peer, b"fine")
        peer.write_eof()
        assert await read_frame(reader) == b"fine"  # nothing of the refused frame went out
        assert await read_frame(reader) is None
