"""Issue 14 fuzzer: the control API under hypothesis-generated requests.

Bodies (from a grammar of proxy and toxic bodies whose values are mutated: Unicode
digits, huge and tiny numbers, wrong types, IDNA-breaking hosts), paths, methods,
headers and encodings, sent raw over a socket in batches. After every request:
no 5xx, and every error is a JSON ``{"error", "status"}`` body. After every batch:
``/version`` answers within 100 ms, connections through the proxies open and close,
and the engine reported no internal error. ~20 s in CI; see ``budget.py``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.proxy.toxics import REGISTRY
from tests.hardening import budget
from tests.hardening.rawhttp import RawReply, exchange
from tests.proxy.support import Api, Upstream, echo, upstream

VERSION_BUDGET_S = 0.1
NAMES = ("p0", "p1", "p2")
EXAMPLES_PER_ROUND = 10  # the budget is checked between rounds (a round shrinks whole)

pytestmark = pytest.mark.timeout(budget.timeout())

# -- values --------------------------------------------------------------------------------

# Unicode digits str.isdigit() accepts: superscript 2, Arabic-Indic 3, full-width 9.
digits = st.sampled_from(
    ["0", "1", "8474", "65535", "65536", "70000", "-1", "\u00b2", "\u0663", "\uff19"]
)
ports = st.one_of(
    digits,
    st.text("0123456789", min_size=1, max_size=8),
    st.just("9" * 5000),
    st.text(max_size=6),
)
hosts = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1",
            "localhost",
            "[::1]",
            "::1",
            "",
            "a..b",
            "x" * 64,
            "0.0.0.0",
            "10.255.255.1",
            "ünïcode",
            "[abc]",
            "1.2.3.4.5",
            " ",
            "example.com",
        ]
    ),
    st.text(max_size=20),
)
addresses = st.one_of(
    st.builds(lambda h, p: f"{h}:{p}", hosts, ports),
    st.text(max_size=30),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, -1, 1e-320, 5e-324, 1e308, 2**62, 2**63, 0.5, 1.0]),
)
scalars = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=10), addresses)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def attributes(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    cls = REGISTRY.get(kind)
    names = [attr.name for attr in cls.attributes] if cls else []
    keys = draw(st.lists(st.sampled_from(names) if names else st.text(max_size=8), max_size=4))
    chosen: dict[str, Any] = {}
    for key in keys:
        attr = next((a for a in cls.attributes if a.name == key), None) if cls else None
        good = st.nothing()
        if attr is not None and attr.kind in ("int", "float", "int_or_choice"):
            good = st.one_of(
                st.integers(int(attr.minimum), int(min(attr.maximum, 2**62))),
                st.floats(attr.minimum, min(attr.maximum, 1e18)),
            )
        if attr is not None and attr.choices:
            good = st.one_of(good, st.sampled_from(attr.choices))
        chosen[key] = draw(st.one_of(good, values))
    return chosen


toxic_types = st.one_of(st.sampled_from(sorted(REGISTRY)), st.text(max_size=8))


@st.composite
def toxic_bodies(draw: st.DrawFn) -> Any:
    kind = draw(toxic_types)
    body: dict[str, Any] = {"type": kind, "attributes": draw(attributes(kind))}
    optional = {
        "name": st.one_of(st.text(max_size=12), st.sampled_from(["t", "t2"])),
        "stream": st.sampled_from(["upstream", "downstream", "UPSTREAM", "sideways", ""]),
        "toxicity": numbers,
        "skip_connections": numbers,
        "max_connections": numbers,
        "seed": numbers,
        draw(st.text(max_size=6)): values,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            body[key] = draw(strategy)
    return body


@st.composite
def proxy_bodies(draw: st.DrawFn, upstream_address: str) -> Any:
    body: dict[str, Any] = {}
    body["name"] = draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=10), values))
    body["upstream"] = draw(st.one_of(st.just(upstream_address), addresses, values))
    if draw(st.booleans()):
        body["listen"] = draw(st.one_of(st.just("127.0.0.1:0"), addresses, values))
    if draw(st.booleans()):
        body["enabled"] = draw(st.one_of(st.booleans(), values))
    return body


def bodies(upstream_address: str) -> st.SearchStrategy[bytes]:
    json_bodies = st.one_of(
        proxy_bodies(upstream_address),
        st.lists(proxy_bodies(upstream_address), max_size=3),
        toxic_bodies(),
        values,
    ).map(lambda body: json.dumps(body).encode())
    return st.one_of(
        json_bodies,
        json_bodies.map(lambda raw: raw[: len(raw) // 2]),
        st.binary(max_size=64),
        st.just(b"[" * 100_000),
        st.just(b""),
    )


name_parts = st.one_of(st.sampled_from([*NAMES, "t", "latency_downstream"]), st.text(max_size=12))
paths = st.one_of(
    st.sampled_from(["/version", "/chaosnet", "/proxies", "/populate", "/reset", "/metrics", "*"]),
    st.builds(lambda n: f"/proxies/{n}", name_parts),
    st.builds(lambda n: f"/proxies/{n}/toxics", name_parts),
    st.builds(lambda n, t: f"/proxies/{n}/toxics/{t}", name_parts, name_parts),
    st.builds(
        lambda n, w, t: f"/proxies/{n}/connections?wait_open={w}&timeout_ms={t}",
        name_parts,
        ports,
        st.sampled_from(["0", "10", "60001", "1.5", "²", "9" * 40]),
    ),
    st.text(max_size=20).map(lambda text: "/" + text),
)
methods = st.one_of(
    st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"]),
    st.sampled_from(["get", "FOO", "GE T", "CONNECT", "TRACE", ""]),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8),
)
header_values = st.one_of(
    st.sampled_from(
        [
            "gzip",
            "deflate",
            "br",
            "zstd",
            "identity",
            "GZIP",
            "evil.com",
            "localhost",
            "127.0.0.1:8474",
            "Mozilla/5.0",
            "mozilla/5.0",
            "cross-site",
            "same-origin",
            "http://evil.com",
            "http://localhost",
            "null",
            "chunked",
            "application/json",
        ]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)
header_names = st.sampled_from(
    [
        "Content-Encoding",
        "Host",
        "Origin",
        "User-Agent",
        "Sec-Fetch-Site",
        "Content-Type",
        "Transfer-Encoding",
        "Accept-Encoding",
        "Expect",
        "X-Anything",
    ]
)


@st.composite
def requests(draw: st.DrawFn, upstream_address: str) -> bytes:
    method, path = draw(methods), draw(paths)
    headers = draw(st.dictionaries(header_names, header_values, max_size=4))
    headers.setdefault("Host", "localhost")
    headers["Connection"] = "close"
    body = draw(bodies(upstream_address)) if draw(st.booleans()) else b""
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
    else:
        headers.pop("Transfer-Encoding", None)
        headers["Content-Length"] = str(len(body))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    try:
        start = f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode()
    except UnicodeEncodeError:
        start = f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode()
    return start + body


# -- the test ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(seed=1414) as running:
        yield running
        errors = running.take_errors()
    assert not errors, f"engine errors: {errors!r}"


@pytest.fixture(scope="module")
def peer() -> Iterator[Upstream]:
    with upstream(echo) as running:
        yield running


def check_reply(raw: bytes, reply: RawReply | None) -> None:
    assert reply is not None, f"closed without an answer: {raw[:300]!r}"
    assert reply.status < 500, (raw[:300], reply)
    if reply.status >= 400 and raw.split(b" ", 1)[0] != b"HEAD":
        assert reply.headers.get("content-type", "").startswith("application/json"), (
            raw[:300],
            reply,
        )
        body = reply.json()
        assert body["status"] == reply.status, body
        assert isinstance(body["error"], str), body


def version_latency(server: EmbeddedServer) -> float:
    """The best of three ``GET /version`` round trips (a blocked loop fails all three)."""
    best = float("inf")
    for _ in range(3):
        start = time.monotonic()
        reply = exchange(
            (server.host, server.port),
            b"GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        assert reply is not None
        assert reply.status == 200
        best = min(best, time.monotonic() - start)
    return best


def traffic(server: EmbeddedServer) -> None:
    """One connection through every enabled proxy: it must open and close, not crash."""
    api = Api(server.url)
    try:
        for proxy in api.get("/proxies").body.values():
            if not proxy["enabled"]:
                continue
            host, _, port = proxy["listen"].rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=0.2) as sock:
                    sock.sendall(b"\0\0\0\4ping")
                    sock.settimeout(0.05)
                    sock.recv(64)
            except OSError:
                pass  # refused, reset, stalled, delayed: all faults a toxic may inject
    finally:
        api.close()


def reset_state(server: EmbeddedServer, upstream_address: str) -> None:
    api = Api(server.url)
    try:
        for name in api.get("/proxies").body:
            api.delete(f"/proxies/{name}")
        api.create_proxy("p0", tuple(upstream_address.rsplit(":", 1)))  # type: ignore[arg-type]
    finally:
        api.close()


def test_fuzz_control_api(fuzz_server: EmbeddedServer, peer: Upstream) -> None:
    limit = budget.Budget("api")
    upstream_address = f"127.0.0.1:{peer.port}"
    address = (fuzz_server.host, fuzz_server.port)

    @settings(
        max_examples=EXAMPLES_PER_ROUND,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=st.lists(requests(upstream_address), min_size=1, max_size=12))
    def batch_of_requests(batch: list[bytes]) -> None:
        reset_state(fuzz_server, upstream_address)
        for raw in batch:
            check_reply(raw, exchange(address, raw))
            limit.count()
        traffic(fuzz_server)
        assert version_latency(fuzz_server) < VERSION_BUDGET_S
        errors = fuzz_server.take_errors()
        assert not errors, (batch, errors)

    while not limit.spent:
        batch_of_requests()
    limit.report()
    assert limit.inputs > 0
