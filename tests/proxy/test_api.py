"""The control API of the embedded server: endpoints, status codes, bad input."""

from __future__ import annotations

import socket

import pytest

import chaosnet
from chaosnet.proxy.embedded import EmbeddedServer
from tests.proxy.support import Api, Upstream, listen_address, round_trip
from tests.support import open_fds


def test_chaosnet_endpoint_names_the_extensions_and_seed(api: Api, server: EmbeddedServer) -> None:
    reply = api.get("/chaosnet")
    assert reply.status == 200
    ext = reply.body
    assert ext["toxiproxy_api"] == "2.12.0"
    assert ext["version"] == chaosnet.__version__
    assert ext["seed"] == server.seed
    for feature in (
        "truncate_frame",
        "limit_time",
        "corrupt",
        "refuse_new",
        "stall_accept",
        "reset_on_accept",
        "skip_connections",
        "max_connections",
        "seed",
        "connections",
    ):
        assert feature in ext["extensions"]


def test_create_resolves_port_zero_and_lists(api: Api, echo_server: Upstream) -> None:
    proxy = api.create_proxy("one", echo_server.address)
    host, port = listen_address(proxy)
    assert (host, proxy["enabled"], proxy["toxics"]) == ("127.0.0.1", True, [])
    assert port > 0
    assert proxy["upstream"] == f"127.0.0.1:{echo_server.port}"
    assert api.get("/proxies/one").body == proxy
    assert api.get("/proxies").body == {"one": proxy}
    assert round_trip((host, port), b"hello") == b"hello"


def test_listen_defaults_to_loopback(api: Api, echo_server: Upstream) -> None:
    reply = api.post("/proxies", {"name": "p", "upstream": f"127.0.0.1:{echo_server.port}"})
    assert reply.status == 201
    assert reply.body["listen"].startswith("127.0.0.1:")
    reply = api.post(
        "/proxies",
        {"name": "q", "listen": "localhost:0", "upstream": f"127.0.0.1:{echo_server.port}"},
    )
    assert reply.body["listen"].startswith("127.0.0.1:")


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"upstream": "127.0.0.1:1"}, 400, "missing required field: name"),
        ({"name": "x"}, 400, "missing required field: upstream"),
        ({"name": 5, "upstream": "127.0.0.1:1"}, 400, "name must be a string"),
        ({"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"}, 400, "enabled"),
        (
            {"name": "x", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:70000"},
            400,
            "port 70000 out of range",
        ),
        ({"name": "x", "upstream": "127.0.0.1:0"}, 400, "upstream: port 0 out of range"),
        ({"name": "x", "upstream": "nohostport"}, 400, "upstream: expected host:port"),
        ([1, 2], 400, "expected a JSON object"),
    ],
)
def test_bad_proxy_bodies_are_400_naming_the_field(
    api: Api, body: object, status: int, fragment: str
) -> None:
    reply = api.post("/proxies", body)
    assert reply.status == status
    assert reply.body["status"] == status
    assert fragment in reply.body["error"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "bad request body"),
        (b"", "bad request body: empty"),
        (b'{"name": NaN}', "NaN"),
        (b"[" * 100000, "bad request body"),
    ],
)
def test_malformed_json_is_400(api: Api, raw: bytes, fragment: str) -> None:
    reply = api.request("POST", "/proxies", raw=raw)
    assert reply.status == 400
    assert fragment in reply.body["error"]


def test_body_over_one_mib_is_413(api: Api) -> None:
    reply = api.request("POST", "/proxies", raw=b" " * (1 << 20) + b"{}")
    assert reply.status == 413
    assert reply.body["status"] == 413


def test_browser_user_agent_is_403(server: EmbeddedServer) -> None:
    browser = Api(server.url, user_agent="Mozilla/5.0 (X11; Linux x86_64)")
    try:
        reply = browser.get("/proxies")
    finally:
        browser.close()
    assert reply.status == 403
    assert reply.body == {"error": "User agent not allowed", "status": 403}


def test_unknown_paths_and_methods_are_json_errors(api: Api) -> None:
    assert api.get("/nope").body["status"] == 404
    reply = api.request("PUT", "/proxies")
    assert reply.status == 405
    assert reply.body["status"] == 405


def test_not_found_and_conflict(api: Api, echo_server: Upstream) -> None:
    assert api.get("/proxies/missing").status == 404
    assert api.get("/proxies/missing").body["error"].startswith("proxy not found")
    assert api.delete("/proxies/missing").status == 404
    api.create_proxy("dup", echo_server.address)
    reply = api.post("/proxies", {"name": "dup", "upstream": f"127.0.0.1:{echo_server.port}"})
    assert reply.status == 409
    assert reply.body["error"].startswith("proxy already exists")
    assert api.get("/proxies/dup/toxics/none").status == 404
    assert api.delete("/proxies/dup/toxics/none").status == 404


def test_listen_address_in_use_is_500_with_toxiproxys_text(api: Api, echo_server: Upstream) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        reply = api.post(
            "/proxies",
            {
                "name": "x",
                "upstream": f"127.0.0.1:{echo_server.port}",
                "listen": f"127.0.0.1:{taken.getsockname()[1]}",
            },
        )
    finally:
        taken.close()
    assert reply.status == 500
    assert reply.body["error"].startswith("listen tcp 127.0.0.1:")
    assert reply.body["detail"].startswith("proxy 'x' cannot listen on 127.0.0.1:")
    assert api.get("/proxies").body == {}


def test_toxic_crud(api: Api, echo_server: Upstream) -> None:
    api.create_proxy("p", echo_server.address)
    created = api.add_toxic("p", "latency", attributes={"latency": 10})
    assert created == {
        "attributes": {"latency": 10, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    up = api.add_toxic("p", "bandwidth", stream="upstream", toxicity=0.5)
    assert up["name"] == "bandwidth_upstream"
    assert up["attributes"] == {"rate": 0}
    assert api.get("/proxies/p/toxics/latency_downstream").body == created
    assert [t["name"] for t in api.get("/proxies/p/toxics").body] == [
        "bandwidth_upstream",
        "latency_downstream",
    ]
    assert api.post("/proxies/p/toxics", {"type": "latency"}).status == 409
    reply = api.patch("/proxies/p/toxics/latency_downstream", {"attributes": {"jitter": 3}})
    assert reply.status == 200
    assert reply.body["attributes"] == {"latency": 10, "jitter": 3}  # merged
    reply = api.post("/proxies/p/toxics/latency_downstream", {"toxicity": 0.25})
    assert reply.body["toxicity"] == 0.25
    assert reply.body["attributes"] == {"latency": 10, "jitter": 3}
    assert api.get("/proxies/p").body["toxics"][1]["toxicity"] == 0.25
    assert api.delete("/proxies/p/toxics/latency_downstream").status == 204
    assert [t["name"] for t in api.get("/proxies/p/toxics").body] == ["bandwidth_upstream"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"type": "nope"}, "invalid toxic type"),
        ({"type": "latency", "stream": "sideways"}, "stream was invalid"),
        ({"type": "latency", "attributes": {"latency": -1}}, "attributes.latency"),
        ({"type": "latency", "attributes": {"latency": "10"}}, "attributes.latency"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, "attributes.latency"),
        ({"type": "latency", "attributes": {"latency": 10**12}}, "attributes.latency"),
        ({"type": "latency", "attributes": {"lag": 1}}, "attributes.lag: unknown attribute"),
        ({"type": "latency", "attributes": [1]}, "attributes must be an object"),
        ({"type": "latency", "toxicity": 1.5}, "toxicity"),
        ({"type": "latency", "toxicity": True}, "toxicity"),
        ({"type": "latency", "colour": "red"}, "unknown toxic field 'colour'"),
        (
            {"type": "slicer", "attributes": {"average_size": 10, "size_variation": 10}},
            "attributes.size_variation",
        ),
        ({"type": "slicer"}, "attributes.average_size"),
        ({"type": "bandwidth", "attributes": {"rate": -5}}, "attributes.rate"),
        ({"type": "latency", "skip_connections": -1}, "skip_connections"),
        ({"type": "latency", "max_connections": 0}, "max_connections"),
        ({"type": "latency", "seed": "x"}, "seed"),
    ],
)
def test_bad_toxic_bodies_are_400_naming_the_field(
    api: Api, echo_server: Upstream, body: dict[str, object], fragment: str
) -> None:
    api.create_proxy("p", echo_server.address)
    reply = api.post("/proxies/p/toxics", body)
    assert reply.status == 400, reply
    assert fragment in reply.body["error"]
    assert api.get("/proxies/p/toxics").body == []


def test_bad_toxic_update_changes_nothing(api: Api, echo_server: Upstream) -> None:
    api.create_proxy("p", echo_server.address)
    api.add_toxic("p", "latency", attributes={"latency": 10})
    reply = api.patch(
        "/proxies/p/toxics/latency_downstream", {"attributes": {"jitter": 5, "latency": -3}}
    )
    assert reply.status == 400
    assert api.get("/proxies/p/toxics/latency_downstream").body["attributes"] == {
        "latency": 10,
        "jitter": 0,
    }


def test_populate_adds_keeps_and_replaces(api: Api, echo_server: Upstream) -> None:
    up = f"127.0.0.1:{echo_server.port}"
    first = api.create_proxy("keep", echo_server.address)
    api.add_toxic("keep", "latency")
    reply = api.post(
        "/populate",
        [
            {"name": "keep", "listen": first["listen"], "upstream": up},
            {"name": "new", "listen": "127.0.0.1:0", "upstream": up, "enabled": False},
        ],
    )
    assert reply.status == 201
    proxies = {p["name"]: p for p in reply.body["proxies"]}
    assert proxies["keep"]["toxics"][0]["name"] == "latency_downstream"  # kept as it was
    assert proxies["new"]["enabled"] is False
    reply = api.post("/populate", [{"name": "keep", "listen": "127.0.0.1:0", "upstream": up}])
    assert reply.body["proxies"][0]["toxics"] == []  # a changed proxy is replaced
    reply = api.post("/populate", [{"name": "z", "upstream": up}, {"listen": "x"}])
    assert reply.status == 400
    assert "name at proxy 2" in reply.body["error"]
    assert "z" not in api.get("/proxies").body  # validated before anything is created


def test_reset_enables_proxies_and_removes_toxics(api: Api, echo_server: Upstream) -> None:
    proxy = api.create_proxy("p", echo_server.address)
    api.add_toxic("p", "timeout")
    assert api.post("/proxies/p", {"enabled": False}).body["enabled"] is False
    assert api.post("/reset").status == 204
    after = api.get("/proxies/p").body
    assert after["enabled"] is True
    assert after["toxics"] == []
    assert after["listen"] == proxy["listen"]
    assert round_trip(listen_address(after)) == b"ping"


def test_bad_requests_leak_no_sockets(server: EmbeddedServer, echo_server: Upstream) -> None:
    api = Api(server.url)
    api.create_proxy("p", echo_server.address)
    before = len(open_fds())
    for _ in range(30):
        api.request("POST", "/proxies", raw=b"{")
        api.post("/proxies/p/toxics", {"type": "latency", "attributes": {"x": 1}})
        api.post("/proxies", {"name": "q", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:1"})
    assert api.get("/proxies/p").status == 200
    api.close()
    assert len(open_fds()) <= before
