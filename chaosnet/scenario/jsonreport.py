"""``--report json FILE``: every scenario with its expectations, observed values and timeline."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaosnet.scenario.result import ScenarioResult
from chaosnet.version import __version__

FORMAT_VERSION = 1


def build(
    results: Sequence[ScenarioResult], *, backend: str, seed: int, seconds: float
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "chaosnet": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": backend,
        "seed": seed,
        "duration": round(seconds, 6),
        "summary": {
            status: sum(1 for r in results if r.status == status)
            for status in ("passed", "failed", "error")
        },
        "scenarios": [r.to_json() for r in results],
    }


def write(
    path: Path, results: Sequence[ScenarioResult], *, backend: str, seed: int, seconds: float
) -> None:
    document = build(results, backend=backend, seed=seed, seconds=seconds)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
