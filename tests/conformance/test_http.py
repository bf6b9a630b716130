"""Every endpoint of the Toxiproxy v2 API, spoken as raw HTTP to both servers."""

from __future__ import annotations

import http.client
import socket
from typing import Any

import pytest

from tests.conformance.conftest import Backend
from tests.proxy.support import Api, Upstream, listen_address, round_trip

PROXY_KEYS = {"name", "listen", "upstream", "enabled", "toxics"}
TOXIC_KEYS = {"attributes", "name", "type", "stream", "toxicity"}


def upstream_of(server: Upstream) -> str:
    return f"127.0.0.1:{server.port}"


def core(proxy: dict[str, Any]) -> dict[str, Any]:
    """The documented fields (Toxiproxy 2.12 also leaks an empty ``"Logger": {}``)."""
    assert set(proxy) >= PROXY_KEYS
    return {key: proxy[key] for key in PROXY_KEYS}


def test_version_body_byte_for_byte(backend: Backend) -> None:
    """Toxiproxy's own suite compares the body exactly, newline included."""
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5)
    try:
        conn.request("GET", "/version", headers={"User-Agent": "chaosnet-tests"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert body == b'{"version": "2.12.0"}\n'
    assert response.getheader("Content-Type") == "application/json;charset=utf-8"


def test_every_response_has_a_request_id(api: Api) -> None:
    ids = {api.get(path).headers["x-toxiproxy-request-id"] for path in ("/version", "/proxies")}
    ids.add(api.get("/proxies/nope").headers["x-toxiproxy-request-id"])
    assert len(ids) == 3  # one per request
    assert all(ids)


def test_create_show_list(api: Api, echo_server: Upstream) -> None:
    reply = api.post(
        "/proxies", {"name": "c1", "listen": "127.0.0.1:0", "upstream": upstream_of(echo_server)}
    )
    assert reply.status == 201
    proxy = core(reply.body)
    assert proxy["name"] == "c1"
    assert proxy["enabled"] is True
    assert proxy["toxics"] == []
    assert proxy["upstream"] == upstream_of(echo_server)
    host, port = listen_address(proxy)
    assert host == "127.0.0.1"
    assert port != 0
    assert core(api.get("/proxies/c1").body) == proxy
    assert core(api.get("/proxies").body["c1"]) == proxy
    assert round_trip((host, port), b"conformance") == b"conformance"


def test_create_disabled(api: Api, echo_server: Upstream) -> None:
    reply = api.post(
        "/proxies",
        {
            "name": "c2",
            "listen": "127.0.0.1:0",
            "upstream": upstream_of(echo_server),
            "enabled": False,
        },
    )
    assert reply.status == 201
    assert reply.body["enabled"] is False
    assert reply.body["listen"] == "127.0.0.1:0"  # not resolved until it listens


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_update_enabled_and_upstream(api: Api, echo_server: Upstream, method: str) -> None:
    proxy = api.create_proxy("c3", echo_server.address)
    reply = api.request(method, "/proxies/c3", {"enabled": False})
    assert reply.status == 200
    assert reply.body["enabled"] is False
    assert reply.body["listen"] == proxy["listen"]
    reply = api.request(method, "/proxies/c3", {"enabled": True})
    assert reply.body["enabled"] is True
    assert reply.body["listen"] == proxy["listen"]
    reply = api.request(method, "/proxies/c3", {"upstream": "127.0.0.1:9"})
    assert reply.body["upstream"] == "127.0.0.1:9"
    assert reply.body["enabled"] is True


def test_delete(api: Api, echo_server: Upstream) -> None:
    api.create_proxy("c4", echo_server.address)
    reply = api.delete("/proxies/c4")
    assert reply.status == 204
    assert api.get("/proxies/c4").status == 404


def test_not_found_and_conflict_errors(api: Api, echo_server: Upstream) -> None:
    for reply in (
        api.get("/proxies/nope"),
        api.delete("/proxies/nope"),
        api.post("/proxies/nope", {"enabled": False}),
        api.get("/proxies/nope/toxics"),
        api.post("/proxies/nope/toxics", {}),
    ):
        assert reply.status == 404
        assert reply.body["status"] == 404
        assert reply.body["error"] == "proxy not found"  # exactly: clients compare it
    api.create_proxy("c5", echo_server.address)
    reply = api.post(
        "/proxies", {"name": "c5", "listen": "127.0.0.1:0", "upstream": upstream_of(echo_server)}
    )
    assert reply.status == 409
    assert reply.body["error"] == "proxy already exists"
    for reply in (
        api.get("/proxies/c5/toxics/nope"),
        api.delete("/proxies/c5/toxics/nope"),
        api.patch("/proxies/c5/toxics/nope", {"attributes": {}}),
    ):
        assert reply.status == 404
        assert reply.body["error"] == "toxic not found"
    api.add_toxic("c5", "latency")
    reply = api.post("/proxies/c5/toxics", {"type": "latency"})
    assert reply.status == 409
    assert reply.body["error"] == "toxic already exists"


def test_error_detail_names_the_object_on_chaosnet(
    backend: Backend, api: Api, echo_server: Upstream
) -> None:
    """chaosnet's extra knowledge is in ``detail``; Toxiproxy's body has no such field."""
    details = [api.get("/proxies/nope").body.get("detail")]
    api.create_proxy("c5d", echo_server.address)
    details.append(
        api.post("/proxies", {"name": "c5d", "upstream": "127.0.0.1:9"}).body.get("detail")
    )
    details.append(api.get("/proxies/c5d/toxics/gone").body.get("detail"))
    api.add_toxic("c5d", "latency", name="lat")
    details.append(
        api.post("/proxies/c5d/toxics", {"type": "latency", "name": "lat"}).body.get("detail")
    )
    if backend.is_chaosnet:
        assert details == [
            "no proxy named 'nope'",
            "a proxy named 'c5d' exists",
            "no toxic named 'gone'",
            "a toxic named 'lat' exists",
        ]
    else:
        assert details == [None] * 4


def test_taken_listen_address_is_toxiproxys_500(api: Api, echo_server: Upstream) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        reply = api.post(
            "/proxies",
            {"name": "c5t", "upstream": upstream_of(echo_server), "listen": f"localhost:{port}"},
        )
    finally:
        taken.close()
    assert reply.status == 500
    assert reply.body["error"] == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    assert api.get("/proxies").body == {}  # nothing half-created


def test_disabled_proxy_shows_listen_as_given(api: Api, echo_server: Upstream) -> None:
    reply = api.post(
        "/proxies",
        {
            "name": "c5l",
            "listen": "localhost:0",
            "upstream": upstream_of(echo_server),
            "enabled": False,
        },
    )
    assert reply.status == 201
    assert api.get("/proxies/c5l").body["listen"] == "localhost:0"
    enabled = api.post("/proxies/c5l", {"enabled": True}).body
    host, port = listen_address(enabled)
    assert (host, port > 0) == ("127.0.0.1", True)  # resolved and bound once it listens


def test_populate_keeps_the_entries_before_a_bad_one(api: Api, echo_server: Upstream) -> None:
    """The entries before a failing one are created and returned with the error."""
    up = upstream_of(echo_server)
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        reply = api.post(
            "/populate",
            [
                {"name": "c5p1", "listen": "127.0.0.1:0", "upstream": up},
                {"name": "c5p2", "listen": f"127.0.0.1:{taken.getsockname()[1]}", "upstream": up},
                {"name": "c5p3", "listen": "127.0.0.1:0", "upstream": up},
            ],
        )
    finally:
        taken.close()
    assert reply.status == 500
    assert reply.body["error"].endswith("bind: address already in use")
    assert [p["name"] for p in reply.body["proxies"]] == ["c5p1"]
    assert sorted(api.get("/proxies").body) == ["c5p1"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}, "missing required field: name"),
        ({"name": "x", "listen": "127.0.0.1:0"}, "missing required field: upstream"),
        ({"name": 1, "upstream": "127.0.0.1:9"}, "bad request body"),
    ],
)
def test_bad_proxy_bodies(api: Api, body: dict[str, Any], fragment: str) -> None:
    reply = api.post("/proxies", body)
    assert reply.status == 400
    assert reply.body["status"] == 400
    assert reply.body["error"].startswith(fragment)


def test_malformed_json(api: Api, echo_server: Upstream) -> None:
    reply = api.request("POST", "/proxies", raw=b"{nope")
    assert reply.status == 400
    assert reply.body["error"].startswith("bad request body")
    api.create_proxy("c6", echo_server.address)
    reply = api.request("POST", "/proxies/c6/toxics", raw=b"[")
    assert reply.status == 400
    assert reply.body["error"].startswith("bad request body")


def test_bad_toxic_bodies(api: Api, echo_server: Upstream) -> None:
    api.create_proxy("c7", echo_server.address)
    reply = api.post("/proxies/c7/toxics", {"type": "latency", "stream": "sideways"})
    assert reply.status == 400
    assert reply.body["error"] == "stream was invalid, can be either upstream or downstream"
    reply = api.post("/proxies/c7/toxics", {"type": "no_such_toxic"})
    assert reply.status == 400
    assert reply.body["error"].startswith("invalid toxic type")
    reply = api.post("/proxies/c7/toxics", {"type": "latency", "attributes": {"latency": "x"}})
    assert reply.status == 400
    assert api.get("/proxies/c7/toxics").body == []


def test_browser_user_agent_is_forbidden(backend: Backend) -> None:
    browser = Api(backend.url, user_agent="Mozilla/5.0 (compatible)")
    try:
        assert browser.get("/proxies").status == 403
        assert browser.get("/version").status == 403
    finally:
        browser.close()


TOXIC_DEFAULTS = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


@pytest.mark.parametrize("type_name", sorted(TOXIC_DEFAULTS))
def test_toxic_defaults(api: Api, echo_server: Upstream, type_name: str) -> None:
    api.create_proxy("c8", echo_server.address)
    reply = api.post("/proxies/c8/toxics", {"type": type_name})
    assert reply.status == 200
    toxic = reply.body
    assert set(toxic) == TOXIC_KEYS
    assert toxic == {
        "attributes": TOXIC_DEFAULTS[type_name],
        "name": f"{type_name}_downstream",
        "type": type_name,
        "stream": "downstream",
        "toxicity": 1,
    }


def test_toxic_lifecycle(api: Api, echo_server: Upstream) -> None:
    api.create_proxy("c9", echo_server.address)
    reply = api.post(
        "/proxies/c9/toxics",
        {
            "name": "slow",
            "type": "slicer",
            "stream": "upstream",
            "toxicity": 0.5,
            "attributes": {"average_size": 64, "size_variation": 32, "delay": 10},
        },
    )
    assert reply.status == 200
    assert reply.body == {
        "attributes": {"average_size": 64, "size_variation": 32, "delay": 10},
        "name": "slow",
        "type": "slicer",
        "stream": "upstream",
        "toxicity": 0.5,
    }
    api.add_toxic("c9", "latency", attributes={"latency": 5})
    toxics = api.get("/proxies/c9/toxics").body
    assert [t["name"] for t in toxics] == ["slow", "latency_downstream"]  # upstream first
    assert api.get("/proxies/c9").body["toxics"] == toxics
    assert api.get("/proxies/c9/toxics/slow").body == toxics[0]
    reply = api.patch("/proxies/c9/toxics/slow", {"attributes": {"delay": 20}})
    assert reply.status == 200
    assert reply.body["attributes"] == {"average_size": 64, "size_variation": 32, "delay": 20}
    assert reply.body["toxicity"] == 0.5
    reply = api.post("/proxies/c9/toxics/slow", {"toxicity": 1.0})
    assert reply.status == 200
    assert reply.body["toxicity"] == 1
    assert reply.body["attributes"]["delay"] == 20
    assert api.delete("/proxies/c9/toxics/slow").status == 204
    assert [t["name"] for t in api.get("/proxies/c9/toxics").body] == ["latency_downstream"]


def test_reset(api: Api, echo_server: Upstream) -> None:
    proxy = api.create_proxy("c10", echo_server.address)
    api.add_toxic("c10", "timeout", attributes={"timeout": 0})
    api.post("/proxies/c10", {"enabled": False})
    reply = api.post("/reset")
    assert reply.status == 204
    after = api.get("/proxies/c10").body
    assert after["enabled"] is True
    assert after["toxics"] == []
    assert after["listen"] == proxy["listen"]
    assert round_trip(listen_address(after)) == b"ping"


def test_populate(api: Api, echo_server: Upstream) -> None:
    up = upstream_of(echo_server)
    kept = api.create_proxy("c11", echo_server.address)
    api.add_toxic("c11", "latency")
    reply = api.post(
        "/populate",
        [
            {"name": "c11", "listen": kept["listen"], "upstream": up},
            {"name": "c12", "listen": "127.0.0.1:0", "upstream": up},
        ],
    )
    assert reply.status == 201
    assert set(reply.body) == {"proxies"}
    proxies = {p["name"]: p for p in reply.body["proxies"]}
    assert set(proxies) == {"c11", "c12"}
    assert [t["name"] for t in proxies["c11"]["toxics"]] == ["latency_downstream"]
    assert proxies["c12"]["enabled"] is True
    assert round_trip(listen_address(proxies["c12"])) == b"ping"
    reply = api.post("/populate", [{"name": "c11", "listen": "127.0.0.1:0", "upstream": up}])
    assert reply.status == 201
    assert reply.body["proxies"][0]["toxics"] == []  # changed listen: replaced
    reply = api.post("/populate", [{"listen": "127.0.0.1:0", "upstream": up}])
    assert reply.status == 400
    assert reply.body["error"].startswith("missing required field: name")


def test_changing_listen_moves_the_proxy(api: Api, echo_server: Upstream) -> None:
    old = api.create_proxy("c13", echo_server.address)
    reply = api.patch("/proxies/c13", {"listen": "127.0.0.1:0"})
    assert reply.status == 200
    assert reply.body["listen"] != old["listen"]
    assert reply.body["enabled"] is True
    assert round_trip(listen_address(reply.body)) == b"ping"


def test_changing_a_disabled_proxy_keeps_it_disabled(api: Api, echo_server: Upstream) -> None:
    api.create_proxy("c14", echo_server.address, enabled=False)
    reply = api.patch("/proxies/c14", {"upstream": "127.0.0.1:9"})
    assert reply.status == 200
    assert reply.body["enabled"] is False
    assert reply.body["upstream"] == "127.0.0.1:9"
