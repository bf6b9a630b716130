"""``GET /metrics`` with toxiproxy-server's flags, on ``chaosnet serve`` and the real server.

Both are started with the same flags; the Toxiproxy series must have the same
names, labels and values on both after the same traffic.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaosnet.backends.toxiproxy import ToxiproxyBackend
from tests.conformance.conftest import Backend, ChaosnetServe
from tests.proxy.support import Api, Upstream, connect, listen_address

PAYLOAD = b"m" * 1000
SCRAPE_DEADLINE_S = 5.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
Start = Callable[..., Backend]


@pytest.fixture(params=["chaosnet", "toxiproxy"])
def with_flags(request: pytest.FixtureRequest) -> Iterator[Start]:
    """A factory: the server named by the parameter, started with the given flags."""
    started: list[ChaosnetServe | ToxiproxyBackend] = []

    def start(*flags: str) -> Backend:
        if request.param == "chaosnet":
            served = ChaosnetServe(*flags)
            started.append(served)
            return Backend("chaosnet", served.url)
        bins: tuple[Path, Path] = request.getfixturevalue("toxiproxy_bins")
        server = ToxiproxyBackend(bins[0], args=flags)
        server.start()
        started.append(server)
        return Backend("toxiproxy", server.url)

    yield start
    for server in started:
        server.stop()


def scrape(api: Api) -> Samples:
    reply = api.get("/metrics")
    assert reply.status == 200, reply
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.body)
        for sample in family.samples
    }


def toxiproxy_series(samples: Samples) -> Samples:
    return {key: value for key, value in samples.items() if key[0].startswith("toxiproxy_")}


def scrape_until(api: Api, done: Callable[[Samples], bool]) -> Samples:
    """Toxiproxy adds a connection's bytes when it ends, a moment after the close."""
    deadline = time.monotonic() + SCRAPE_DEADLINE_S
    samples = scrape(api)
    while not done(samples) and time.monotonic() < deadline:
        time.sleep(0.02)
        samples = scrape(api)
    return samples


def one_round_trip(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        sock.sendall(PAYLOAD)
        got = b""
        while len(got) < len(PAYLOAD):
            chunk = sock.recv(65536)
            assert chunk, "the proxy closed early"
            got += chunk
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""


def test_proxy_metrics_names_labels_and_values(with_flags: Start, echo_server: Upstream) -> None:
    backend = with_flags("-proxy-metrics")
    api = Api(backend.url)
    try:
        proxy = api.create_proxy("m1", echo_server.address)
        one_round_trip(listen_address(proxy))
        samples = scrape_until(api, lambda s: len(toxiproxy_series(s)) == 4)
    finally:
        api.close()
    labels = {
        "proxy": "m1",
        "listener": proxy["listen"],
        "upstream": f"127.0.0.1:{echo_server.port}",
    }
    expected = {
        (name, tuple(sorted({**labels, "direction": direction}.items()))): float(len(PAYLOAD))
        for name in ("toxiproxy_proxy_received_bytes_total", "toxiproxy_proxy_sent_bytes_total")
        for direction in ("upstream", "downstream")
    }
    assert toxiproxy_series(samples) == expected


def test_chaosnet_counters_beside_toxiproxys(echo_server: Upstream) -> None:
    served = ChaosnetServe("-proxy-metrics")
    api = Api(served.url)
    try:
        proxy = api.create_proxy("m2", echo_server.address)
        api.add_toxic("m2", "latency", attributes={"latency": 1})
        one_round_trip(listen_address(proxy))
        assert api.get("/proxies/m2/connections?wait_open=0&timeout_ms=5000").body["open"] == 0
        samples = scrape(api)
    finally:
        api.close()
        served.stop()
    assert samples[("chaosnet_connections_opened_total", (("proxy", "m2"),))] == 1
    closed = (("by", "client"), ("kind", "fin"), ("proxy", "m2"))
    assert samples[("chaosnet_connections_closed_total", closed)] == 1
    activated = (("proxy", "m2"), ("type", "latency"))
    assert samples[("chaosnet_toxic_activations_total", activated)] == 1


def test_runtime_metrics_have_toxiproxys_process_names(with_flags: Start) -> None:
    """Toxiproxy's Go runtime series (``go_*``) cannot exist in Python: ``python_*`` instead."""
    backend = with_flags("-runtime-metrics")
    api = Api(backend.url)
    try:
        names = {name for name, _ in scrape(api)}
    finally:
        api.close()
    process = {
        "process_cpu_seconds_total",
        "process_max_fds",
        "process_open_fds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_virtual_memory_bytes",
    }
    assert process <= names
    assert not any(name.startswith("toxiproxy_") for name in names)  # no -proxy-metrics
    runtime = "python_" if backend.is_chaosnet else "go_"
    assert any(name.startswith(runtime) for name in names)


def test_metrics_off_is_404(backend: Backend, api: Api) -> None:
    assert api.get("/metrics").status == 404
