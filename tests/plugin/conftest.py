"""The plugin is tested the way pytest-timeout and pytest-asyncio test theirs: with pytester
(enabled for the whole suite by ``-p pytester`` in pyproject's addopts)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import chaosnet


def _import_all_of_chaosnet() -> None:
    """In-process pytester runs drop the modules they imported when they end. A chaosnet
    module first imported inside one inner run would then be imported again by the next,
    giving two copies (two toxic registries, two ``ApiError`` classes) beside the ones the
    outer run holds. Importing everything up front keeps one copy of each."""
    for module in pkgutil.walk_packages(chaosnet.__path__, "chaosnet."):
        if not module.name.endswith(("__main__", "pdeathsig_exec")):
            importlib.import_module(module.name)


_import_all_of_chaosnet()


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
        "CHAOSNET_UNSUPPORTED",
        "CHAOSNET_REPORT",
        "CHAOSNET_HANG_TIMEOUT",
        "CHAOSNET_HAMMER_RATE",
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
