"""The plugin is tested the way pytest-timeout and pytest-asyncio test theirs: with pytester
(enabled for the whole suite by ``-p pytester`` in pyproject's addopts)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs must not inherit chaosnet settings from the outer one."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS: set ours after
    for name in (
        "CHAOSNET_BACKEND",
        "CHAOSNET_SEED",
        "CHAOSNET_LEAK_CHECK",
        "CHAOSNET_TOXIPROXY_BIN",
        "CHAOSNET_DOCKER_IMAGE",
        "PYTEST_XDIST_WORKER",  # inner in-process runs are not xdist workers
    ):
        monkeypatch.delenv(name, raising=False)
    # Inner runs have no ini of their own: settle what pytest-asyncio would warn about,
    # and chaosnet is already imported (so not assertion-rewritten) in in-process runs.
    monkeypatch.setenv(
        "PYTEST_ADDOPTS",
        "-o asyncio_default_fixture_loop_scope=function -p no:cacheprovider "
        "-W ignore::pytest.PytestAssertRewriteWarning",
    )
