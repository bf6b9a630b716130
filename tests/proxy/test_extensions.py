"""chaosnet's extension faults (issue 4), each observed by a plain client on real sockets."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from chaosnet.connection import FramedClient
from chaosnet.framing import (
    IncompleteFrame,
    encode_frame,
    read_frame,
    recv_frame,
    send_frame,
    write_frame,
)
from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.retry import RetryPolicy
from tests.proxy.support import (
    Api,
    Upstream,
    connect,
    listen_address,
    recv_all,
    recv_exactly,
    round_trip,
    upstream,
    wait_for,
)


def framed_echo(conn: socket.socket) -> None:
    with conn:
        while (payload := recv_frame(conn)) is not None:
            send_frame(conn, payload)


@pytest.fixture
def framed_server() -> Iterator[Upstream]:
    with upstream(framed_echo) as running:
        yield running


def framed_proxy(api: Api, server: Upstream, **toxic: object) -> tuple[str, int]:
    address = listen_address(api.create_proxy("f", server.address))
    api.add_toxic("f", "truncate_frame", **toxic)
    return address


# -- truncate_frame ----------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["header", "body"])
def test_truncate_frame_cuts_the_chosen_frame(api: Api, framed_server: Upstream, at: str) -> None:
    address = framed_proxy(api, framed_server, attributes={"frame": 1, "at": at})
    with connect(address) as sock:
        send_frame(sock, b"first")
        assert recv_frame(sock) == b"first"  # frames before the cut pass byte-exact
        send_frame(sock, b"second-payload")
        with pytest.raises(IncompleteFrame) as caught:
            recv_frame(sock)
    assert caught.value.phase == at
    if at == "body":
        assert caught.value.partial == b"second-payload"[:7]
    else:
        assert caught.value.partial == b"\x00\x00"


@pytest.mark.asyncio
async def test_truncate_frame_seen_by_the_asyncio_reader(api: Api, framed_server: Upstream) -> None:
    address = framed_proxy(api, framed_server, attributes={"frame": 0, "at": "header"})
    reader, writer = await asyncio.open_connection(*address)
    try:
        await write_frame(writer, b"payload")
        with pytest.raises(IncompleteFrame) as caught:
            await asyncio.wait_for(read_frame(reader), 5)
        assert caught.value.phase == "header"
    finally:
        writer.close()
        await writer.wait_closed()


def test_truncate_frame_at_a_byte_offset_with_reset(api: Api, framed_server: Upstream) -> None:
    address = framed_proxy(api, framed_server, attributes={"frame": 0, "at": 6, "then": "reset"})
    with connect(address) as sock:
        send_frame(sock, b"abcdefgh")
        with pytest.raises(ConnectionResetError):
            recv_all(sock)
    record = api.get("/proxies/f/connections").body["connections"][0]
    assert (record["closed_by"], record["close_kind"]) == ("toxic truncate_frame_downstream", "rst")
    assert record["bytes_downstream"] <= 6


def test_truncate_frame_hang_times_out(api: Api, framed_server: Upstream) -> None:
    address = framed_proxy(api, framed_server, attributes={"frame": 0, "then": "hang"})
    with connect(address, timeout=0.2) as sock:
        send_frame(sock, b"0123456789")
        with pytest.raises(TimeoutError):
            recv_frame(sock)
    assert api.delete("/proxies/f/toxics/truncate_frame_downstream").status == 204


def test_truncate_frame_upstream_and_little_endian_headers(api: Api) -> None:
    seen: list[bytes] = []
    with upstream(lambda conn: seen.append(recv_all(conn))) as server:
        address = listen_address(api.create_proxy("f", server.address))
        api.add_toxic(
            "f",
            "truncate_frame",
            stream="upstream",
            attributes={"header_size": 2, "byte_order": "little", "frame": 2},
        )
        with connect(address) as sock:
            frames = [
                encode_frame(p, header_size=2, byte_order="little") for p in (b"a", b"bb", b"cccc")
            ]
            sock.sendall(b"".join(frames))
            assert recv_all(sock) == b""
        wait_for(lambda: bool(seen))
    assert seen == [frames[0] + frames[1] + frames[2][:4]]  # header + half of the body


def test_truncate_frame_on_garbage_never_crashes(
    api: Api, echo_server: Upstream, server: EmbeddedServer
) -> None:
    address = listen_address(api.create_proxy("g", echo_server.address))
    api.add_toxic("g", "truncate_frame", attributes={"frame": 3, "at": "body"})
    garbage = os.urandom(200_000)
    with connect(address) as sock:
        sender = threading.Thread(target=sock.sendall, args=(garbage,))
        sender.start()
        received = b""
        sock.settimeout(0.3)
        try:
            while len(received) < len(garbage):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            pass  # the garbage declared a frame 3 that ends past our data: we got a prefix
        sender.join(5)
    assert garbage.startswith(received)
    assert server.take_errors() == []


def test_framed_client_with_retry_recovers(api: Api, framed_server: Upstream) -> None:
    address = listen_address(api.create_proxy("f", framed_server.address))
    api.add_toxic("f", "truncate_frame", max_connections=1, attributes={"at": "body"})
    policy = RetryPolicy(attempts=4, deadline=5.0, initial=0.01)
    with FramedClient(address, retry=policy, timeout=2.0) as client:
        assert client.request(b"deliver me") == b"deliver me"
        assert client.connections_opened == 2
    log = api.get("/proxies/f/connections").body
    assert log["opened"] == 2
    assert log["connections"][0]["toxics"] == ["truncate_frame_downstream"]
    assert log["connections"][1]["toxics"] == []


# -- limit_time, corrupt -----------------------------------------------------------------------


@pytest.mark.parametrize(("then", "error"), [("close", None), ("reset", ConnectionResetError)])
def test_limit_time_cuts_after_duration(
    api: Api, echo_server: Upstream, then: str, error: type[Exception] | None
) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "limit_time", attributes={"duration": 150, "then": then})
    with connect(address) as sock:
        start = time.monotonic()
        sock.sendall(b"alive")
        assert recv_exactly(sock, 5) == b"alive"  # data flows until the cut
        if error is None:
            assert recv_all(sock) == b""
        else:
            with pytest.raises(error):
                recv_all(sock)
        assert 0.14 <= time.monotonic() - start < 1.0


def test_corrupt_flips_one_bit_per_byte(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "corrupt", attributes={"probability": 1.0})
    payload = bytes(range(256))
    with connect(address) as sock:
        sock.sendall(payload)
        received = recv_exactly(sock, len(payload))
    assert all(bin(a ^ b).count("1") == 1 for a, b in zip(payload, received, strict=True))


def test_corrupt_rate_follows_probability(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "corrupt", attributes={"probability": 0.1})
    payload = bytes(20_000)
    with connect(address) as sock:
        sock.sendall(payload)
        received = recv_exactly(sock, len(payload))
    changed = sum(1 for byte in received if byte)
    assert 1500 < changed < 2500


def test_corrupt_body_only_keeps_frames_readable(api: Api, framed_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", framed_server.address))
    api.add_toxic(
        "p", "corrupt", stream="upstream", attributes={"probability": 0.5, "body_only": True}
    )
    payloads = [bytes(n) for n in (1, 50, 3000, 0, 70_000)]
    with connect(address) as sock:
        for payload in payloads:
            send_frame(sock, payload)
            reply = recv_frame(sock)
            assert reply is not None
            assert len(reply) == len(payload)  # the header survived
            if len(payload) >= 50:
                assert reply != payload


# -- connect-phase toxics ------------------------------------------------------------------------


def test_refuse_new_keeps_existing(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    with connect(address) as live:
        api.add_toxic("p", "refuse_new")
        with pytest.raises(ConnectionRefusedError):
            connect(address)
        live.sendall(b"still here")
        assert recv_exactly(live, 10) == b"still here"
        api.delete("/proxies/p/toxics/refuse_new_downstream")
        assert round_trip(address) == b"ping"
        live.sendall(b"!")
        assert recv_exactly(live, 1) == b"!"


def test_stall_accept_hangs_new_connects_until_their_timeout(
    api: Api, echo_server: Upstream
) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    with connect(address) as live:
        api.add_toxic("p", "stall_accept")
        for _ in range(2):
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                socket.create_connection(address, timeout=0.2)
            assert time.monotonic() - start >= 0.19
        live.sendall(b"works")
        assert recv_exactly(live, 5) == b"works"
        api.delete("/proxies/p/toxics/stall_accept_downstream")
        assert round_trip(address) == b"ping"
    assert api.get("/proxies/p/connections").body["opened"] == 2  # fillers are not counted


def test_stalled_connect_gets_through_after_removal(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "stall_accept")
    outcome: list[object] = []

    def patient_client() -> None:
        try:
            outcome.append(round_trip(address, b"late"))
        except OSError as exc:
            outcome.append(exc)

    client = threading.Thread(target=patient_client)
    client.start()
    time.sleep(0.1)  # let its SYN be dropped: this is the situation under test
    api.delete("/proxies/p/toxics/stall_accept_downstream")
    client.join(5)
    assert outcome == [b"late"]  # its SYN retransmission got in


def test_reset_on_accept(api: Api) -> None:
    with upstream() as server:
        address = listen_address(api.create_proxy("p", server.address))
        api.add_toxic("p", "reset_on_accept", max_connections=1)
        # The handshake completes; the reset follows so fast that connect() itself may
        # already report it, else the first read does.
        with pytest.raises(ConnectionResetError):
            round_trip(address)
        assert round_trip(address) == b"ping"  # the second connection is not targeted
        server.wait_accepted(1)
    record = api.get("/proxies/p/connections").body["connections"][0]
    assert (record["closed_by"], record["close_kind"]) == (
        "toxic reset_on_accept_downstream",
        "rst",
    )


# -- targeting, connection log ------------------------------------------------------------------


def test_first_connection_reset_retry_gets_through(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "reset_peer", max_connections=1)
    with connect(address) as first:
        first.sendall(b"x")
        with pytest.raises(ConnectionResetError):
            recv_all(first)
    assert round_trip(address) == b"ping"
    wait_for(lambda: api.get("/proxies/p/connections").body["open"] == 0)
    assert api.get("/proxies/p/connections").body["opened"] == 2


def test_only_the_third_connection_is_hit(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    with connect(address) as earlier:  # open before the toxic: never targeted
        api.add_toxic("p", "timeout", skip_connections=2, max_connections=1)
        results = []
        for _ in range(4):
            with connect(address, timeout=0.2) as sock:
                sock.sendall(b"?")
                try:
                    results.append(recv_exactly(sock, 1) == b"?")
                except TimeoutError:
                    results.append(False)
        assert results == [True, True, False, True]
        earlier.sendall(b"e")
        assert recv_exactly(earlier, 1) == b"e"


def test_connection_log_counts_and_bounds(echo_server: Upstream) -> None:
    with EmbeddedServer(seed=3, history=5) as small:
        api = Api(small.url)
        address = listen_address(api.create_proxy("p", echo_server.address))
        held = [connect(address) for _ in range(3)]
        for _ in range(5):
            assert round_trip(address, b"12345678") == b"12345678"
        wait_for(lambda: api.get("/proxies/p/connections").body["open"] == 3)
        log = api.get("/proxies/p/connections").body
        assert (log["opened"], log["open"], log["history"]) == (8, 3, 5)
        assert [r["id"] for r in log["connections"]] == [4, 5, 6, 7, 8]
        closed = log["connections"][-1]
        assert closed["bytes_upstream"] == closed["bytes_downstream"] == 8
        assert closed["closed_by"] == "client"
        assert closed["close_kind"] == "fin"
        assert closed["closed_at"] >= closed["opened_at"]
        assert closed["client"].startswith("127.0.0.1:")
        for sock in held:
            sock.close()
        wait_for(lambda: api.get("/proxies/p/connections").body["open"] == 0)
        api.close()
        assert small.take_errors() == []


def test_extension_bad_input(api: Api, echo_server: Upstream) -> None:
    api.create_proxy("p", echo_server.address)
    for body, fragment in [
        ({"type": "truncate_frame", "attributes": {"at": "middle"}}, "attributes.at"),
        ({"type": "truncate_frame", "attributes": {"then": "explode"}}, "attributes.then"),
        ({"type": "truncate_frame", "attributes": {"header_size": 3}}, "attributes.header_size"),
        (
            {"type": "corrupt", "attributes": {"header_size": 9}},
            "attributes.header_size: must be 1, 2, 4 or 8, got 9",
        ),
        (
            {"type": "truncate_frame", "attributes": {"header_size": 1, "at": "header"}},
            "attributes.at",
        ),
        ({"type": "truncate_frame", "attributes": {"frame": -1}}, "attributes.frame"),
        ({"type": "corrupt", "attributes": {"probability": 1.5}}, "attributes.probability"),
        ({"type": "corrupt", "attributes": {"probability": -0.1}}, "attributes.probability"),
        ({"type": "corrupt", "attributes": {"body_only": "yes"}}, "attributes.body_only"),
        ({"type": "limit_time", "attributes": {"then": "hang"}}, "attributes.then"),
        ({"type": "refuse_new", "max_connections": 1}, "max_connections"),
        ({"type": "reset_peer", "skip_connections": -2}, "skip_connections"),
    ]:
        reply = api.post("/proxies/p/toxics", body)
        assert reply.status == 400, (body, reply)
        assert fragment in reply.body["error"]
