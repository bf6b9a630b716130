"""Issue 14.5: when descriptors run short, the API keeps answering and a proxied
connection that cannot be served is refused at once and logged, never left hanging.

The server runs in a child process whose descriptor limit is lowered to a few
hundred; the clients (in this process) open connections through a proxy until the
proxy refuses them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.hardening.rawhttp import exchange, request

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 256
CLIENTS = LIMIT  # more than the child's descriptors can serve (two per connection)
SERVER = f"""
import resource, sys, threading
from chaosnet.proxy.embedded import EmbeddedServer
from tests.proxy.support import upstream, echo

resource.setrlimit(resource.RLIMIT_NOFILE, ({LIMIT}, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
with upstream(echo) as peer, EmbeddedServer() as server:
    print(server.port, peer.port, flush=True)
    sys.stdin.read()
"""


def test_out_of_descriptors_is_refused_and_logged_while_the_api_answers() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    clients: list[socket.socket] = []
    try:
        assert child.stdout is not None
        api_port, echo_port = map(int, child.stdout.readline().split())
        api = ("127.0.0.1", api_port)
        body = json.dumps({"name": "p", "upstream": f"127.0.0.1:{echo_port}"}).encode()
        created = exchange(api, request("POST", "/proxies", body=body))
        assert created is not None
        assert created.status == 201, created
        proxy = ("127.0.0.1", int(created.json()["listen"].rsplit(":", 1)[1]))
        refused = 0
        for _ in range(CLIENTS):
            try:  # a refusal may reach the client during connect() already
                sock = socket.create_connection(proxy, timeout=2)
                clients.append(sock)
                sock.sendall(b"ping")
                answered = sock.recv(4) == b"ping"
            except ConnectionResetError:
                answered = False
            refused += not answered
        assert refused > 0, "the child never ran short: raise CLIENTS"
        start = time.monotonic()
        version = exchange(
            api, b"GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        assert version is not None
        assert version.status == 200
        assert time.monotonic() - start < 1.0  # not asyncio's 1 s accept back-off
        log = exchange(
            api,
            b"GET /proxies/p/connections HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        assert log is not None
        records = log.json()["connections"]
        short = [r for r in records if "out of file descriptors" in r.get("error", "")]
        assert len(short) == refused, records[-1]
        assert all(r["close_kind"] == "rst" for r in short)
    finally:
        for sock in clients:
            sock.close()
        child.communicate("", timeout=30)
