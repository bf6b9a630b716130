"""The user-style examples in tests/examples pass on the real Toxiproxy too, not only embedded."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("test_*.py"))


def copy_examples(pytester: pytest.Pytester) -> int:
    """Copy the examples next to the inner run; the number of tests they define."""
    count = 0
    for source in EXAMPLES:
        shutil.copy(source, pytester.path / source.name)
        count += len(re.findall(r"^def test_", source.read_text(), flags=re.MULTILINE))
    return count


def test_examples_pass_on_the_real_toxiproxy(
    pytester: pytest.Pytester, toxiproxy_bins: tuple[Path, Path]
) -> None:
    expected = copy_examples(pytester)
    result = pytester.runpytest_subprocess(
        "--chaosnet-backend=toxiproxy", f"--chaosnet-toxiproxy-bin={toxiproxy_bins[0]}"
    )
    result.stdout.fnmatch_lines(["chaosnet: backend=toxiproxy *"])
    result.assert_outcomes(passed=expected)
