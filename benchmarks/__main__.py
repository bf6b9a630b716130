"""``python -m benchmarks [--quick] [--output FILE.json] [--figures 1,2] [--profile DIR]``.

Runs the figures of issue 8 on three paths -- direct, chaosnet (``chaosnet
serve`` in its own process) and the real Toxiproxy -- prints the table and
writes every figure, the machine and the date as JSON. Exit status: 0 when
every figure ran (targets missed or not), 1 when a figure failed to run, 2 on a
usage error, 130 on Ctrl-C; every process started is stopped in every case.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.suite import Options, run

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="short run (CI: keeps it working)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument(
        "--figures", default="", help="comma-separated figure numbers (default: all)"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy chaosnet into DIR"
    )
    parser.add_argument("--native", action="store_true", help="with --profile: native frames too")
    parser.add_argument(
        "--toxiproxy-bin", type=Path, default=None, help="toxiproxy-server to compare"
    )
    args = parser.parse_args(argv)
    figures = tuple(f.strip() for f in args.figures.split(",") if f.strip())
    return Options(args.quick, args.output, figures, args.profile, args.native, args.toxiproxy_bin)


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse(argv)
    # SIGTERM unwinds like Ctrl-C, so every child process is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(options)
    except KeyboardInterrupt:
        print("benchmarks: interrupted; every process stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
