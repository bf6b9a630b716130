"""A figure's result (:class:`Row`), the printed table and the JSON document."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.environment import PATHS

NA = "-"


@dataclass
class Row:
    """One line of the table: a figure's median value on each path, and its target."""

    key: str  # "1a", "2c", ...
    title: str
    unit: str
    values: Mapping[str, float | None]  # median per path; a missing path is "not applicable"
    target: str = ""
    met: bool | None = None  # None: no target, or not measurable in this run
    compare: str = ""  # the ratios behind ``met``, for people
    ratios: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # samples, CPU, errors, RSS...

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "values": {path: _finite(v) for path, v in self.values.items()},
            "target": self.target,
            "met": self.met,
            "compare": self.compare,
            "ratios": {name: _finite(v) for name, v in self.ratios.items()},
            "details": _clean(self.details),
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def _clean(value: Any) -> Any:
    """JSON has no NaN: drop them (None), recursively."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return NA
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _met(met: bool | None) -> str:
    return {True: "[green]yes[/]", False: "[red]no[/]", None: NA}[met]


def table(rows: list[Row], title: str) -> Table:
    out = Table(title=title, show_lines=False, header_style="bold")
    out.add_column("#", justify="right")
    out.add_column("figure")
    out.add_column("unit")
    for path in PATHS:
        out.add_column(path, justify="right")
    out.add_column("chaosnet vs")
    out.add_column("target")
    out.add_column("met?", justify="center")
    for row in rows:
        out.add_row(
            row.key,
            row.title,
            row.unit,
            *(fmt(row.values.get(path)) for path in PATHS),
            row.compare,
            row.target,
            _met(row.met),
        )
    return out


def print_table(rows: list[Row], title: str, console: Console | None = None) -> None:
    (console or Console()).print(table(rows, title))


def markdown_table(rows: list[Row]) -> str:
    """The same table in Markdown, for docs/performance.md."""
    head = ["#", "figure", "unit", *PATHS, "chaosnet vs", "target", "met?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        met = {True: "yes", False: "**no**", None: NA}[row.met]
        cells = [row.key, row.title, row.unit, *(fmt(row.values.get(p)) for p in PATHS)]
        cells += [row.compare, row.target, met]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(document), indent=2) + "\n")


def micro_main(measure: Callable[[bool], Mapping[str, float]], doc: str, quick_help: str) -> None:
    """The ``main`` of a micro benchmark run on its own: ``--quick``, then a line per figure."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    figures = measure(parser.parse_args().quick)
    width = max(map(len, figures), default=0)
    for name, value in figures.items():
        print(f"{name:{width}} {value:>16,.2f}")
