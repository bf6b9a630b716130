"""The top-level docker-compose.yml users copy, and its toxiproxy.json populate file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosnet.servers.container import ContainerServer
from chaosnet.servers.readiness import LogLine
from chaosnet.settings import DEFAULT_DOCKER_IMAGE
from tests import toolchain

COMPOSE_FILE = toolchain.ROOT / "docker-compose.yml"
CHAOSNET_OVERRIDE = toolchain.ROOT / "docker-compose.chaosnet.yml"
POPULATE_FILE = toolchain.ROOT / "toxiproxy.json"
PROXY_FIELDS = {"name", "listen", "upstream", "enabled"}  # what Toxiproxy's populate reads


#: What the files read from the environment; unset, each has its documented default.
COMPOSE_VARIABLES = ("TOXIPROXY_IMAGE", "REDIS_IMAGE", "TOXIPROXY_PORT", "TOXIPROXY_CONFIG")
COMPOSE_ENV = {
    k: v for k, v in os.environ.items() if k not in (*COMPOSE_VARIABLES, "CHAOSNET_IMAGE")
}


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    """The file as Compose v1 resolves it (``docker-compose config`` validates it)."""
    return resolved([COMPOSE_FILE])


def resolved(files: list[Path]) -> dict[str, Any]:
    """``docker-compose config`` of ``files`` (later ones override), the variables unset."""
    compose = shutil.which("docker-compose")
    if compose is None:
        toolchain.missing("docker-compose (Compose v1) is not installed")
        raise AssertionError("unreachable")
    argv = [compose] + [arg for path in files for arg in ("--file", str(path))]
    done = subprocess.run(
        [*argv, "config"], capture_output=True, text=True, timeout=60, env=COMPOSE_ENV, check=False
    )
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_the_chaosnet_override_swaps_only_the_image_and_health_check() -> None:
    configs = [resolved(files) for files in ([COMPOSE_FILE], [COMPOSE_FILE, CHAOSNET_OVERRIDE])]
    toxiproxy, chaosnet = (config["services"]["toxiproxy"] for config in configs)
    assert chaosnet["image"] == "chaosnet:latest"
    assert "/toxiproxy-cli" not in chaosnet["healthcheck"]["test"]
    for key in ("command", "volumes", "network_mode", "depends_on"):
        assert chaosnet[key] == toxiproxy[key], key


def test_every_service_uses_the_host_network_and_publishes_nothing(
    compose_config: dict[str, Any],
) -> None:
    services = compose_config["services"]
    assert set(services) == {"toxiproxy", "redis"}
    for service in services.values():
        assert service["network_mode"] == "host"
        assert "ports" not in service
        assert "127.0.0.1" in service["command"] or "-host=127.0.0.1" in service["command"]


def test_toxiproxy_serves_its_api_on_8474_populated_from_toxiproxy_json(
    compose_config: dict[str, Any],
) -> None:
    toxiproxy = compose_config["services"]["toxiproxy"]
    assert toxiproxy["image"] == DEFAULT_DOCKER_IMAGE
    assert "-port=8474" in toxiproxy["command"]
    config_flag = next(a for a in toxiproxy["command"] if a.startswith("-config="))
    inside = config_flag.removeprefix("-config=")
    assert f"{POPULATE_FILE}:{inside}:ro" in toxiproxy["volumes"]


def test_the_proxies_point_at_the_example_server(compose_config: dict[str, Any]) -> None:
    proxies = json.loads(POPULATE_FILE.read_text())
    redis = compose_config["services"]["redis"]["command"]
    redis_port = redis[redis.index("--port") + 1]
    assert [p["name"] for p in proxies] == ["redis"]
    for proxy in proxies:
        assert set(proxy) <= PROXY_FIELDS  # Toxiproxy ignores unknown fields: catch typos here
        assert proxy["listen"].startswith("127.0.0.1:")
    assert proxies[0]["upstream"] == f"127.0.0.1:{redis_port}"


def test_toxiproxy_loads_the_populate_file_as_the_compose_file_mounts_it(
    compose_config: dict[str, Any], toxiproxy_image: str, tmp_path: Path
) -> None:
    proxies = json.loads(POPULATE_FILE.read_text())
    # The same proxies, on ports the kernel picks: a test never binds a fixed port.
    anywhere = tmp_path / "toxiproxy.json"
    anywhere.write_text(json.dumps([{**proxy, "listen": "127.0.0.1:0"} for proxy in proxies]))
    command = compose_config["services"]["toxiproxy"]["command"]
    config_flag = next(a for a in command if a.startswith("-config="))
    server = ContainerServer(
        toxiproxy_image,
        ["-host=127.0.0.1", "-port=0", config_flag],
        name="toxiproxy-populated",
        volumes={str(anywhere): config_flag.removeprefix("-config=") + ":ro"},
        ready=LogLine(rf'"proxies":{len(proxies)},.*"message":"Populated proxies from file"'),
    )
    with server:
        assert "Failed to populate" not in server.log_text()
