"""Issue 14.12-13: hostile YAML and out-of-range values are ``file:line:col`` and exit 2."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaosnet.scenario.loader import load_file

TIMEOUT_S = 30.0
EXIT_USAGE = 2
BASE = """\
name: base
servers:
  echo: {builtin: echo}
proxies:
  main:
    server: echo
client:
  workload: stream
  endpoints: main
  requests: 1
  payload: 64
  timeout: 1s
timeout: 30s
expect:
  all_answered: true
"""


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosnet.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def assert_located(result: subprocess.CompletedProcess[str], path: Path, line: int, *words: str):
    assert result.returncode == EXIT_USAGE, result
    assert "Traceback" not in result.stderr, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}:{line}:"), first
    assert first.split(":")[2].isdigit(), first  # a column
    assert all(word in first for word in words), first


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (billion_laughs(), 6, ["aliases expand to more than"]),
        ("[" * 20_000, 1, ["nested deeper than"]),
        ("".join(" " * i + "k:\n" for i in range(200)), 65, ["nested deeper than"]),
        ("- " * 20_000 + "x\n", 1, ["nested deeper than"]),
    ],
    ids=["billion-laughs", "flow-nesting", "block-nesting", "sequence-nesting"],
)
def test_hostile_yaml(tmp_path: Path, text: str, line: int, words: list[str]) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    start = time.monotonic()
    _, problems = load_file(path)
    assert time.monotonic() - start < 5  # was 48 s and a MemoryError (a loaded machine: < 1 s)
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(line, "YAML too complex")]
    assert_located(validate(path), path, line, "YAML too complex", *words)


def test_control_characters(tmp_path: Path) -> None:
    # Found by the scenario fuzzer: PyYAML's reader raised before any parsing began.
    path = tmp_path / "nul.yaml"
    path.write_text(BASE.replace("  requests: 1", "  requests: 1\x00"))
    result = validate(path)
    assert_located(result, path, 10, "character #x0000 is not allowed")
    assert result.stderr.splitlines()[0].startswith(f"{path}:10:14:")


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(BASE + "#" * 2_000_000 + "\n")
    assert_located(validate(path), path, 1, "too large")


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("timeout: 30s", "timeout: 1.0e+300", 13, ["timeout", "86400"]),
        ("  timeout: 1s", "  timeout: 1.0e+300", 12, ["timeout", "3600"]),
        ("  payload: 64", "  payload: 8GiB", 11, ["payload", "67108864"]),
        ("  requests: 1", "  requests: 1\n  max_frame_size: 0", 11, ["max_frame_size"]),
        ("    server: echo", "    upstream: 10.255.255.1:9", 6, ["10.255.255.1", "loopback"]),
        ("    server: echo", "    upstream: a..b:9", 6, ["a..b"]),
        ("    server: echo", "    upstream: 127.0.0.1:²", 6, ["port must be a number"]),
    ],
)
def test_out_of_range_values(
    tmp_path: Path, old: str, new: str, line: int, words: list[str]
) -> None:
    assert old in BASE
    path = tmp_path / "range.yaml"
    path.write_text(BASE.replace(old, new))
    assert_located(validate(path), path, line, *words)


def test_base_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    result = validate(path)
    assert result.returncode == 0, result
