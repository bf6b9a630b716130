"""One benchmark run: start the processes, run the figures, print the table, write JSON."""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import machine
from benchmarks.environment import CHAOSNET, TOXIPROXY, Environment, locate_toxiproxy
from benchmarks.figures import FIGURES
from benchmarks.figures.common import Context
from benchmarks.plan import FULL, QUICK
from benchmarks.profiling import Profiler
from benchmarks.report import Row, markdown_table, print_table, write_json
from benchmarks.resources import peak_rss_bytes
from benchmarks.upstream import raise_open_files_limit
from chaosnet.errors import ChaosnetError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
WIDTH_WHEN_PIPED = 200


@dataclass(frozen=True)
class Options:
    quick: bool
    output: Path
    figures: tuple[str, ...]
    profile: Path | None
    native: bool
    toxiproxy_bin: Path | None


def run(options: Options) -> int:
    console = Console(stderr=True)
    unknown = [f for f in options.figures if f not in FIGURES]
    if unknown:
        console.print(f"benchmarks: no figure {', '.join(unknown)} (figures: {', '.join(FIGURES)})")
        return EXIT_USAGE
    try:
        toxiproxy_bin = locate_toxiproxy(options.toxiproxy_bin)
    except ChaosnetError as exc:
        console.print(f"benchmarks: {exc}")
        return EXIT_USAGE
    plan = QUICK if options.quick else FULL
    notes: list[str] = []
    if toxiproxy_bin is None:
        notes.append("toxiproxy-server not found (.tools/bin or PATH): no Toxiproxy column")
    profiler = Profiler(options.profile, options.native) if options.profile else None
    if profiler is not None and not profiler.available:
        notes.append("--profile: py-spy not found, no profile taken")
        profiler = None
    raise_open_files_limit()
    description = machine.describe(toxiproxy_bin)
    started = time.perf_counter()
    rows: list[Row] = []
    failed: list[str] = []
    peaks: dict[str, float | None] = {}
    with Environment(toxiproxy_bin) as env:
        ctx = Context(env, plan, profiler, lambda text: console.print(f"[dim]{text}[/]"), notes)
        for number, figure in FIGURES.items():
            if options.figures and number not in options.figures:
                continue
            try:
                rows += figure(ctx)
            except Exception as exc:  # one broken figure must not hide the others
                failed.append(number)
                notes.append(f"figure {number} failed: {type(exc).__name__}: {exc}")
                console.print(f"[red]figure {number} failed:[/] {exc}")
                traceback.print_exc(file=sys.stderr)
        for name in (CHAOSNET, TOXIPROXY):
            server = env.servers.get(name)
            peak = peak_rss_bytes(server.pid) if server and server.process.running else None
            peaks[name] = peak / 1e6 if peak else None
    document: dict[str, Any] = {
        "command": "python -m benchmarks" + (" --quick" if plan.quick else ""),
        "argv": sys.argv,
        "quick": plan.quick,
        "seconds": time.perf_counter() - started,
        "machine": description,
        "plan": plan.__dict__,
        "figures": [row.to_json() for row in rows],
        "peak_rss_MB_since_last_reset": peaks,
        "profiles": profiler.summaries if profiler else {},
        "notes": notes,
        "failed": failed,
        "markdown": markdown_table(rows),
    }
    wide = Console() if sys.stdout.isatty() else Console(width=WIDTH_WHEN_PIPED)
    print_table(rows, f"chaosnet benchmarks · {machine.summary(description)}", wide)
    for note in notes:
        console.print(f"note: {note}")
    write_json(options.output, document)
    console.print(f"results: {options.output}")
    return EXIT_FAILED if failed else EXIT_OK
