"""Tiny real servers for ServerProcess tests, run as ``python -c SCRIPT``."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from tests.support import gone

# Binds port 0, announces it, accepts and closes connections until killed.
PORT_REPORTER = """
import os, signal, socket, sys
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
server.listen()
print("token", os.environ.get("TOKEN", "-"), "cwd", os.getcwd())
print("serving on port", server.getsockname()[1])
while True:
    server.accept()[0].close()
"""

# Starts a grandchild that ignores SIGTERM, reports its pid, then serves like PORT_REPORTER.
GRANDPARENT = """
import socket, subprocess, sys
stubborn = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('armed', flush=True); time.sleep(60)"
)
child = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print("grandchild", child.pid)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
print("serving on port", server.getsockname()[1])
while True:
    server.accept()[0].close()
"""

# An HTTP server that answers 503 twice, then 200.
FLAKY_HTTP = """
import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    calls = 0
    def do_GET(self):
        Handler.calls += 1
        self.send_response(200 if Handler.calls > 2 else 503)
        self.end_headers()
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print("http on port", server.server_address[1])
server.serve_forever()
"""

PORT_LINE = r"serving on port (?P<port>\d+)"


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def elapsed_since(start: float) -> float:
    return time.monotonic() - start


def all_gone(pids: Sequence[int]) -> bool:
    return all(gone(pid) for pid in pids)
