"""Issue 14.1: bad values in ``serve`` flags and ``--config`` are one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT_S = 20.0
EXIT_USAGE = 2


def chaosnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosnet.cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def assert_one_line_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == EXIT_USAGE, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert all(word in lines[0] for word in words), lines


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--port", "70000"], ["--port", "70000 out of range"]),
        (["--port", "-1"], ["--port", "'-1'"]),
        (["--port", "²"], ["--port", "'²'"]),
        (["--port", "9" * 5000], ["--port", "5000 characters"]),
        (["--host", "a..b"], ["--host", "a..b"]),
        (["--host", "example.com"], ["--host", "IP address or localhost"]),
    ],
)
def test_bad_serve_flags(flags: list[str], words: list[str]) -> None:
    assert_one_line_usage_error(chaosnet("serve", *flags), *words)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"listen": "127.0.0.1:²", "upstream": "127.0.0.1:1"}, ["listen", "'²'"]),
        ({"listen": "127.0.0.1:0", "upstream": "127.0.0.1:²"}, ["upstream", "'²'"]),
        ({"listen": "a..b:0", "upstream": "127.0.0.1:1"}, ["listen", "a..b"]),
        ({"listen": "127.0.0.1:0", "upstream": "a..b:9"}, ["upstream", "a..b"]),
        ({"listen": f"127.0.0.1:{'9' * 5000}", "upstream": "127.0.0.1:1"}, ["listen"]),
    ],
)
def test_bad_config_values(tmp_path: Path, entry: dict[str, str], words: list[str]) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "p", **entry}]))
    result = chaosnet("serve", "--port", "0", "--config", str(config))
    assert_one_line_usage_error(result, str(config), *words)
