"""Toxiproxy's own ``api_test.go`` (v2.12.0, 34 tests) against ``chaosnet serve``, and
against the real ``toxiproxy-server`` as the control: both must pass all 34.

The suite is fetched, patched and built by ``toxiproxy_suite.py`` (Go needed; a
missing toolchain skips locally and fails in CI). Each server is a dedicated
process, so the suite's deletions never touch another test's proxies.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosnet.backends.toxiproxy import ToxiproxyBackend
from tests import toolchain
from tests.conformance import toxiproxy_suite
from tests.conformance.conftest import ChaosnetServe

pytestmark = pytest.mark.timeout(toxiproxy_suite.BUILD_TIMEOUT_S + toxiproxy_suite.RUN_TIMEOUT_S)


@pytest.fixture(scope="session")
def suite() -> tuple[Path, frozenset[str]]:
    go = shutil.which("go")
    if go is None:
        toolchain.missing("no Go toolchain to build Toxiproxy's api_test.go")
        raise AssertionError("unreachable")
    return toxiproxy_suite.build(go)


@pytest.fixture
def chaosnet_url() -> Iterator[str]:
    served = ChaosnetServe()
    yield served.url
    errors = served.errors()
    assert served.stop() == 0
    assert "internal error" not in errors, errors


@pytest.fixture
def toxiproxy_url(toxiproxy_bins: tuple[Path, Path]) -> Iterator[str]:
    server = ToxiproxyBackend(toxiproxy_bins[0])
    server.start()
    yield server.url
    server.stop()


@pytest.mark.parametrize("server", ["chaosnet", "toxiproxy"])
def test_toxiproxy_api_suite_passes_in_full(
    server: str, suite: tuple[Path, frozenset[str]], request: pytest.FixtureRequest
) -> None:
    binary, names = suite
    url = request.getfixturevalue(f"{server}_url")
    result = toxiproxy_suite.run(binary, names, url)
    assert result.passed == names, f"{server}: {result.summary()}\n{result.failure_output()}"
    assert len(result.passed) == toxiproxy_suite.EXPECTED_TESTS


def test_a_changed_upstream_file_fails_the_patch_loudly(tmp_path: Path) -> None:
    """The patch checks each anchor; a suite that no longer matches is an error, not a pass."""
    module = tmp_path / "module"
    module.mkdir()
    (module / toxiproxy_suite.SUITE_FILE).write_text("package toxiproxy_test\n")
    with pytest.raises(toxiproxy_suite.SuiteError, match=r"expected 1 x 'func WithServer\('"):
        toxiproxy_suite.patch_module(module, tmp_path / "patched")


def test_the_result_names_what_failed() -> None:
    names = frozenset({"TestA", "TestB"})
    result = toxiproxy_suite.SuiteResult(
        passed=frozenset({"TestA"}),
        failed=frozenset({"TestB"}),
        skipped=frozenset(),
        expected=names,
        output="=== RUN   TestB\n    api_test.go:9: Expected error `x'\n--- FAIL: TestB (0.00s)\n",
    )
    assert result.summary() == "1/2 passed; failed: ['TestB']; skipped: none"
    assert "Expected error `x'" in result.failure_output()
