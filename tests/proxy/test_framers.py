"""The sans-IO framers: exact boundaries for every protocol, whatever the split, bounded state."""

from __future__ import annotations

import itertools
import os
import struct
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaosnet.proxy.framers import Protocol, ProtocolError, parse_protocol
from chaosnet.proxy.framers.base import FINAL, INTERIM, Framer, Part

# A few dozen examples per property in the suite; CHAOSNET_FUZZ_EXAMPLES=5000 for a long run.
EXAMPLES = int(os.environ.get("CHAOSNET_FUZZ_EXAMPLES", "60"))


@dataclass
class Stream:
    """A byte stream and where its messages end (exclusive offsets), as its generator built it."""

    data: bytes
    ends: list[int]
    summaries: list[str]
    interim: set[int]  # indexes of messages that are not replies (1xx, push)


def framer_for(protocol: Protocol, stream: str) -> Framer:
    framer = protocol.framer(stream, protocol.shared())
    framer.summaries = []
    return framer


def scan_split(framer: Framer, data: bytes, cuts: list[int]) -> list[tuple[Part, int]]:
    """Scan ``data`` in pieces cut at ``cuts``; each part with the absolute offset of its chunk."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    out = []
    for a, b in itertools.pairwise(bounds):
        chunk = data[a:b]
        parts = framer.scan(chunk)
        assert parts, "a non-empty chunk always gets parts"
        assert parts[0].start == 0
        assert parts[-1].end == len(chunk)
        for before, after in itertools.pairwise(parts):
            assert before.end == after.start, "parts cover the chunk contiguously"
        out += [(part, a) for part in parts]
    return out


def labels(parts: list[tuple[Part, int]]) -> list[tuple[int, str]]:
    return [(p.message, p.kind) for p, _ in parts for _ in range(p.end - p.start)]


def message_ends(parts: list[tuple[Part, int]]) -> list[int]:
    return [p.end + base for p, base in parts if p.last]


def check_stream(protocol: Protocol, direction: str, stream: Stream, cuts: list[int]) -> None:
    whole = framer_for(protocol, direction)
    whole_parts = scan_split(whole, stream.data, [])
    split = framer_for(protocol, direction)
    split_parts = scan_split(split, stream.data, cuts)
    assert (whole.error, split.error) == (None, None)
    assert message_ends(whole_parts) == stream.ends
    assert message_ends(split_parts) == stream.ends
    expected = stream.summaries if split.summarises else []
    assert split.summaries == whole.summaries == expected
    interim = {p.message for p, _ in whole_parts if p.last == INTERIM}
    assert interim == stream.interim
    if protocol.name != "line":  # line: a split 2-byte delimiter is labeled meta (documented)
        assert labels(split_parts) == labels(whole_parts)
    offsets_continue(split_parts)
    coarse = framer_for(protocol, direction)
    coarse.coarse = True  # the connection's own framer: merged parts, the same boundaries
    coarse_parts = scan_split(coarse, stream.data, cuts)
    assert message_ends(coarse_parts) == stream.ends
    assert coarse.summaries == expected
    assert sizes(coarse_parts) == sizes(split_parts)
    offsets_continue(coarse_parts)


def sizes(parts: list[tuple[Part, int]]) -> list[tuple[int, int]]:
    """Bytes of each message, as the message log adds them up."""
    total: dict[int, int] = {}
    for part, _ in parts:
        total[part.message] = total.get(part.message, 0) + part.end - part.start
    return sorted(total.items())


def offsets_continue(parts: list[tuple[Part, int]]) -> None:
    """Each piece's ``offset`` continues the message where the last piece left it."""
    expected = 0
    for part, _ in parts:
        assert part.offset == expected
        expected = 0 if part.last else expected + part.end - part.start


cuts_strategy = st.lists(st.integers(min_value=1, max_value=4000), max_size=12)


# -- generators ------------------------------------------------------------------------------

token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
body_bytes = st.binary(max_size=300)


@st.composite
def http_body(draw: st.DrawFn, *, allow_chunked: bool = True) -> tuple[list[bytes], bytes]:
    """(header lines, encoded body)."""
    body = draw(body_bytes)
    kind = draw(st.sampled_from(["length", "chunked", "none"] if allow_chunked else ["length"]))
    if kind == "none" and not body:
        return [], b""
    if kind == "chunked":
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=False)]
        encoded = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces if p)
        trailers = b"".join(b"%s: v\r\n" % t.encode() for t in draw(st.lists(token, max_size=2)))
        return [b"Transfer-Encoding: gzip, chunked"], encoded + b"0\r\n" + trailers + b"\r\n"
    return [b"Content-Length: %d" % len(body)], body


def head(start: bytes, fields: list[bytes], extra: list[str]) -> bytes:
    lines = [start, *fields, *[b"X-%s: %s" % (e.encode(), e.encode()) for e in extra]]
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


@st.composite
def http_exchange(draw: st.DrawFn) -> tuple[Stream, Stream]:
    requests, responses = Stream(b"", [], [], set()), Stream(b"", [], [], set())
    count = draw(st.integers(1, 5))
    for i in range(count):
        method = draw(st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE"]))
        target = "/" + draw(token)
        fields, body = draw(http_body()) if method in ("POST", "PUT") else ([], b"")
        expect = bool(body) and draw(st.booleans())
        if expect:
            fields = [*fields, b"Expect: 100-continue"]
        add(
            requests,
            head(f"{method} {target} HTTP/1.1".encode(), fields, draw(st.lists(token, max_size=2)))
            + body,
            f"{method} {target}",
        )
        if expect:
            add(responses, b"HTTP/1.1 100 Continue\r\n\r\n", "100", interim=True)
        status = draw(st.sampled_from([200, 201, 204, 304, 404, 500]))
        last = i == count - 1
        if method == "HEAD":
            fields, body = [b"Content-Length: 1234"], b""
        elif status in (204, 304):
            fields, body = [], b""
        elif last and draw(st.booleans()):
            fields, body = [], draw(body_bytes)  # read until the server closes
        else:
            fields, body = draw(http_body(allow_chunked=True).filter(lambda fb: bool(fb[0])))
        add(responses, head(f"HTTP/1.1 {status} Reason".encode(), fields, []) + body, str(status))
    return requests, responses


def add(stream: Stream, message: bytes, summary: str, *, interim: bool = False) -> None:
    if interim:
        stream.interim.add(len(stream.ends))
    stream.data += message
    stream.ends.append(len(stream.data))
    stream.summaries.append(summary)


resp_scalar = st.one_of(
    st.builds(lambda t: b"+" + t.encode() + b"\r\n", token),
    st.builds(lambda t: b"-ERR " + t.encode() + b"\r\n", token),
    st.builds(lambda n: b":%d\r\n" % n, st.integers(-(10**12), 10**12)),
    st.builds(lambda b: b"$%d\r\n%s\r\n" % (len(b), b), body_bytes),
    st.builds(lambda b: b"=%d\r\ntxt:%s\r\n" % (len(b) + 4, b), body_bytes),
    st.just(b"$-1\r\n"),
    st.just(b"_\r\n"),
    st.just(b"#t\r\n"),
    st.just(b",3.14\r\n"),
    st.builds(lambda b: b"$?\r\n;%d\r\n%s\r\n;0\r\n" % (len(b), b), body_bytes.filter(bool)),
)


def resp_aggregate(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    lists = st.lists(children, max_size=4)
    return st.one_of(
        st.builds(lambda xs: b"*%d\r\n" % len(xs) + b"".join(xs), lists),
        st.builds(lambda xs: b"~%d\r\n" % len(xs) + b"".join(xs), lists),
        st.builds(
            lambda xs: b"%%%d\r\n" % (len(xs) // 2) + b"".join(xs[: len(xs) // 2 * 2]), lists
        ),
        st.builds(lambda xs: b"*?\r\n" + b"".join(xs) + b".\r\n", lists),
        st.builds(lambda xs: b"|1\r\n+ttl\r\n:3\r\n" + (xs[0] if xs else b":0\r\n"), lists),
    )


resp_value = st.recursive(resp_scalar, resp_aggregate, max_leaves=12)


@st.composite
def resp_replies(draw: st.DrawFn) -> Stream:
    stream = Stream(b"", [], [], set())
    for value in draw(st.lists(resp_value, min_size=1, max_size=6)):
        push = draw(st.booleans()) and draw(st.booleans())
        if push:
            value = b">2\r\n+message\r\n" + value
        add(stream, value, resp_reply_summary(value), interim=push)
    return stream


def resp_reply_summary(value: bytes) -> str:
    first = value[: value.index(b"\r\n")]
    if first.startswith(b"+"):
        return first.decode()
    if first.startswith(b"-"):
        return first.split()[0].decode()
    if first == b"$-1":
        return "null"
    from chaosnet.proxy.framers.resp import NAMES

    return NAMES[chr(first[0])]


@st.composite
def resp_requests(draw: st.DrawFn) -> Stream:
    stream = Stream(b"", [], [], set())
    for _ in range(draw(st.integers(1, 6))):
        name = draw(st.sampled_from(["GET", "SET", "hset", "PING"]))
        if draw(st.booleans()):
            args = draw(st.lists(token, max_size=3))
            add(stream, " ".join([name, *args]).encode() + b"\r\n", name.upper())
        else:
            args = [name.encode(), *draw(st.lists(body_bytes, max_size=3))]
            message = b"*%d\r\n" % len(args) + b"".join(
                b"$%d\r\n%s\r\n" % (len(a), a) for a in args
            )
            add(stream, message, name.upper())
    return stream


@st.composite
def lines(draw: st.DrawFn, delimiter: bytes) -> Stream:
    stream = Stream(b"", [], [], set())
    alphabet = st.binary(max_size=80).filter(
        lambda b: delimiter not in b and not b.endswith(delimiter[:1])
    )
    for content in draw(st.lists(alphabet, min_size=1, max_size=8)):
        add(stream, content + delimiter, "")
    return stream


@st.composite
def frames(draw: st.DrawFn, header_size: int) -> Stream:
    stream = Stream(b"", [], [], set())
    fmt = {1: ">B", 2: ">H", 4: ">I", 8: ">Q"}[header_size]
    for payload in draw(st.lists(st.binary(max_size=200), min_size=1, max_size=8)):
        add(stream, struct.pack(fmt, len(payload)) + payload, "")
    return stream


# -- properties ----------------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None)
@given(http_exchange(), cuts_strategy, cuts_strategy)
def test_http1_boundaries_whatever_the_split(
    exchange: tuple[Stream, Stream], up_cuts: list[int], down_cuts: list[int]
) -> None:
    protocol = parse_protocol("http1", {})
    assert protocol is not None
    requests, responses = exchange
    # One exchange: the request framer must run first, it tells the response framer the methods.
    shared = protocol.shared()
    up = protocol.framer("upstream", shared)
    down = protocol.framer("downstream", shared)
    up.summaries, down.summaries = [], []
    up_parts = scan_split(up, requests.data, up_cuts)
    down_parts = scan_split(down, responses.data, down_cuts)
    ended = down.eof()
    ends = message_ends(down_parts)
    if ended is not None:
        ends.append(len(responses.data))
    assert (up.error, down.error) == (None, None)
    assert message_ends(up_parts) == requests.ends
    assert ends == responses.ends
    assert up.summaries == requests.summaries
    assert down.summaries == responses.summaries
    offsets_continue(up_parts)
    # The connection's own (coarse) framers find the same boundaries.
    shared = protocol.shared()
    coarse_up = protocol.framer("upstream", shared)
    coarse_down = protocol.framer("downstream", shared)
    coarse_up.coarse = coarse_down.coarse = True
    assert message_ends(scan_split(coarse_up, requests.data, up_cuts)) == requests.ends
    coarse_ends = message_ends(scan_split(coarse_down, responses.data, down_cuts))
    if coarse_down.eof() is not None:
        coarse_ends.append(len(responses.data))
    assert coarse_ends == responses.ends


@settings(max_examples=EXAMPLES, deadline=None)
@given(resp_replies(), cuts_strategy)
def test_resp_replies_whatever_the_split(stream: Stream, cuts: list[int]) -> None:
    protocol = parse_protocol("resp", {})
    assert protocol is not None
    check_stream(protocol, "downstream", stream, cuts)


@settings(max_examples=EXAMPLES, deadline=None)
@given(resp_requests(), cuts_strategy)
def test_resp_requests_whatever_the_split(stream: Stream, cuts: list[int]) -> None:
    protocol = parse_protocol("resp", {})
    assert protocol is not None
    check_stream(protocol, "upstream", stream, cuts)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.sampled_from(["\n", "\r\n", "\0", "||"]), st.data())
def test_lines_whatever_the_split(delimiter: str, data: st.DataObject) -> None:
    protocol = parse_protocol("line", {"delimiter": delimiter})
    assert protocol is not None
    stream = data.draw(lines(delimiter.encode()))
    check_stream(protocol, "upstream", stream, data.draw(cuts_strategy))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.sampled_from([1, 2, 4, 8]), st.data())
def test_length_prefix_whatever_the_split(header_size: int, data: st.DataObject) -> None:
    protocol = parse_protocol("length_prefix", {"header_size": header_size})
    assert protocol is not None
    check_stream(protocol, "upstream", data.draw(frames(header_size)), data.draw(cuts_strategy))


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.sampled_from(["http1", "resp", "line", "length_prefix"]),
    st.binary(max_size=600),
    cuts_strategy,
)
def test_garbage_never_raises_and_desync_is_final(
    name: str, garbage: bytes, cuts: list[int]
) -> None:
    protocol = parse_protocol(name, {"max_size": 64} if name in ("line", "length_prefix") else {})
    assert protocol is not None
    framer = framer_for(protocol, "downstream")
    parts = scan_split(framer, garbage, cuts) if garbage else []
    if framer.error is not None:
        first = next(i for i, (p, _) in enumerate(parts) if p.kind == "unframed")
        assert all(p.kind == "unframed" for p, _ in parts[first:])


# -- specific cases -----------------------------------------------------------------------------


def one_framer(name: str, stream: str = "downstream", **options: object) -> Framer:
    protocol = parse_protocol(name, options)
    assert protocol is not None
    return framer_for(protocol, stream)


def test_http_garbage_desynchronizes_with_a_reason() -> None:
    framer = one_framer("http1")
    framer.scan(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello\r\n")
    assert framer.error is not None
    assert "not an HTTP/1 status line" in framer.error
    assert framer.scan(b"HTTP/1.1 200 OK\r\n\r\n")[0].kind == "unframed"  # stays desynchronized


def test_http_head_response_and_304_have_no_body() -> None:
    protocol = parse_protocol("http1", {})
    assert protocol is not None
    shared = protocol.shared()
    up, down = protocol.framer("upstream", shared), protocol.framer("downstream", shared)
    up.scan(b"HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    parts = down.scan(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 NM\r\nContent-Length: 5\r\n\r\n"
    )
    assert [p.end for p in parts if p.last] == [38, 76]


def test_http_101_makes_the_connection_a_tunnel_both_ways() -> None:
    protocol = parse_protocol("http1", {})
    assert protocol is not None
    shared = protocol.shared()
    up, down = protocol.framer("upstream", shared), protocol.framer("downstream", shared)
    up.scan(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
    down.scan(b"HTTP/1.1 101 Switching\r\n\r\n\x81\x05hello")
    assert "switched protocols" in (down.error or "")
    up.scan(b"\x81\x85abcd")
    assert "switched protocols" in (up.error or "")


def test_http_response_read_to_eof_ends_at_eof() -> None:
    framer = one_framer("http1")
    parts = framer.scan(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    assert not any(p.last for p in parts)
    assert (parts[-1].kind, parts[-1].part_size) == ("body", None)
    assert framer.eof() == 0


def test_http_conflicting_lengths_desynchronize() -> None:
    framer = one_framer("http1", "upstream")
    framer.scan(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc")
    assert framer.error == "conflicting Content-Length headers"


def test_http_head_over_max_head_desynchronizes() -> None:
    framer = one_framer("http1", "upstream", max_head=64)
    framer.scan(b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100 + b"\r\n\r\n")
    assert framer.error == "head longer than max_head (64)"


def test_resp_unknown_type_desynchronizes_replies_but_requests_may_be_inline() -> None:
    reply = one_framer("resp")
    reply.scan(b"PONG\r\n")
    assert reply.error == "RESP type byte 'P' unknown"
    request = one_framer("resp", "upstream")
    parts = request.scan(b"PING\r\n")
    assert request.error is None
    assert parts[-1].last == FINAL
    assert request.summaries == ["PING"]


def test_resp_deep_nesting_desynchronizes() -> None:
    framer = one_framer("resp")
    framer.scan(b"*1\r\n" * 70)
    assert framer.error == "RESP nesting deeper than 64"


def test_resp_parts_head_body_meta() -> None:
    framer = one_framer("resp")
    parts = framer.scan(b"*2\r\n$3\r\nfoo\r\n:1\r\n")
    assert [(p.kind, p.end - p.start) for p in parts] == [
        ("head", 4),
        ("meta", 4),
        ("body", 3),
        ("meta", 2),
        ("meta", 4),
    ]
    assert parts[2].part_size == 3


def test_line_over_max_size_desynchronizes() -> None:
    framer = one_framer("line", "upstream", max_size=8)
    framer.scan(b"short\n")
    framer.scan(b"this is much too long")
    assert framer.error == "line longer than max_size (8 bytes)"


def test_length_prefix_is_chaosnet_framing_scanner() -> None:
    from chaosnet.framing import FrameScanner
    from chaosnet.proxy.framers.length_prefix import LengthPrefixFramer

    framer = one_framer("length_prefix", "upstream", max_size=10)
    assert isinstance(framer, LengthPrefixFramer)
    assert isinstance(framer.scanner, FrameScanner)
    framer.scan(struct.pack(">I", 11) + b"x" * 11)
    assert framer.error == "bad frame header: frame of 11 bytes exceeds the limit of 10 bytes"


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("smtp", {}, "protocol: unknown protocol 'smtp' (known: length_prefix, line, http1, resp)"),
        (
            "line",
            {"delim": "x"},
            "protocol_options.delim: unknown option of line (known: delimiter, max_size)",
        ),
        (
            "line",
            {"delimiter": ""},
            "protocol_options.delimiter: must be a string of 1 or 2 characters",
        ),
        (
            "length_prefix",
            {"header_size": 3},
            "protocol_options.header_size: must be one of 1, 2, 4, 8, got 3",
        ),
        ("resp", {"x": 1}, "protocol_options.x: unknown option of resp (known: none)"),
        ("http1", {"max_head": 1}, "protocol_options.max_head: must be a whole number from 64"),
        (None, {"a": 1}, "protocol_options: given without a protocol"),
    ],
)
def test_bad_protocols_name_the_field(
    name: str | None, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(name, options)
    assert str(caught.value).startswith(message)
