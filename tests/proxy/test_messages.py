"""The message-aware proxy through the control API: protocols, targeting, message toxics, log."""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest

from tests.proxy.support import (
    IO_TIMEOUT_S,
    Api,
    Upstream,
    connect,
    listen_address,
    recv_all,
    recv_exactly,
    wait_for,
)


def line_proxy(api: Api, upstream: Upstream, **options: Any) -> tuple[str, int]:
    proxy = api.create_proxy("p", upstream.address, protocol="line", protocol_options=options)
    return listen_address(proxy)


def messages(api: Api, query: str = "") -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = api.get(f"/proxies/p/messages{query}").body["messages"]
    return body


def connection_record(api: Api) -> dict[str, Any]:
    record: dict[str, Any] = api.get("/proxies/p/connections").body["connections"][-1]
    return record


# -- the proxy's protocol ---------------------------------------------------------------------


def test_protocol_is_shown_and_changes_apply_to_new_connections(
    api: Api, echo_server: Upstream
) -> None:
    address = line_proxy(api, echo_server)
    shown = api.get("/proxies/p").body
    assert (shown["protocol"], shown["protocol_options"]) == (
        "line",
        {"delimiter": "\n", "max_size": 1 << 20},
    )
    with connect(address) as old:
        old.sendall(b"one\n")
        assert recv_exactly(old, 4) == b"one\n"
        assert api.post("/proxies/p", {"protocol": None}).status == 200
        assert "protocol" not in api.get("/proxies/p").body
        old.sendall(b"two\n")  # still framed: it started with a protocol
        assert recv_exactly(old, 4) == b"two\n"
        with connect(address) as new:
            new.sendall(b"three\n")
            assert recv_exactly(new, 6) == b"three\n"
    assert [(m["connection"], m["stream"], m["index"]) for m in messages(api)] == [
        (1, "upstream", 0),
        (1, "downstream", 0),
        (1, "upstream", 1),
        (1, "downstream", 1),
    ]


def test_plain_proxies_are_unchanged(api: Api, echo_server: Upstream) -> None:
    proxy = api.create_proxy("p", echo_server.address)
    assert "protocol" not in proxy
    with connect(listen_address(proxy)) as sock:
        sock.sendall(b"x\n")
        recv_exactly(sock, 2)
    record = connection_record(api)
    assert "messages_upstream" not in record
    assert "desynchronized" not in record
    assert api.get("/proxies/p/messages").body == {"history": 1000, "total": 0, "messages": []}


# -- the message log ---------------------------------------------------------------------------


def test_message_log_records_each_message_once(api: Api, echo_server: Upstream) -> None:
    address = line_proxy(api, echo_server)
    with connect(address) as sock:
        sock.sendall(b"alpha\nbeta\n\nunfinished")  # any split: tests/proxy/test_framers.py
        assert recv_exactly(sock, 22) == b"alpha\nbeta\n\nunfinished"
    wait_for(lambda: api.get("/proxies/p/connections").body["open"] == 0)
    requests = [m for m in messages(api) if m["stream"] == "upstream"]
    assert [(m["index"], m["size"], m["complete"], m["summary"]) for m in requests] == [
        (0, 6, True, "6 bytes"),
        (1, 5, True, "5 bytes"),
        (2, 1, True, "1 bytes"),
        (3, 10, False, "10 bytes"),
    ]
    record = connection_record(api)
    assert (record["messages_upstream"], record["messages_downstream"]) == (4, 4)
    assert record["desynchronized"] is False


def test_message_log_filters_by_connection_and_refuses_a_bad_filter(
    api: Api, echo_server: Upstream
) -> None:
    address = line_proxy(api, echo_server)
    for text in (b"a\n", b"b\n"):
        with connect(address) as sock:
            sock.sendall(text)
            recv_exactly(sock, 2)
    assert {m["connection"] for m in messages(api, "?connection=2")} == {2}
    reply = api.get("/proxies/p/messages?connection=two")
    assert reply.status == 400
    assert "connection: must be a connection id" in str(reply.body)


# -- desynchronization --------------------------------------------------------------------------


def test_a_stream_that_breaks_its_protocol_passes_unchanged_and_is_marked(
    api: Api, echo_server: Upstream
) -> None:
    proxy = api.create_proxy("p", echo_server.address, protocol="http1")
    api.add_toxic("p", "truncate_message", stream="upstream", attributes={"at": 0})
    garbage = b"\x16\x03\x01 this is not HTTP\r\n\r\nnor is this"
    with connect(listen_address(proxy)) as sock:
        sock.sendall(garbage)
        assert recv_exactly(sock, len(garbage)) == garbage  # nothing cut: the toxic stopped
    record = connection_record(api)
    assert record["desynchronized"] is True
    assert record["desync"].startswith("upstream: not an HTTP/1 request line")


# -- targeting any toxic --------------------------------------------------------------------------


def test_a_targeted_latency_delays_only_its_message_and_keeps_the_order(
    api: Api, echo_server: Upstream
) -> None:
    address = line_proxy(api, echo_server)
    api.add_toxic(
        "p",
        "latency",
        stream="upstream",
        attributes={"latency": 300},
        skip_messages=1,
        max_messages=1,
    )
    with connect(address) as sock:
        start = time.monotonic()
        sock.sendall(b"first\nsecond\nthird\n")
        assert recv_exactly(sock, 6) == b"first\n"
        undelayed = time.monotonic() - start
        assert recv_exactly(sock, 13) == b"second\nthird\n"  # third waited behind second
        delayed = time.monotonic() - start
    assert undelayed < 0.2
    assert 0.29 < delayed < 2.0
    acted = [(m["index"], m["toxics"]) for m in messages(api) if m["stream"] == "upstream"]
    assert acted == [(0, []), (1, ["latency_upstream"]), (2, [])]


def test_reset_peer_targeted_at_the_third_reply_resets_before_any_byte_of_it(
    api: Api, echo_server: Upstream
) -> None:
    address = line_proxy(api, echo_server)
    api.add_toxic(
        "p", "reset_peer", stream="downstream", attributes={"timeout": 0}, skip_messages=2
    )
    with connect(address) as sock:
        sock.sendall(b"1\n2\n3\n4\n")
        assert recv_exactly(sock, 4) == b"1\n2\n"
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_message_scope_proxy_counts_across_connections(api: Api, echo_server: Upstream) -> None:
    address = line_proxy(api, echo_server)
    api.add_toxic(
        "p",
        "truncate_message",
        stream="downstream",
        attributes={"at": 0},
        skip_messages=1,
        max_messages=1,
        message_scope="proxy",
    )
    got = []
    for _ in range(3):
        with connect(address) as sock:
            sock.sendall(b"hello\n")
            got.append(recv_all(sock) if len(got) == 1 else recv_exactly(sock, 6))
    assert got == [b"hello\n", b"", b"hello\n"]


# -- message toxics -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [("body", b"ab"), (3, b"abc"), (0, b""), (100, b"abcde\n")],
)
def test_truncate_message_on_lines(
    api: Api, echo_server: Upstream, at: object, expected: bytes
) -> None:
    address = line_proxy(api, echo_server)
    api.add_toxic(
        "p", "truncate_message", stream="downstream", attributes={"at": at}, skip_messages=1
    )
    with connect(address) as sock:
        sock.sendall(b"first\nabcde\nthird\n")
        assert recv_all(sock) == b"first\n" + (b"a" if at == "body" else expected)


def test_truncate_message_on_frames_cuts_inside_the_length_header(
    api: Api, echo_server: Upstream
) -> None:
    proxy = api.create_proxy("p", echo_server.address, protocol="length_prefix")
    api.add_toxic(
        "p", "truncate_message", stream="downstream", attributes={"at": "head"}, skip_messages=1
    )
    frames = struct.pack(">I", 3) + b"abc" + struct.pack(">I", 5) + b"hello"
    with connect(listen_address(proxy)) as sock:
        sock.sendall(frames)
        assert recv_all(sock) == frames[:7] + struct.pack(">I", 5)[:2]


def test_truncate_message_hang_holds_everything_after_the_cut(
    api: Api, echo_server: Upstream
) -> None:
    address = line_proxy(api, echo_server)
    api.add_toxic(
        "p",
        "truncate_message",
        stream="downstream",
        attributes={"at": 2, "then": "hang"},
        skip_messages=1,
        max_messages=1,
    )
    with connect(address) as sock:
        sock.sendall(b"one\ntwo\nthree\n")
        assert recv_exactly(sock, 6) == b"one\ntw"
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(100)  # "three" is not targeted, but it is behind the hang
        assert api.delete("/proxies/p/toxics/truncate_message_downstream").status == 204
        sock.settimeout(IO_TIMEOUT_S)
        assert sock.recv(100) == b""  # removing a hang closes: the stream is broken


def test_stall_message_holds_then_releases_in_order(api: Api, echo_server: Upstream) -> None:
    address = line_proxy(api, echo_server)
    api.add_toxic(
        "p",
        "stall_message",
        stream="downstream",
        attributes={"duration": 300},
        skip_messages=1,
        max_messages=1,
    )
    with connect(address) as sock:
        start = time.monotonic()
        sock.sendall(b"a\nb\nc\n")
        assert recv_exactly(sock, 2) == b"a\n"
        assert recv_exactly(sock, 4) == b"b\nc\n"
        elapsed = time.monotonic() - start
    assert 0.29 < elapsed < 2.0


def test_stall_message_until_removed_then_reset(api: Api, echo_server: Upstream) -> None:
    address = line_proxy(api, echo_server)
    api.add_toxic("p", "stall_message", stream="downstream", attributes={"then": "reset"})
    with connect(address) as sock:
        sock.sendall(b"held\n")
        wait_for(lambda: connection_record(api)["messages_downstream"] == 1)
        assert api.delete("/proxies/p/toxics/stall_message_downstream").status == 204
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_inject_reply_on_lines_in_order_with_forward(api: Api, echo_server: Upstream) -> None:
    address = line_proxy(api, echo_server)
    api.add_toxic(
        "p",
        "inject_reply",
        stream="upstream",
        attributes={"payload": "INJECTED", "forward": True},
        skip_messages=1,
        max_messages=2,
    )
    with connect(address) as sock:
        sock.sendall(b"r0\nr1\nr2\nr3\n")
        assert recv_exactly(sock, 24) == b"r0\nINJECTED\nINJECTED\nr3\n"
    log = messages(api)
    replies = [
        (m["summary"], m.get("discarded", False)) for m in log if m["stream"] == "downstream"
    ]
    assert ("3 bytes", True) in replies  # the server's own r1 and r2, read and discarded
    assert sum(1 for m in log if m.get("injected")) == 2


def test_inject_reply_on_frames_never_forwarded(api: Api, echo_server: Upstream) -> None:
    proxy = api.create_proxy(
        "p", echo_server.address, protocol="length_prefix", protocol_options={"header_size": 2}
    )
    api.add_toxic(
        "p", "inject_reply", stream="upstream", attributes={"payload": "no"}, max_messages=1
    )
    with connect(listen_address(proxy)) as sock:
        sock.sendall(b"\x00\x03abc\x00\x02de")
        assert recv_exactly(sock, 8) == b"\x00\x02no\x00\x02de"
    requests = [m for m in messages(api) if m["stream"] == "upstream"]
    assert [m.get("forwarded", True) for m in requests] == [False, True]


def test_corrupt_body_only_spares_the_protocols_framing(api: Api, echo_server: Upstream) -> None:
    address = line_proxy(api, echo_server)
    api.add_toxic(
        "p", "corrupt", stream="upstream", attributes={"probability": 1.0, "body_only": True}
    )
    sent = b"aaaa\nbbbb\n\ncccc\n"
    with connect(address) as sock:
        sock.sendall(sent)
        got = recv_exactly(sock, len(sent))
    assert [i for i, b in enumerate(got) if b == 10] == [i for i, b in enumerate(sent) if b == 10]
    assert all(g != s for g, s in zip(got, sent, strict=True) if s != 10)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"protocol": "smtp"}, "protocol: unknown protocol 'smtp'"),
        (
            {"protocol": "line", "protocol_options": {"eol": "x"}},
            "protocol_options.eol: unknown option of line",
        ),
        ({"protocol": "line", "protocol_options": "x"}, "protocol_options: must be an object"),
        ({"protocol_options": {"delimiter": "x"}}, "protocol_options: given without a protocol"),
    ],
)
def test_bad_protocols_are_400s_naming_the_field(
    api: Api, echo_server: Upstream, body: dict[str, Any], message: str
) -> None:
    upstream = f"127.0.0.1:{echo_server.port}"
    reply = api.post("/proxies", {"name": "p", "upstream": upstream, **body})
    assert reply.status == 400
    assert message in str(reply.body)


@pytest.mark.parametrize(
    ("protocol", "toxic", "message"),
    [
        (
            None,
            {"type": "truncate_message"},
            "type: truncate_message needs a proxy with protocol length_prefix or line or http1",
        ),
        (
            None,
            {"type": "latency", "skip_messages": 1},
            "skip_messages: toxic latency_downstream needs a proxy with a protocol",
        ),
        (
            None,
            {"type": "latency", "max_messages": 1},
            "max_messages: toxic latency_downstream needs a proxy",
        ),
        (
            None,
            {"type": "latency", "message_scope": "proxy"},
            "message_scope: toxic latency_downstream needs a proxy",
        ),
        (
            "resp",
            {"type": "latency", "message_scope": "all"},
            "message_scope: must be connection or proxy, got 'all'",
        ),
        (
            "resp",
            {"type": "latency", "max_messages": 0},
            "max_messages: must be a whole number from 1",
        ),
        (
            "resp",
            {"type": "inject_reply", "stream": "upstream", "attributes": {"status": 500}},
            "attributes.status: not an attribute of inject_reply on protocol resp",
        ),
        (
            "http1",
            {"type": "inject_reply", "stream": "upstream", "attributes": {"error": "ERR"}},
            "attributes.error: not an attribute of inject_reply on protocol http1",
        ),
        (
            "http1",
            {
                "type": "inject_reply",
                "stream": "upstream",
                "attributes": {"headers": {"Bad Name": "x"}},
            },
            "attributes.headers: 'Bad Name': must be a header name",
        ),
        (
            "http1",
            {"type": "inject_reply", "stream": "upstream", "attributes": {"status": 100}},
            "attributes.status: must be a final status",
        ),
        (
            "line",
            {"type": "truncate_message", "attributes": {"at": "head"}},
            'attributes.at: "head" means nothing on line',
        ),
    ],
)
def test_bad_message_toxics_are_400s_naming_the_field(
    api: Api, echo_server: Upstream, protocol: str | None, toxic: dict[str, Any], message: str
) -> None:
    extra = {"protocol": protocol} if protocol else {}
    api.create_proxy("p", echo_server.address, **extra)
    reply = api.post("/proxies/p/toxics", toxic)
    assert reply.status == 400, reply
    assert message in str(reply.body)
    assert api.get("/proxies/p/toxics").body == []


def test_a_bad_update_changes_nothing(api: Api, echo_server: Upstream) -> None:
    api.create_proxy("p", echo_server.address)
    api.add_toxic("p", "latency", attributes={"latency": 5})
    reply = api.post("/proxies/p/toxics/latency_downstream", {"skip_messages": 2})
    assert reply.status == 400
    assert "skip_messages: toxic latency_downstream needs a proxy with a protocol" in str(
        reply.body
    )
    assert "skip_messages" not in api.get("/proxies/p/toxics/latency_downstream").body


def test_removing_the_protocol_under_a_message_toxic_is_refused(
    api: Api, echo_server: Upstream
) -> None:
    api.create_proxy("p", echo_server.address, protocol="line")
    api.add_toxic("p", "stall_message")
    reply = api.post("/proxies/p", {"protocol": None})
    assert reply.status == 400
    assert (
        "type: stall_message needs a proxy with protocol length_prefix or line or http1 or resp"
        in str(reply.body)
    )
    assert api.get("/proxies/p").body["protocol"] == "line"
