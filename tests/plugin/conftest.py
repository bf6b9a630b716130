"""The plugin is tested the way pytest-timeout and pytest-asyncio test theirs: with pytester."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs must not inherit chaosnet settings from the outer one."""
    for name in (
        "CHAOSNET_BACKEND",
        "CHAOSNET_SEED",
        "CHAOSNET_LEAK_CHECK",
        "CHAOSNET_TOXIPROXY_BIN",
        "CHAOSNET_DOCKER_IMAGE",
        "PYTEST_ADDOPTS",
        "PYTEST_XDIST_WORKER",  # inner in-process runs are not xdist workers
    ):
        monkeypatch.delenv(name, raising=False)
