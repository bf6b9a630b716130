"""chaosnet.framing: the codec, the scanner and the sync socket adapters."""

from __future__ import annotations

import itertools
import pickle
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaosnet.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER_SIZE,
    FrameDecoder,
    FrameFormat,
    FrameScanner,
    FrameTooLarge,
    IncompleteFrame,
    Span,
    encode_frame,
    recv_frame,
    send_frame,
)
from chaosnet.retry import is_transient
from tests.primitives.conftest import reset

# --- helpers ----------------------------------------------------------------------------


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (any values; clamped and sorted)."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def decode_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[bytes]:
    frames: list[bytes] = []
    for chunk in chunks:
        frames.extend(decoder.feed(chunk))
    return frames


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    yield a, b
    a.close()
    b.close()


formats = st.sampled_from([(hs, order) for hs in (1, 2, 4, 8) for order in ("big", "little")])


# --- encoding -------------------------------------------------------------------------


def test_encode_frame_is_a_big_endian_4_byte_length_then_the_payload() -> None:
    assert HEADER_SIZE == 4
    assert DEFAULT_MAX_FRAME_SIZE == 16 * 1024 * 1024
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"
    assert encode_frame(memoryview(b"xy")) == b"\x00\x00\x00\x02xy"


def test_other_header_sizes_and_byte_orders() -> None:
    assert encode_frame(b"ab", header_size=1) == b"\x02ab"
    assert encode_frame(b"ab", header_size=2, byte_order="little") == b"\x02\x00ab"
    assert encode_frame(b"ab", header_size=8) == b"\x00" * 7 + b"\x02ab"


def test_the_sender_enforces_the_limit() -> None:
    with pytest.raises(FrameTooLarge) as caught:
        encode_frame(b"x" * 11, max_frame_size=10)
    assert (caught.value.length, caught.value.limit) == (11, 10)
    assert not is_transient(caught.value)
    # a 1-byte header cannot express more than 255, whatever max_frame_size says
    with pytest.raises(FrameTooLarge) as caught:
        encode_frame(b"x" * 256, header_size=1)
    assert caught.value.limit == 255


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"header_size": 3}, "header_size must be 1, 2, 4 or 8"),
        ({"byte_order": "middle"}, "byte_order must be 'big' or 'little'"),
        ({"max_frame_size": -1}, "max_frame_size must be >= 0"),
    ],
)
def test_bad_formats_are_rejected_with_the_field_named(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FrameFormat(**kwargs)  # type: ignore[arg-type]


# --- decoding -------------------------------------------------------------------------


def test_decoder_returns_frames_as_they_complete() -> None:
    decoder = FrameDecoder()
    data = encode_frame(b"one") + encode_frame(b"") + encode_frame(b"three")
    assert decoder.feed(data[:2]) == []
    assert decoder.pending == 2
    assert decoder.feed(data[2:11]) == [b"one", b""]
    assert decoder.feed(data[11:]) == [b"three"]
    assert decoder.pending == 0
    decoder.eof()  # at a boundary: nothing raised


def test_decoder_accepts_bytearray_and_memoryview_and_returns_bytes() -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(bytearray(encode_frame(b"ab"))) + decoder.feed(
        memoryview(encode_frame(b"cd"))
    )
    assert frames == [b"ab", b"cd"]
    assert all(type(f) is bytes for f in frames)


@pytest.mark.parametrize(
    ("data", "phase", "expected", "partial"),
    [
        (b"\x00\x00", "header", 4, b"\x00\x00"),
        (b"\x00\x00\x00\x0a", "body", 10, b""),
        (b"\x00\x00\x00\x0a01234", "body", 10, b"01234"),
    ],
)
def test_eof_inside_a_frame_raises_incomplete_frame(
    data: bytes, phase: str, expected: int, partial: bytes
) -> None:
    decoder = FrameDecoder()
    decoder.feed(data)
    with pytest.raises(IncompleteFrame) as caught:
        decoder.eof()
    error = caught.value
    assert (error.phase, error.expected, error.partial) == (phase, expected, partial)
    assert isinstance(error, EOFError)
    assert is_transient(error)


def test_length_is_checked_before_any_body_byte_is_buffered() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    decoder.feed(encode_frame(b"ok"))
    # The header alone is enough to refuse: no body byte has been sent yet.
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(b"\x00\x00\x00\x65")
    assert (caught.value.length, caught.value.limit) == (101, 100)
    # Split header, same result; and a failed decoder stays failed.
    split_decoder = FrameDecoder(max_frame_size=100)
    split_decoder.feed(b"\x00\x00")
    with pytest.raises(FrameTooLarge):
        split_decoder.feed(b"\x01\x00")
    with pytest.raises(FrameTooLarge):
        split_decoder.feed(encode_frame(b"ok"))


def test_a_frame_exactly_at_the_limit_is_accepted() -> None:
    decoder = FrameDecoder(max_frame_size=5)
    assert decoder.feed(encode_frame(b"12345", max_frame_size=5)) == [b"12345"]


@settings(max_examples=150, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
    fmt=formats,
)
def test_any_split_of_any_frame_sequence_decodes_to_the_same_frames(
    payloads: list[bytes], cuts: list[int], fmt: tuple[int, str]
) -> None:
    header_size, order = fmt
    payloads = [p[: (1 << (8 * header_size)) - 1] for p in payloads]
    stream = b"".join(
        encode_frame(p, header_size=header_size, byte_order=order)  # type: ignore[arg-type]
        for p in payloads
    )
    decoder = FrameDecoder(header_size=header_size, byte_order=order)  # type: ignore[arg-type]
    assert decode_all(decoder, split(stream, cuts)) == payloads
    assert decoder.pending == 0
    decoder.eof()


@settings(max_examples=100, deadline=None)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=6),
    data=st.data(),
)
def test_any_cut_inside_a_frame_is_reported_with_its_phase(
    payloads: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    boundaries = {0}
    for p in payloads:
        boundaries.add(max(boundaries) + 4 + len(p))
    cut = data.draw(st.integers(min_value=1, max_value=len(stream) - 1))
    decoder = FrameDecoder()
    decode_all(decoder, split(stream[:cut], data.draw(st.lists(st.integers(0, cut)))))
    if cut in boundaries:
        decoder.eof()
        return
    start = max(b for b in boundaries if b < cut)
    with pytest.raises(IncompleteFrame) as caught:
        decoder.eof()
    inside = cut - start
    if inside < 4:
        assert (caught.value.phase, caught.value.expected) == ("header", 4)
        assert caught.value.partial == stream[start:cut]
    else:
        length = int.from_bytes(stream[start : start + 4], "big")
        assert (caught.value.phase, caught.value.expected) == ("body", length)
        assert caught.value.partial == stream[start + 4 : cut]


# --- scanning -------------------------------------------------------------------------


def absolute_spans(scanner: FrameScanner, chunks: list[bytes]) -> list[Span]:
    """Spans in absolute stream offsets, with pieces of one part merged."""
    merged: list[Span] = []
    for chunk in chunks:
        base = scanner.position
        for span in scanner.scan(chunk):
            assert span.end > span.start  # never an empty span
            span = span._replace(start=base + span.start, end=base + span.end)
            last = merged[-1] if merged else None
            if last and (last.kind, last.frame, last.end) == (span.kind, span.frame, span.start):
                merged[-1] = last._replace(end=span.end, length=span.length)
            else:
                merged.append(span)
    return merged


def reference_spans(payloads: list[bytes], header_size: int) -> list[Span]:
    spans, pos = [], 0
    for index, payload in enumerate(payloads):
        n = len(payload)
        spans.append(Span("header", index, pos, pos + header_size, 0, n))
        if n:
            spans.append(Span("body", index, pos + header_size, pos + header_size + n, 4, n))
        pos += header_size + n
    return [s._replace(frame_offset=0 if s.kind == "header" else header_size) for s in spans]


def test_scanner_reports_headers_and_bodies_with_chunk_offsets() -> None:
    scanner = FrameScanner()
    stream = encode_frame(b"hello") + encode_frame(b"") + encode_frame(b"xyz")
    assert scanner.scan(stream[:6]) == [
        Span("header", 0, 0, 4, 0, 5),
        Span("body", 0, 4, 6, 4, 5),
    ]
    assert scanner.scan(stream[6:15]) == [
        Span("body", 0, 0, 3, 6, 5),
        Span("header", 1, 3, 7, 0, 0),  # zero-length frame: header only, no body span
        Span("header", 2, 7, 9, 0, None),  # header continues in the next chunk
    ]
    assert scanner.position == 15
    assert not scanner.at_boundary
    assert scanner.scan(stream[15:]) == [
        Span("header", 2, 0, 2, 2, 3),
        Span("body", 2, 2, 5, 4, 3),
    ]
    assert scanner.at_boundary
    assert scanner.error is None


def test_scanner_reports_a_garbage_length_and_then_unframed_bytes() -> None:
    scanner = FrameScanner(max_frame_size=1000)
    garbage = encode_frame(b"ok") + b"GET / HTTP/1.1\r\n"
    spans = scanner.scan(garbage)
    assert spans[:2] == [Span("header", 0, 0, 4, 0, 2), Span("body", 0, 4, 6, 4, 2)]
    assert spans[2] == Span("header", 1, 6, 10, 0, int.from_bytes(b"GET ", "big"))
    assert spans[3] == Span("unframed", 1, 10, len(garbage), 4, spans[2].length)
    assert isinstance(scanner.error, FrameTooLarge)
    assert scanner.scan(b"more") == [
        Span("unframed", 1, 0, 4, 4 + len(garbage) - 10, spans[2].length)
    ]


@settings(max_examples=150, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=200), max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=30),
    fmt=formats,
)
def test_any_split_yields_the_same_spans_in_stream_offsets(
    payloads: list[bytes], cuts: list[int], fmt: tuple[int, str]
) -> None:
    header_size, order = fmt
    payloads = [p[: (1 << (8 * header_size)) - 1] for p in payloads]
    stream = b"".join(
        encode_frame(p, header_size=header_size, byte_order=order)  # type: ignore[arg-type]
        for p in payloads
    )
    scanner = FrameScanner(header_size=header_size, byte_order=order)  # type: ignore[arg-type]
    assert absolute_spans(scanner, split(stream, cuts)) == reference_spans(payloads, header_size)


@settings(max_examples=150, deadline=None)
@given(
    stream=st.binary(max_size=400),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=20),
    limit=st.integers(min_value=0, max_value=300),
    fmt=formats,
)
def test_scanning_garbage_never_crashes_and_covers_every_byte(
    stream: bytes, cuts: list[int], limit: int, fmt: tuple[int, str]
) -> None:
    header_size, order = fmt
    kwargs = {"max_frame_size": limit, "header_size": header_size, "byte_order": order}
    whole = absolute_spans(FrameScanner(**kwargs), [stream])  # type: ignore[arg-type]
    pieces = absolute_spans(FrameScanner(**kwargs), split(stream, cuts))  # type: ignore[arg-type]
    assert pieces == whole
    covered = [i for s in whole for i in range(s.start, s.end)]
    assert covered == list(range(len(stream)))


def test_scanner_and_decoder_share_one_header_parser() -> None:
    """The proxy's frame-aware toxics and the clients must agree on every header."""
    fmt = FrameDecoder(header_size=2, byte_order="little").format
    assert type(fmt) is FrameFormat
    assert type(FrameScanner().format) is FrameFormat
    assert fmt.length_at(b"\x34\x12", 0) == 0x1234


# --- sync socket adapters -------------------------------------------------------------


def test_send_and_recv_frames_over_a_socket(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socket_pair
    big = bytes(range(256)) * 4096  # 1 MiB: the gathered-send path
    payloads = [b"", b"small", big]

    def sender() -> None:
        for payload in payloads:
            send_frame(a, payload)
        a.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=sender)
    thread.start()
    received = [recv_frame(b) for _ in payloads]
    assert recv_frame(b) is None  # clean EOF at a frame boundary
    thread.join(5)
    assert received == payloads


def test_recv_frame_leaves_the_next_frame_unread(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socket_pair
    a.sendall(encode_frame(b"first") + encode_frame(b"second"))
    assert recv_frame(b) == b"first"
    assert recv_frame(b) == b"second"


@pytest.mark.parametrize(
    ("sent", "phase", "partial"),
    [(b"\x00\x00", "header", b"\x00\x00"), (b"\x00\x00\x00\x0aabc", "body", b"abc")],
)
def test_recv_frame_raises_incomplete_frame_on_eof_inside_a_frame(
    socket_pair: tuple[socket.socket, socket.socket], sent: bytes, phase: str, partial: bytes
) -> None:
    a, b = socket_pair
    a.sendall(sent)
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(IncompleteFrame) as caught:
        recv_frame(b)
    assert (caught.value.phase, caught.value.partial) == (phase, partial)


def test_recv_frame_refuses_an_oversized_header_without_waiting_for_the_body(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socket_pair
    a.sendall(b"\x7f\xff\xff\xff")  # 2 GiB announced, nothing follows
    b.settimeout(30)
    with pytest.raises(FrameTooLarge) as caught:
        recv_frame(b, max_frame_size=1024)
    assert (caught.value.length, caught.value.limit) == (0x7FFFFFFF, 1024)


def test_send_frame_checks_the_limit_before_sending_anything(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socket_pair
    with pytest.raises(FrameTooLarge):
        send_frame(a, b"x" * 11, max_frame_size=10)
    a.shutdown(socket.SHUT_WR)
    assert recv_frame(b) is None  # not a byte went out


def test_recv_frame_deadline_bounds_the_whole_frame(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = socket_pair
    a.sendall(b"\x00\x00\x00\x0aabc")  # the rest never comes
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        recv_frame(b, deadline=started + 0.1)
    assert time.monotonic() - started < 2.0


def test_send_frame_to_a_reset_peer_raises_broken_pipe() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        server, _ = listener.accept()
    with client:
        server.close()  # FIN: the client is now in CLOSE_WAIT
        assert client.recv(1) == b""
        # The first send draws the peer's RST; once it has arrived, Linux reports
        # EPIPE (BrokenPipeError) for a socket that was in CLOSE_WAIT.
        with pytest.raises(BrokenPipeError) as caught:  # noqa: PT012
            for _ in range(100):
                send_frame(client, b"ping")
        assert is_transient(caught.value)


def test_recv_frame_from_a_reset_peer_raises_connection_reset() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        server, _ = listener.accept()
    with client:
        reset(server)
        with pytest.raises(ConnectionResetError):
            recv_frame(client)


@pytest.mark.parametrize(
    "error",
    [FrameTooLarge(70_000, 65_535), IncompleteFrame("body", 10, b"abc")],
    ids=["too-large", "incomplete"],
)
def test_framing_errors_survive_pickling_with_their_fields(error: Exception) -> None:
    """A worker process (xdist, multiprocessing) passes them on as they were raised."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
