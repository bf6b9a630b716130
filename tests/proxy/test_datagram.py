"""Datagram proxies through real sockets: flows, enabling, the flow log, each toxic."""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chaosnet.chaos import Chaos
from chaosnet.control import ControlClient
from chaosnet.datagram import DatagramClient, NoReply
from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.retry import RetryError, RetryPolicy
from tests.proxy.datagram_support import (
    FENCE,
    UdpUpstream,
    client_socket,
    number_of,
    numbered,
    open_fds,
    protocol_echo,
    raw_echo,
    send_fenced,
    udp_upstream,
)
from tests.proxy.support import Api, listen_address

Address = tuple[str, int]
FLOW_TIMEOUT_MS = 2500  # long enough to open 1,000 flows on a loaded machine first


@pytest.fixture
def sink() -> Iterator[UdpUpstream]:
    with udp_upstream() as running:
        yield running


@pytest.fixture
def echo() -> Iterator[UdpUpstream]:
    with udp_upstream(protocol_echo) as running:
        yield running


@pytest.fixture
def chaos(server: EmbeddedServer) -> Iterator[Chaos]:
    client = ControlClient(server.url, backend="embedded")
    with Chaos(client) as controller:
        yield controller
    client.close()


def udp_proxy(api: Api, name: str, upstream: Address, **extra: Any) -> Address:
    return listen_address(api.create_proxy(name, upstream, transport="udp", **extra))


def flows(api: Api, name: str) -> dict[str, Any]:
    reply = api.get(f"/proxies/{name}/connections")
    assert reply.status == 200, reply
    body: dict[str, Any] = reply.body
    return body


# -- forwarding and flows ---------------------------------------------------------------


def test_replies_go_back_to_each_sender(api: Api) -> None:
    with udp_upstream(raw_echo) as upstream:
        address = udp_proxy(api, "u1", upstream.address)
        first, second = client_socket(), client_socket()
        first_port = first.getsockname()[1]
        try:
            first.sendto(b"from first", address)
            second.sendto(b"from second", address)
            assert first.recvfrom(100) == (b"from first", address)
            assert second.recvfrom(100) == (b"from second", address)
        finally:
            first.close()
            second.close()
    log = flows(api, "u1")
    assert (log["opened"], log["open"]) == (2, 2)
    record = log["connections"][0]
    assert record["client"] == f"127.0.0.1:{first_port}"
    assert record["datagrams_upstream"] == 1
    assert record["datagrams_downstream"] == 1
    assert record["bytes_upstream"] == len(b"from first")
    assert record["closed_at"] is None


def test_proxy_json_says_transport_and_flow_timeout(api: Api, sink: UdpUpstream) -> None:
    body = api.create_proxy("u2", sink.address, transport="udp", flow_timeout=1500)
    assert body["transport"] == "udp"
    assert body["flow_timeout"] == 1500
    assert api.get("/proxies/u2").body["flow_timeout"] == 1500
    tcp = api.create_proxy("t2", sink.address)
    assert "transport" not in tcp  # TCP proxies answer exactly as Toxiproxy does


def test_thousand_flows_expire_and_release_their_sockets(api: Api, sink: UdpUpstream) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 4096)
    if soft < wanted:  # 1,000 flow sockets in this very process (the embedded proxy)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        address = udp_proxy(api, "u3", sink.address, flow_timeout=FLOW_TIMEOUT_MS)
        before = open_fds()
        clients, batch = 1000, 100
        for start in range(0, clients, batch):
            for host in range(start, start + batch):  # 1,000 source addresses: 127.0.x.y
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                    sender.bind((f"127.0.{1 + host // 250}.{1 + host % 250}", 0))
                    sender.sendto(numbered(host), address)
            # a batch fits the proxy's socket buffer; wait for its flows before the next
            path = f"/proxies/u3/connections?wait_open={start + batch}&timeout_ms=4000"
            assert api.get(path).body["open"] == start + batch
        sent_at = time.monotonic()
        log = flows(api, "u3")
        assert (log["opened"], log["open"]) == (clients, clients)
        assert open_fds() >= before + clients  # each flow holds its own socket
        log = api.get("/proxies/u3/connections?wait_open=0&timeout_ms=4500").body
        gone_after = time.monotonic() - sent_at
        assert log["open"] == 0
        assert gone_after < FLOW_TIMEOUT_MS / 1000 + 3.0, gone_after
        opened = [r["opened_at"] for r in log["connections"]]
        lived = [r["closed_at"] - r["opened_at"] for r in log["connections"]]
        timeout = FLOW_TIMEOUT_MS / 1000
        assert min(lived) >= timeout - 0.01, min(lived)  # never before flow_timeout
        assert max(lived) < timeout + 1.0 + (max(opened) - min(opened)), max(lived)
        assert {r["closed_by"] for r in log["connections"]} == {"idle"}
        assert len({r["client"] for r in log["connections"]}) == clients
        assert open_fds() == before
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_traffic_keeps_a_flow_open(api: Api) -> None:
    with udp_upstream(raw_echo) as upstream:
        address = udp_proxy(api, "u4", upstream.address, flow_timeout=200)
        sock = client_socket()
        try:
            until = time.monotonic() + 0.5
            while time.monotonic() < until:  # a datagram every 50 ms: never idle 200 ms
                sock.sendto(b"tick", address)
                assert sock.recv(10) == b"tick"
                time.sleep(0.05)  # the traffic pattern under test, not synchronisation
            log = flows(api, "u4")
            assert (log["opened"], log["open"]) == (1, 1)
        finally:
            sock.close()


def test_disabled_proxy_is_silent_then_forwards_again(chaos: Chaos, echo: UdpUpstream) -> None:
    proxy = chaos.proxy(echo.address, transport="udp")
    policy = RetryPolicy(attempts=2)
    with DatagramClient(proxy.address, retry=policy, timeout=0.2) as client:
        assert client.request(b"before") == b"before"
        assert proxy.connections.open == 1
        proxy.disable()
        assert proxy.connections.open == 0  # every flow closed, its socket too
        with pytest.raises(RetryError) as failure:
            client.request(b"while disabled")
        # Silence, never an ICMP refusal: the port stays bound to the proxy.
        assert all(isinstance(a.error, NoReply) for a in failure.value.attempts)
        proxy.enable()
        assert client.request(b"after") == b"after"
    log = proxy.connections
    assert log.opened == 2
    assert log.records[0].closed_by == "proxy"
    assert b"while disabled" not in b"".join(echo.received)


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"transport": "sctp"}, "transport"),
        ({"transport": "udp", "protocol": "resp"}, "protocol"),
        ({"flow_timeout": 100}, "flow_timeout"),
        ({"transport": "udp", "flow_timeout": 0}, "flow_timeout"),
        ({"transport": "udp", "flow_timeout": "soon"}, "flow_timeout"),
    ],
)
def test_bad_proxy_bodies_name_the_field(
    api: Api, sink: UdpUpstream, body: dict[str, Any], field: str
) -> None:
    reply = api.post("/proxies", {"name": "bad", "upstream": "{}:{}".format(*sink.address), **body})
    assert reply.status == 400, reply
    assert reply.body["error"].startswith(field), reply.body
    assert api.get("/proxies").body == {}


@pytest.mark.parametrize(
    "type_name",
    [
        "slicer",
        "slow_close",
        "reset_peer",
        "limit_data",
        "truncate_frame",
        "limit_time",
        "refuse_new",
        "stall_accept",
        "reset_on_accept",
    ],
)
def test_stream_toxics_are_refused_on_a_datagram_proxy(
    api: Api, sink: UdpUpstream, type_name: str
) -> None:
    udp_proxy(api, "u5", sink.address)
    reply = api.post("/proxies/u5/toxics", {"type": type_name})
    assert reply.status == 400
    error = reply.body["error"]
    assert error == f"type: {type_name} works on tcp proxies, not on a udp proxy (proxy u5)"
    assert api.get("/proxies/u5/toxics").body == []


@pytest.mark.parametrize("type_name", ["loss", "duplicate", "reorder", "truncate_datagram"])
def test_datagram_toxics_are_refused_on_a_tcp_proxy(
    api: Api, sink: UdpUpstream, type_name: str
) -> None:
    api.create_proxy("t5", sink.address)
    reply = api.post("/proxies/t5/toxics", {"type": type_name})
    assert reply.status == 400
    error = reply.body["error"]
    assert error == f"type: {type_name} works on udp proxies, not on a tcp proxy (proxy t5)"


@pytest.mark.parametrize(
    ("toxic", "message"),
    [
        ({"type": "loss", "attributes": {"probability": 1.5}}, "attributes.probability"),
        ({"type": "loss", "attributes": {"probability": -0.1}}, "attributes.probability"),
        ({"type": "duplicate", "attributes": {"probability": 2}}, "attributes.probability"),
        ({"type": "reorder", "attributes": {"probability": 7}}, "attributes.probability"),
        ({"type": "corrupt", "attributes": {"probability": 1.01}}, "attributes.probability"),
        ({"type": "loss", "attributes": {"burst_length": 0.5}}, "attributes.burst_length"),
        (
            {"type": "loss", "attributes": {"probability": 0.9, "burst_length": 2}},
            "attributes.probability",
        ),
        ({"type": "corrupt", "attributes": {"body_only": True}}, "attributes.body_only"),
        ({"type": "duplicate", "attributes": {"copies": 0}}, "attributes.copies"),
    ],
)
def test_bad_datagram_toxics_name_the_field(
    api: Api, sink: UdpUpstream, toxic: dict[str, Any], message: str
) -> None:
    udp_proxy(api, "u6", sink.address)
    reply = api.post("/proxies/u6/toxics", toxic)
    assert reply.status == 400, reply
    assert reply.body["error"].startswith(message), reply.body


# -- loss -------------------------------------------------------------------------------


def lossy(api: Api, name: str, upstream: UdpUpstream, seed: int, **attributes: Any) -> Address:
    address = udp_proxy(api, name, upstream.address)
    api.add_toxic(
        name, "loss", stream="upstream", seed=seed, max_connections=1, attributes=attributes
    )
    return address


def test_loss_rate_over_twenty_thousand_datagrams(api: Api, sink: UdpUpstream) -> None:
    address = lossy(api, "u7", sink, seed=7, probability=0.1)
    received = send_fenced(address, sink, 20_000)
    loss = 1 - len(received) / 20_000
    assert abs(loss - 0.10) <= 0.01, loss
    record = flows(api, "u7")["connections"][0]
    assert record["toxic_counts"]["loss_upstream"]["dropped"] == 20_000 - len(received)
    assert record["datagrams_upstream"] == len(received)


def test_same_seed_and_order_lose_the_same_datagrams(api: Api, sink: UdpUpstream) -> None:
    def run(seed: int) -> list[int]:
        sink.clear()
        address = lossy(api, "u8", sink, seed=seed, probability=0.3)
        try:
            return send_fenced(address, sink, 2000)
        finally:
            assert api.delete("/proxies/u8").status == 204

    first, again, other = run(11), run(11), run(12)
    assert first == again
    assert first != other


def test_bursty_loss_has_the_mean_burst_length(api: Api, sink: UdpUpstream) -> None:
    address = lossy(api, "u9", sink, seed=5, probability=0.2, burst_length=4.0)
    count = 20_000
    received = set(send_fenced(address, sink, count))
    bursts, run = [], 0
    for seq in range(count):
        if seq in received:
            if run:
                bursts.append(run)
            run = 0
        else:
            run += 1
    mean = sum(bursts) / len(bursts)
    assert abs(mean - 4.0) <= 0.8, mean  # within 20 %
    assert abs((1 - len(received) / count) - 0.2) <= 0.03
    independent = lossy(api, "u9b", sink, seed=5, probability=0.2)
    sink.clear()
    received = set(send_fenced(independent, sink, count))
    runs = "".join("x" if seq not in received else "." for seq in range(count)).split(".")
    lengths = [len(r) for r in runs if r]
    assert sum(lengths) / len(lengths) < 1.5  # independent losses: bursts of 1/(1-p) = 1.25


# -- duplicate, reorder, truncate, corrupt, latency, bandwidth, timeout ------------------


def test_duplicates_are_exact_copies_and_repeat_with_the_seed(api: Api, sink: UdpUpstream) -> None:
    def run() -> list[int]:
        sink.clear()
        address = udp_proxy(api, "d1", sink.address)
        api.add_toxic(
            "d1",
            "duplicate",
            stream="upstream",
            seed=3,
            max_connections=1,
            attributes={"probability": 0.25, "copies": 2},
        )
        try:
            return send_fenced(address, sink, 1000)
        finally:
            record = flows(api, "d1")["connections"][0]
            api.delete("/proxies/d1")
            extra = record["toxic_counts"]["duplicate_upstream"]["duplicated"]
            assert record["datagrams_upstream"] == 1000 + extra

    first, again = run(), run()
    assert first == again
    extra = len(first) - 1000
    assert extra % 2 == 0
    assert 0.2 <= extra / 2 / 1000 <= 0.3
    assert sorted(set(first)) == list(range(1000))


def test_duplicate_spacing_sends_copies_later(api: Api) -> None:
    with udp_upstream(raw_echo) as upstream:
        address = udp_proxy(api, "d2", upstream.address)
        api.add_toxic("d2", "duplicate", attributes={"copies": 2, "spacing": 40})
        sock = client_socket()
        try:
            sock.sendto(b"once", address)
            started = time.monotonic()
            arrivals = []
            for _ in range(3):
                assert sock.recv(10) == b"once"
                arrivals.append(time.monotonic() - started)
        finally:
            sock.close()
    assert arrivals[0] < 0.03
    assert 0.035 <= arrivals[1] < 0.2
    assert 0.075 <= arrivals[2] < 0.3


def test_reorder_lets_later_datagrams_overtake_deterministically(
    api: Api, sink: UdpUpstream
) -> None:
    def run() -> list[int]:
        sink.clear()
        address = udp_proxy(api, "r1", sink.address)
        api.add_toxic(
            "r1",
            "reorder",
            stream="upstream",
            seed=9,
            attributes={"probability": 0.2, "delay": 150},
        )
        sock = client_socket()
        try:
            for seq in range(200):
                sock.sendto(numbered(seq), address)
            sink.wait_for(lambda got: len(got) == 200)
            counts = flows(api, "r1")["connections"][0]["toxic_counts"]["reorder_upstream"]
        finally:
            sock.close()
            api.delete("/proxies/r1")
        order = [int.from_bytes(d[:4], "big") for d in sink.received]
        held = [seq for seq in order if any(later > seq for later in order[: order.index(seq)])]
        assert counts["reordered"] == len(held)
        return order

    first, again = run(), run()
    assert first == again
    assert sorted(first) == list(range(200))
    assert first != sorted(first)


def test_truncate_datagram_keeps_the_first_bytes(api: Api) -> None:
    with udp_upstream(raw_echo) as upstream:
        address = udp_proxy(api, "x1", upstream.address)
        api.add_toxic("x1", "truncate_datagram", attributes={"size": 5})
        sock = client_socket()
        try:
            sock.sendto(b"0123456789", address)
            assert sock.recv(100) == b"01234"
            sock.sendto(b"abc", address)
            assert sock.recv(100) == b"abc"
        finally:
            sock.close()
    counts = flows(api, "x1")["connections"][0]["toxic_counts"]["truncate_datagram_downstream"]
    assert counts["truncated"] == 1


def test_corrupt_flips_bits_and_counts_datagrams(api: Api) -> None:
    with udp_upstream(raw_echo) as upstream:
        address = udp_proxy(api, "c1", upstream.address)
        api.add_toxic("c1", "corrupt", seed=1, attributes={"probability": 1.0})
        sock = client_socket()
        try:
            payload = bytes(range(32))
            sock.sendto(payload, address)
            got = sock.recv(100)
        finally:
            sock.close()
    assert len(got) == len(payload)
    assert all(bin(a ^ b).count("1") == 1 for a, b in zip(got, payload, strict=True))
    counts = flows(api, "c1")["connections"][0]["toxic_counts"]["corrupt_downstream"]
    assert counts["corrupted"] == 1


def test_latency_with_jitter_lets_datagrams_overtake(api: Api, sink: UdpUpstream) -> None:
    address = udp_proxy(api, "l1", sink.address)
    api.add_toxic(
        "l1", "latency", stream="upstream", seed=2, attributes={"latency": 60, "jitter": 50}
    )
    sock = client_socket()
    try:
        started = time.monotonic()
        for seq in range(100):
            sock.sendto(numbered(seq), address)
        sink.wait_for(lambda got: len(got) == 100)
        took = time.monotonic() - started
    finally:
        sock.close()
    order = [int.from_bytes(d[:4], "big") for d in sink.received]
    assert sorted(order) == list(range(100))
    assert order != sorted(order)  # jitter reordered them, as a network would
    assert 0.06 <= took < 0.5


def test_latency_without_jitter_keeps_order_and_delays(api: Api) -> None:
    with udp_upstream(raw_echo) as upstream:
        address = udp_proxy(api, "l2", upstream.address)
        api.add_toxic("l2", "latency", attributes={"latency": 50})
        sock = client_socket()
        try:
            started = time.monotonic()
            for seq in range(20):
                sock.sendto(numbered(seq), address)
            order = [int.from_bytes(sock.recv(100)[:4], "big") for _ in range(20)]
            took = time.monotonic() - started
        finally:
            sock.close()
    assert order == list(range(20))
    assert 0.05 <= took < 0.3


def test_bandwidth_paces_and_tail_drops(api: Api, sink: UdpUpstream) -> None:
    address = udp_proxy(api, "b1", sink.address)
    api.add_toxic("b1", "bandwidth", stream="upstream", max_connections=1, attributes={"rate": 100})
    sock, fencer = client_socket(), client_socket()
    try:
        started = time.monotonic()
        for seq in range(100):  # 100 KB at once into a 100 KB/s link with a 50 KB queue
            sock.sendto(numbered(seq, 1000), address)
        fencer.sendto(FENCE, address)  # a second flow, not limited: all 100 were handled
        sink.wait_for(lambda got: FENCE in got)
        record = flows(api, "b1")["connections"][0]
        dropped = record["toxic_counts"]["bandwidth_upstream"]["dropped"]
        sink.wait_for(lambda got: len(got) == 1 + 100 - dropped)
        took = time.monotonic() - started
    finally:
        sock.close()
        fencer.close()
    assert 45 <= 100 - dropped <= 55, dropped
    assert 0.4 <= took < 1.5, took  # ~50 KB at 100 KB/s
    got = [number_of(d) for d in sink.received if d != FENCE]
    assert got == sorted(got)  # a queue, not a shuffle
    assert got == list(range(len(got)))  # tail drop: the first ones got through


def test_timeout_is_a_black_hole_until_removed(chaos: Chaos, echo: UdpUpstream) -> None:
    proxy = chaos.proxy(echo.address, transport="udp")
    with DatagramClient(proxy.address, timeout=0.1, retry=RetryPolicy(attempts=3)) as client:
        assert client.request(b"a") == b"a"
        with proxy.toxic("timeout", stream="upstream"):
            started = time.monotonic()
            with pytest.raises(RetryError):
                client.request(b"lost")
            assert time.monotonic() - started < 1.0
        assert client.request(b"b") == b"b"
    counts = proxy.connections.records[0].toxic_counts["timeout_upstream"]
    assert counts["dropped"] == 3


def test_timeout_with_a_limit_closes_the_flow(api: Api, sink: UdpUpstream) -> None:
    address = udp_proxy(api, "t1", sink.address)
    api.add_toxic("t1", "timeout", stream="upstream", attributes={"timeout": 100})
    sock = client_socket()
    try:
        sock.sendto(b"x", address)
        log = api.get("/proxies/t1/connections?wait_open=1&timeout_ms=2000").body
        assert log["opened"] == 1
        log = api.get("/proxies/t1/connections?wait_open=0&timeout_ms=2000").body
    finally:
        sock.close()
    assert log["connections"][0]["closed_by"] == "toxic timeout_upstream"
    assert sink.received == []


def test_removing_a_toxic_releases_what_it_holds(api: Api) -> None:
    with udp_upstream(raw_echo) as upstream:
        address = udp_proxy(api, "h1", upstream.address)
        api.add_toxic("h1", "latency", stream="upstream", attributes={"latency": 10_000})
        sock = client_socket()
        try:
            sock.sendto(b"held", address)
            api.get("/proxies/h1/connections?wait_open=1&timeout_ms=2000")
            started = time.monotonic()
            assert api.delete("/proxies/h1/toxics/latency_upstream").status == 204
            assert sock.recv(10) == b"held"
            assert time.monotonic() - started < 1.0
        finally:
            sock.close()


# -- the client through the proxy --------------------------------------------------------


def test_client_recovers_under_thirty_percent_loss(chaos: Chaos, echo: UdpUpstream) -> None:
    proxy = chaos.proxy(echo.address, transport="udp")
    proxy.toxic("loss", stream="upstream", probability=0.3, seed=21)
    proxy.toxic("loss", stream="downstream", probability=0.3, seed=22)
    policy = RetryPolicy(attempts=30, deadline=20, initial=0.0, seed=1)
    with DatagramClient(proxy.address, retry=policy, timeout=0.02) as client:
        for i in range(50):
            assert client.request(b"req %d" % i) == b"req %d" % i
        assert client.ledger.answered == 50
        resent = client.attempts - 50
    record = proxy.connections.records[0]
    lost = sum(counts["dropped"] for counts in record.toxic_counts.values())
    assert lost > 0
    assert resent >= lost - client.ledger.duplicates - client.ledger.late
    assert resent > 0


def test_client_never_takes_a_duplicate_or_late_reply(chaos: Chaos, echo: UdpUpstream) -> None:
    proxy = chaos.proxy(echo.address, transport="udp")
    with DatagramClient(proxy.address, retry=RetryPolicy(attempts=1), timeout=0.05) as client:
        with proxy.toxic("duplicate", stream="downstream", copies=2):
            for i in range(20):
                assert client.request(b"n%d" % i) == b"n%d" % i
        assert client.ledger.duplicates >= 2 * 19  # the copies, read by the next requests
        with proxy.toxic("reorder", stream="downstream", delay=5000), pytest.raises(RetryError):
            client.request(b"too slow")  # its reply is held back
        # Removing the toxic released the held reply: it is read first, and skipped.
        assert client.request(b"next") == b"next"
        assert client.ledger.late == 1
        assert client.ledger.answered == 21
        assert client.ledger.abandoned == 1


def test_client_gives_up_within_its_deadline_under_a_black_hole(
    chaos: Chaos, echo: UdpUpstream
) -> None:
    proxy = chaos.proxy(echo.address, transport="udp")
    proxy.toxic("timeout", stream="upstream")
    # A constant wait, so the last attempt ends near the deadline whatever the draw: after a
    # jittered wait the one final attempt may start up to a whole wait before it.
    policy = RetryPolicy(attempts=None, deadline=0.5, backoff="constant", initial=0.02)
    with DatagramClient(proxy.address, retry=policy, timeout=0.1) as client:
        started = time.monotonic()
        with pytest.raises(RetryError) as failure:
            client.request(b"into the void")
        took = time.monotonic() - started
    assert 0.45 <= took < 0.7, took
    assert "deadline" in str(failure.value)
    assert client.ledger.abandoned == 1
