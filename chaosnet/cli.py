"""The ``chaosnet`` command: argument parsing only, the work lives in the library.

Exit status: 0 success, 1 an expectation failed, 2 bad input or usage,
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chaosnet.errors import ChaosnetError

EXIT_USAGE = 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaosnet", description="Fault-injection harness for network client code."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the embedded proxy with its Toxiproxy-compatible control API"
    )
    serve.add_argument("--host", default="127.0.0.1", help="API bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8474, help="API port (default 8474; 0 = any)")
    serve.add_argument("--seed", type=int, default=None, help="seed for reproducible toxics")
    serve.add_argument(
        "--config", type=Path, default=None, help="Toxiproxy-style JSON array of proxies"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ChaosnetError as exc:
        print(f"chaosnet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from chaosnet.proxy.serve import main as serve_main

        return serve_main(host=args.host, port=args.port, seed=args.seed, config=args.config)
    raise AssertionError(f"unhandled command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())
