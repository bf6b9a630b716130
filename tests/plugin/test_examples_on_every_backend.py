"""The user-style examples in tests/examples pass on the real Toxiproxy too, not only embedded."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "tests" / "examples").glob("test_*.py"))


def copy_examples(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> int:
    """Copy the examples next to the inner run; the number of tests they define."""
    # The container example needs the locally built images of tests/docker.
    pytester.makeconftest('pytest_plugins = ["tests.docker.fixtures"]')
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    count = 0
    for source in EXAMPLES:
        shutil.copy(source, pytester.path / source.name)
        count += len(re.findall(r"^def test_", source.read_text(), flags=re.MULTILINE))
    return count


def test_examples_pass_on_the_real_toxiproxy(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    toxiproxy_bins: tuple[Path, Path],
    servers_image: str,
) -> None:
    expected = copy_examples(pytester, monkeypatch)
    result = pytester.runpytest_subprocess(
        "--chaosnet-backend=toxiproxy", f"--chaosnet-toxiproxy-bin={toxiproxy_bins[0]}"
    )
    result.stdout.fnmatch_lines(["chaosnet: backend=toxiproxy *"])
    result.assert_outcomes(passed=expected)


def test_examples_pass_on_toxiproxy_in_docker(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    toxiproxy_image: str,
    servers_image: str,
) -> None:
    expected = copy_examples(pytester, monkeypatch)
    result = pytester.runpytest_subprocess(
        "--chaosnet-backend=docker", f"--chaosnet-docker-image={toxiproxy_image}"
    )
    result.stdout.fnmatch_lines(["chaosnet: backend=docker *"])
    result.assert_outcomes(passed=expected)
