"""Issue 14.2-3: a toxic whose arithmetic would overflow is refused where its attributes
are declared, and whatever a data-path handler raises resets that one connection."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.proxy.toxics import REGISTRY
from chaosnet.proxy.toxics.base import MIN_FRACTION, Toxic
from chaosnet.scenario.toxics import TOXICS_BY_TYPE
from tests.proxy.support import Api, Upstream, connect, listen_address, round_trip

FLOAT_ATTRIBUTES = [
    (cls.type_name, attr.name)
    for cls in REGISTRY.values()
    for attr in cls.attributes
    if attr.kind == "float"
]


@pytest.mark.parametrize(("kind", "name"), FLOAT_ATTRIBUTES)
@pytest.mark.parametrize("tiny", [1e-320, 5e-324, MIN_FRACTION / 2])
def test_subnormal_floats_are_refused_by_api_and_scenario(
    api: Api, echo_server: Upstream, kind: str, name: str, tiny: float
) -> None:
    toxic = {"type": kind, "attributes": {name: tiny}}
    if "tcp" in REGISTRY[kind].transports:
        api.create_proxy("c", echo_server.address)
        with connect(listen_address(api.get("/proxies/c").body)):  # a live connection
            reply = api.post("/proxies/c/toxics", toxic)
    else:  # a datagram toxic, on a proxy of its own transport
        api.create_proxy("c", echo_server.address, transport="udp")
        reply = api.post("/proxies/c/toxics", toxic)
    assert reply.status == 400, reply
    assert f"attributes.{name}" in str(reply.body), reply.body
    assert api.get("/proxies/c/toxics").body == []  # nothing half-registered
    with pytest.raises(ValueError, match=f"must be 0 or at least {MIN_FRACTION:g}"):
        TOXICS_BY_TYPE[kind].model_validate({"type": kind, name: tiny})


def test_smallest_probability_still_corrupts_without_hanging(
    api: Api, echo_server: Upstream
) -> None:
    api.create_proxy("c", echo_server.address)
    api.add_toxic("c", "corrupt", attributes={"probability": MIN_FRACTION})
    address = listen_address(api.get("/proxies/c").body)
    for _ in range(3):  # was: every new connection hung
        assert round_trip(address, b"x" * 1000) == b"x" * 1000


class Exploding(Toxic):
    """A toxic whose per-connection setup raises, as a toxic bug would."""

    type_name = "exploding"

    def __init__(self, *args: object) -> None:
        raise OverflowError("cannot convert float infinity to integer")


def outcome(target: socket.socket | tuple[str, int]) -> str:
    """What a client sees after sending a request: ``reset``, ``eof`` or ``data``.

    ``target`` is an open socket or an address to connect to; under load the proxy's
    reset can reach a new client while ``connect()`` is still returning."""
    try:
        sock = target if isinstance(target, socket.socket) else connect(target)
    except ConnectionResetError:
        return "reset"
    with sock:
        sock.settimeout(2)
        try:
            sock.sendall(b"ping")
            return "data" if sock.recv(4) else "eof"
        except ConnectionResetError:
            return "reset"


@pytest.fixture
def exploding() -> Iterator[None]:
    REGISTRY["exploding"] = Exploding
    try:
        yield
    finally:
        del REGISTRY["exploding"]


def test_a_toxic_that_raises_resets_only_its_connection(
    server: EmbeddedServer, api: Api, echo_server: Upstream, exploding: None
) -> None:
    api.create_proxy("x", echo_server.address)
    address = listen_address(api.get("/proxies/x").body)
    live = connect(address)
    reply = api.post("/proxies/x/toxics", {"type": "exploding"})
    assert reply.status == 200, reply  # was a 500, with the toxic registered anyway
    assert outcome(live) == "reset"
    assert outcome(address) == "reset"  # was: every new connection hung, never closed
    log = api.get("/proxies/x/connections?wait_open=0&timeout_ms=2000").body
    assert log["open"] == 0, log
    assert all("internal error" in record.get("error", "") for record in log["connections"])
    api.delete("/proxies/x/toxics/exploding_downstream")
    assert round_trip(address) == b"ping"
    errors = server.take_errors()
    assert len(errors) == 2, errors
    assert all(isinstance(error, OverflowError) for error in errors)
