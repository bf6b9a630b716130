"""The conformance suite: the same tests against ``chaosnet serve`` and the real Toxiproxy.

``backend`` is parametrised over both servers (one process each per session). Each
test gets clean servers: every proxy it created is deleted afterwards. The real
Toxiproxy comes from ``tests/conftest.py``'s ``toxiproxy_bins`` (skipped locally
when it cannot be installed, a failure in CI).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaosnet.backends.toxiproxy import ToxiproxyBackend
from tests.proxy.support import (
    Api,
    echo_server,  # noqa: F401  (the one definition, shared)
)

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
BACKENDS = ("chaosnet", "toxiproxy")


@dataclass(frozen=True)
class Backend:
    name: str
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rpartition(":")[2])

    @property
    def is_chaosnet(self) -> bool:
        return self.name == "chaosnet"


class ChaosnetServe:
    """``chaosnet serve --port 0`` as a child process; ready once it prints its URL."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by stop(); never blocks
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chaosnet.cli", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # bounded: the process prints or exits
        if not line.startswith("chaosnet serve: listening on "):
            self.stop()
            raise AssertionError(f"chaosnet serve did not start: {line!r} {self.errors()}")
        self.url = line.rsplit(" ", 1)[1].strip()

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(STOP_TIMEOUT_S)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()
        return code


@pytest.fixture(scope="session")
def chaosnet_serve() -> Iterator[ChaosnetServe]:
    served = ChaosnetServe()
    yield served
    errors = served.errors()
    assert served.stop() == 0
    assert "internal error" not in errors, errors


@pytest.fixture(scope="session")
def real_toxiproxy(toxiproxy_bins: tuple[Path, Path]) -> Iterator[ToxiproxyBackend]:
    server = ToxiproxyBackend(toxiproxy_bins[0])
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "chaosnet":
        url = request.getfixturevalue("chaosnet_serve").url
    else:
        url = request.getfixturevalue("real_toxiproxy").url
    chosen = Backend(request.param, url)
    yield chosen
    delete_all_proxies(url)


def delete_all_proxies(url: str) -> None:
    """Leave the server at ``url`` as a fresh one: no proxy."""
    cleaner = Api(url)
    try:
        for name in cleaner.get("/proxies").body:
            cleaner.delete(f"/proxies/{name}")
    finally:
        cleaner.close()


@pytest.fixture
def api(backend: Backend) -> Iterator[Api]:
    client = Api(backend.url)
    yield client
    client.close()
