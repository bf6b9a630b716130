"""Toxiproxy's own CLI (``toxiproxy-cli``), unmodified, driving both servers."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.conftest import Backend
from tests.proxy.support import Api, Upstream, listen_address, round_trip

CLI_TIMEOUT_S = 20.0
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(backend: Backend, toxiproxy_bins: tuple[Path, Path]) -> Cli:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(toxiproxy_bins[1]), "--host", backend.url, *args],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )

    return run


def test_create_list_inspect_delete(cli: Cli, api: Api, echo_server: Upstream) -> None:
    done = cli(
        "create", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{echo_server.port}", "cli1"
    )
    assert done.returncode == 0, done.stderr
    assert "Created new proxy cli1" in done.stdout
    proxy = api.get("/proxies/cli1").body
    assert round_trip(listen_address(proxy)) == b"ping"
    listed = cli("list")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("cli1"))
    assert row.split("\t")[1:4] == [proxy["listen"], f"127.0.0.1:{echo_server.port}", "enabled"]
    done = cli("delete", "cli1")
    assert done.returncode == 0
    assert "Deleted proxy cli1" in done.stdout
    assert api.get("/proxies/cli1").status == 404


def test_toggle(cli: Cli, api: Api, echo_server: Upstream) -> None:
    api.create_proxy("cli2", echo_server.address)
    done = cli("toggle", "cli2")
    assert done.returncode == 0, done.stderr
    assert "disabled" in done.stdout
    assert api.get("/proxies/cli2").body["enabled"] is False
    done = cli("toggle", "cli2")
    assert "enabled" in done.stdout
    assert api.get("/proxies/cli2").body["enabled"] is True


def test_toxic_add_update_remove(cli: Cli, api: Api, echo_server: Upstream) -> None:
    api.create_proxy("cli3", echo_server.address)
    done = cli("toxic", "add", "--type", "latency", "-a", "latency=100", "-a", "jitter=5", "cli3")
    assert done.returncode == 0, done.stderr
    assert "Added downstream latency toxic 'latency_downstream' on proxy 'cli3'" in done.stdout
    done = cli(
        "toxic",
        "add",
        "-t",
        "bandwidth",
        "-u",
        "-n",
        "slow",
        "--tox",
        "0.5",
        "-a",
        "rate=10",
        "cli3",
    )
    assert done.returncode == 0, done.stderr
    toxics = {t["name"]: t for t in api.get("/proxies/cli3/toxics").body}
    assert toxics["latency_downstream"]["attributes"] == {"latency": 100, "jitter": 5}
    assert toxics["slow"]["stream"] == "upstream"
    assert toxics["slow"]["toxicity"] == 0.5
    done = cli("toxic", "update", "-n", "latency_downstream", "-a", "latency=20", "cli3")
    assert done.returncode == 0, done.stderr
    assert "Updated toxic 'latency_downstream' on proxy 'cli3'" in done.stdout
    updated = api.get("/proxies/cli3/toxics/latency_downstream").body
    assert updated["attributes"] == {"latency": 20, "jitter": 5}
    inspected = cli("inspect", "cli3")
    assert "latency_downstream" in inspected.stdout
    assert "latency=20" in inspected.stdout
    done = cli("toxic", "remove", "-n", "latency_downstream", "cli3")
    assert done.returncode == 0, done.stderr
    assert "Removed toxic 'latency_downstream' on proxy 'cli3'" in done.stdout
    assert [t["name"] for t in api.get("/proxies/cli3/toxics").body] == ["slow"]


def test_errors_reach_the_user(cli: Cli) -> None:
    done = cli("toxic", "add", "--type", "latency", "missing-proxy")
    assert done.returncode != 0
    assert "HTTP 404: proxy not found" in done.stdout + done.stderr
