"""The repository's chaosnet image: the ``docker`` backend runs it, and docker-compose with
``docker-compose.chaosnet.yml`` runs every bundled scenario on it, extensions included."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosnet.backends.docker import DockerBackend
from chaosnet.control import ControlClient
from chaosnet.scenario.check import battery_files
from tests import toolchain
from tests.docker.images import DOCKER_SITE
from tests.proxy.support import Api

COMPOSE_FILES = (
    toolchain.ROOT / "docker-compose.yml",
    toolchain.ROOT / "docker-compose.chaosnet.yml",
)
COMPOSE_TIMEOUT_S = 120
READY_DEADLINE_S = 30.0
SCENARIOS_TIMEOUT_S = 240
LISTENING = re.compile(r"chaosnet serve: listening on (http://127\.0\.0\.1:\d+)")


def test_docker_backend_runs_the_chaosnet_image_and_detects_its_extensions(
    chaosnet_image: str,
) -> None:
    backend = DockerBackend(chaosnet_image)
    backend.start()
    try:
        client = ControlClient(backend.url, backend="docker")
        try:
            assert client.version() == {"version": "2.12.0"}
            assert {"truncate_frame", "refuse_new", "connections"} <= client.extensions
            proxy = client.create_proxy("img", "127.0.0.1:9", listen="127.0.0.1:0")
            client.add_toxic("img", "refuse_new")
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(proxy.address, timeout=5).close()
        finally:
            client.close()
    finally:
        backend.stop()


def test_the_image_carries_the_battery_as_files(chaosnet_image: str) -> None:
    # chaosnet/battery is a link to scenarios/ in the repository; the install copies the files.
    battery = DOCKER_SITE / "chaosnet" / "battery"
    assert not battery.is_symlink()
    names = sorted(p.name for p in battery.glob("*.yaml"))
    assert names == [p.name for p in battery_files()]
    assert all(not (battery / name).is_symlink() for name in names)


@pytest.fixture
def compose(tmp_path: Path, chaosnet_image: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    """``docker-compose`` with both files, a project of its own, the API and proxies on port 0."""
    binary = shutil.which("docker-compose")
    if binary is None:
        toolchain.missing("docker-compose (Compose v1) is not installed")
        raise AssertionError("unreachable")
    populate = json.loads((toolchain.ROOT / "toxiproxy.json").read_text())
    config = tmp_path / "toxiproxy.json"
    config.write_text(json.dumps([{**proxy, "listen": "127.0.0.1:0"} for proxy in populate]))
    argv = [binary, "--project-name", f"chaosnet-test-{uuid.uuid4().hex[:8]}"]
    for path in COMPOSE_FILES:
        argv += ["--file", str(path)]
    env = dict(
        os.environ, CHAOSNET_IMAGE=chaosnet_image, TOXIPROXY_PORT="0", TOXIPROXY_CONFIG=str(config)
    )
    try:
        yield argv, env
    finally:
        subprocess.run(
            [*argv, "down", "--timeout", "5"],
            env=env,
            capture_output=True,
            timeout=COMPOSE_TIMEOUT_S,
            check=False,
        )


def _compose(compose: tuple[list[str], dict[str, str]], *args: str) -> str:
    argv, env = compose
    done = subprocess.run(
        [*argv, *args], env=env, capture_output=True, text=True, timeout=COMPOSE_TIMEOUT_S
    )
    assert done.returncode == 0, f"docker-compose {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def _api_url(compose: tuple[list[str], dict[str, str]]) -> str:
    """The port chaosnet got, from its ready line in the service's log."""
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        logs = _compose(compose, "logs", "--no-color", "toxiproxy")
        found = LISTENING.search(logs)
        if found:
            return found.group(1)
        assert time.monotonic() < deadline, f"chaosnet did not report its port:\n{logs}"
        time.sleep(0.1)


def test_compose_with_the_chaosnet_image_passes_every_bundled_scenario(
    compose: tuple[list[str], dict[str, str]],
) -> None:
    _compose(compose, "up", "-d", "--no-deps", "toxiproxy")  # Redis is the example, not needed
    url = _api_url(compose)
    api = Api(url)
    try:
        assert [p["name"] for p in api.get("/proxies").body.values()] == ["redis"]
        assert "truncate_frame" in api.get("/chaosnet").body["extensions"]
    finally:
        api.close()
    done = subprocess.run(
        [sys.executable, "-m", "chaosnet.cli", "run", "scenarios/", "--backend", url, "--plain"],
        cwd=toolchain.ROOT,
        env=dict(os.environ, PYTHONPATH=str(toolchain.ROOT)),
        capture_output=True,
        text=True,
        timeout=SCENARIOS_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    scenarios = len(list((toolchain.ROOT / "scenarios").glob("*.yaml")))
    assert f"{scenarios} passed" in done.stdout, done.stdout[-2000:]


pytestmark = pytest.mark.timeout(COMPOSE_TIMEOUT_S + SCENARIOS_TIMEOUT_S)
