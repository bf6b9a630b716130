"""A failing scenario run once per session, with every report written: html, png, json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaosnet.cli import main

#: No retry: the requests made while the proxy is down fail. Then replies slow down.
FAILING = """\
name: outage-without-retry
servers:
  echo: {builtin: framed_echo}
proxies:
  main: {server: echo}
client:
  workload: framed
  endpoints: main
  requests: 40
  rate: 100/s
  timeout: 100ms
timeline:
  - at: 60ms
    disable: main
  - at: 140ms
    enable: main
  - at: 180ms
    add_toxic: {proxy: main, type: latency, name: slow, latency: 30ms}
  - at: 300ms
    remove_toxic: {proxy: main, name: slow}
expect:
  all_answered: true
  max_attempts: 1
"""


@dataclass(frozen=True)
class Run:
    folder: Path
    exit_code: int
    html: Path
    png: Path
    json: dict[str, Any]


@pytest.fixture(scope="session")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("failing-run")
    scenario = folder / "outage.yaml"
    scenario.write_text(FAILING)
    html, png, data = folder / "run.html", folder / "run.png", folder / "run.json"
    code = main(
        [
            "run",
            str(scenario),
            "--seed",
            "7",
            "--plain",
            "--report",
            "html",
            str(html),
            "--report",
            "png",
            str(png),
            "--report",
            "json",
            str(data),
        ]
    )
    return Run(folder, code, html, png, json.loads(data.read_text()))
