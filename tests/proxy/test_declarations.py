"""A toxic's declaration drives the API: where it fits, which streams, the seed range.

Toxics declared here, registered for one test, stand for the next ones (UDP
datagram toxics, message-aware toxics): the API must refuse them, naming the
field, on a proxy they do not fit.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.proxy.toxics import REGISTRY
from chaosnet.proxy.toxics.base import Toxic
from chaosnet.seeds import MAX_SEED
from tests.proxy.support import Api, Upstream, listen_address, round_trip


class UpstreamOnly(Toxic):
    type_name = "upstream_only"
    streams: ClassVar = ("upstream",)
    __slots__ = ()


class DatagramOnly(Toxic):
    type_name = "datagram_only"
    transports: ClassVar = ("udp",)
    __slots__ = ()


class NeedsHttp(Toxic):
    type_name = "needs_http"
    protocols: ClassVar = ("http1",)
    __slots__ = ()


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> None:
    for toxic in (UpstreamOnly, DatagramOnly, NeedsHttp):
        monkeypatch.setitem(REGISTRY, toxic.type_name, toxic)


@pytest.mark.usefixtures("declared")
def test_a_toxic_for_another_transport_is_refused_naming_the_type(
    api: Api, echo_server: Upstream
) -> None:
    api.create_proxy("p", echo_server.address)
    reply = api.post("/proxies/p/toxics", {"type": "datagram_only"})
    assert (reply.status, reply.body["error"]) == (
        400,
        "type: datagram_only works on udp proxies, not on a tcp proxy (proxy p)",
    )
    assert api.get("/proxies/p/toxics").body == []


def test_a_tcp_toxic_is_refused_on_a_proxy_of_another_transport(
    server: EmbeddedServer, api: Api, echo_server: Upstream
) -> None:
    api.create_proxy("p", echo_server.address)
    server.call_in_engine(lambda engine: setattr(engine.get("p"), "transport", "udp"))
    reply = api.post("/proxies/p/toxics", {"type": "slicer"})
    assert (reply.status, reply.body["error"]) == (
        400,
        "type: slicer works on tcp proxies, not on a udp proxy (proxy p)",
    )


@pytest.mark.usefixtures("declared")
def test_a_message_aware_toxic_needs_the_proxy_to_speak_its_protocol(
    server: EmbeddedServer, api: Api, echo_server: Upstream
) -> None:
    api.create_proxy("p", echo_server.address)
    reply = api.post("/proxies/p/toxics", {"type": "needs_http"})
    assert (reply.status, reply.body["error"]) == (
        400,
        "type: needs_http needs a proxy with protocol http1, not none (proxy p)",
    )
    api.create_proxy("q", echo_server.address, protocol="resp")
    reply = api.post("/proxies/q/toxics", {"type": "needs_http"})
    assert (
        reply.body["error"]
        == "type: needs_http needs a proxy with protocol http1, not resp (proxy q)"
    )
    api.create_proxy("h", echo_server.address, protocol="http1")
    assert api.add_toxic("h", "needs_http")["name"] == "needs_http_downstream"


@pytest.mark.usefixtures("declared")
def test_a_toxic_goes_only_on_the_streams_it_declares(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    reply = api.post("/proxies/p/toxics", {"type": "upstream_only", "stream": "downstream"})
    assert (reply.status, reply.body["error"]) == (
        400,
        "stream: upstream_only applies to upstream only",
    )
    added = api.add_toxic("p", "upstream_only")  # its only stream is the default
    assert (added["name"], added["stream"]) == ("upstream_only_upstream", "upstream")
    assert round_trip(address) == b"ping"


@pytest.mark.parametrize(("seed", "status"), [(MAX_SEED, 200), (MAX_SEED + 1, 400), (-1, 400)])
def test_the_api_takes_the_seed_range_of_scenario_files_and_settings(
    api: Api, echo_server: Upstream, seed: int, status: int
) -> None:
    api.create_proxy("p", echo_server.address)
    reply = api.post("/proxies/p/toxics", {"type": "latency", "seed": seed})
    assert reply.status == status, reply
    if status == 400:
        assert reply.body["error"] == (
            f"seed: must be a whole number from 0 to {MAX_SEED}, got {seed}"
        )
