"""Toxiproxy clients of other languages, unmodified, make every call they have against
``chaosnet serve`` and the real Toxiproxy; the two transcripts must be the same.

Clients: Toxiproxy's Go client (v2.12.0, the module of the server; its own
``api_test.go`` also drives it, in ``test_toxiproxy_suite.py``),
toxiproxy-node-client 4.1.0 (npm) and toxiproxy-java 2.1.7 (Maven Central);
``toxiproxy-cli`` is driven by ``test_cli.py``.
"""

from __future__ import annotations

import pytest

from chaosnet.backends.toxiproxy import ToxiproxyBackend
from tests import toolchain
from tests.conformance import clients
from tests.conformance.conftest import ChaosnetServe, delete_all_proxies
from tests.proxy.support import Upstream

pytestmark = pytest.mark.timeout(clients.INSTALL_TIMEOUT_S + 2 * clients.RUN_TIMEOUT_S)


def _both(chaosnet_serve: ChaosnetServe, real_toxiproxy: ToxiproxyBackend) -> dict[str, str]:
    return {"chaosnet": chaosnet_serve.url, "toxiproxy": real_toxiproxy.url}


CLIENTS = {
    "go": (clients.go_client, clients.go_transcript, 30),
    "node": (clients.node_client, clients.node_transcript, 19),
    "java": (clients.java_client, clients.java_transcript, 29),
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client_makes_every_call_as_on_toxiproxy(
    client: str,
    chaosnet_serve: ChaosnetServe,
    real_toxiproxy: ToxiproxyBackend,
    echo_server: Upstream,
) -> None:
    install, transcript, calls = CLIENTS[client]
    installed = install()
    if isinstance(installed, str):
        toolchain.missing(installed)
        raise AssertionError("unreachable")
    upstream = f"127.0.0.1:{echo_server.port}"
    transcripts = {}
    for name, url in _both(chaosnet_serve, real_toxiproxy).items():
        delete_all_proxies(url)
        transcripts[name] = transcript(installed, url, upstream)
    chaosnet, toxiproxy = transcripts["chaosnet"], transcripts["toxiproxy"]
    assert [line["call"] for line in chaosnet] == [line["call"] for line in toxiproxy]
    for ours, theirs in zip(chaosnet, toxiproxy, strict=True):
        assert ours == theirs, ours["call"]
    assert len(chaosnet) == calls
    round_trips = [line for line in chaosnet if line["call"].startswith("roundTrip")]
    assert [line["result"] for line in round_trips] == ["ping", "ping"]
    assert sum("error" in line for line in chaosnet) >= 2  # the 404 and 409 calls, as expected


def test_a_transcript_with_a_fatal_line_is_an_error() -> None:
    with pytest.raises(clients.ClientError, match="the client program stopped: boom"):
        clients.parse('{"call":"getVersion","result":"x"}\n{"call":"fatal","error":"boom"}\n')


def test_the_server_url_is_normalised() -> None:
    line = '{"call":"delete","error":"FileNotFoundException: http://127.0.0.1:4/proxies/x"}'
    parsed = clients.parse(line, "http://127.0.0.1:4")[0]
    assert parsed["error"] == "FileNotFoundException: <server>/proxies/x"


def test_listen_ports_are_normalised() -> None:
    line = '{"call":"get","result":{"listen":"127.0.0.1:41234","upstream":"127.0.0.1:9"}}'
    assert clients.parse(line)[0]["result"] == {
        "listen": "127.0.0.1:<port>",
        "upstream": "127.0.0.1:9",
    }
