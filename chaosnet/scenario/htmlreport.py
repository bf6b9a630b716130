"""``--report html FILE`` and ``--report png FILE``: a picture of every scenario of a run.

One call per command (``chaosnet run``, ``chaosnet check``, ``chaosnet explore``)::

    htmlreport.write(path, results, backend=..., seed=..., seconds=..., command="chaosnet run")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chaosnet.picture import Picture, scenario_picture, write_html, write_png
from chaosnet.scenario.report import totals_line
from chaosnet.scenario.result import ScenarioResult


def pictures(results: Sequence[ScenarioResult]) -> list[Picture]:
    return [scenario_picture(result) for result in results]


def write(
    path: Path,
    results: Sequence[ScenarioResult],
    *,
    backend: str,
    seed: int,
    seconds: float,
    command: str = "chaosnet run",
) -> Path:
    """The run's HTML page: a section per scenario, with its chart, verdicts and replay."""
    facts = {
        "result": totals_line(results, seconds, seed),
        "backend": backend,
        "seed": str(seed),
    }
    return write_html(path, pictures(results), title=f"{command}: report", facts=facts)


def write_image(path: Path, results: Sequence[ScenarioResult]) -> Path:
    """The same charts as one PNG (rendered offline, no browser)."""
    return write_png(path, pictures(results))
