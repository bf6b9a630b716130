"""The README's two commands are exactly what CI runs, so both stay true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    block = re.search(
        r"## Two commands.*?```console\n(.*?)```", (ROOT / "README.md").read_text(), re.S
    )
    assert block is not None, "README lost its 'Two commands' section"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_starts_with_two_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("chaosnet run scenarios/")
    assert commands[1].endswith("pytest")


def test_ci_runs_exactly_the_readme_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in readme_commands():
        assert command in ci, f".ci/run does not run the README command: {command}"


def test_the_readme_client_is_the_tested_one() -> None:
    """The client the README shows to ``chaosnet check`` is tests/examples/readme_client.py,
    whose verdicts tests/scenario/test_check.py asserts."""
    client = (ROOT / "tests" / "examples" / "readme_client.py").read_text()
    assert f"```python\n{client}```" in (ROOT / "README.md").read_text()
