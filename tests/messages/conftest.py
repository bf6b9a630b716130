"""Real servers for the message tests: Debian's redis-server and Python's http.server.

redis-server cannot bind port 0 and report it: ``{port}`` in its argv makes
``server_process`` choose the port, check that this redis is the one listening
there, and start it again on another port if another process took it first.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from chaosnet.servers.factories import ServerFactory
from chaosnet.servers.process import ServerProcess
from chaosnet.servers.readiness import LogLine


@pytest.fixture
def redis_server(server_process: ServerFactory) -> ServerProcess:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (.ci/run installs Debian's redis-server)")
    argv = [binary, "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return server_process(argv, name="redis", ready=LogLine(r"Ready to accept connections"))


@pytest.fixture
def stdlib_http_server(server_process: ServerFactory, tmp_path: Path) -> ServerProcess:
    """Python's own ``http.server`` (HTTP/1.0, one request per connection) on port 0."""
    (tmp_path / "index.html").write_text("stdlib ok")
    argv = [
        sys.executable,
        "-u",
        "-m",
        "http.server",
        "0",
        "--bind",
        "127.0.0.1",
        "--directory",
        str(tmp_path),
    ]
    return server_process(argv, name="http.server", ready=LogLine(r"port (?P<port>\d+)"))
