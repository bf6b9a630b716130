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
from chaosnet.proxy.budget import DEFAULT_LIMIT
from chaosnet.proxy.connlog import DEFAULT_HISTORY

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
    serve.add_argument(
        "--history",
        type=_positive_int,
        default=DEFAULT_HISTORY,
        help=f"connections kept per proxy in the connection log (default {DEFAULT_HISTORY})",
    )
    serve.add_argument(
        "--buffer-limit",
        type=_positive_int,
        default=DEFAULT_LIMIT,
        metavar="BYTES",
        help=f"bytes toxics may hold across all connections (default {DEFAULT_LIMIT})",
    )

    run = commands.add_parser("run", help="run scenario files (or every scenario in folders)")
    run.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    _add_backend_option(run)
    run.add_argument("--seed", default=None, help="seed for reproducible runs (default: random)")
    run.add_argument(
        "--report",
        nargs=2,
        metavar=("FORMAT", "FILE"),
        default=None,
        help="write a machine-readable report: --report json FILE",
    )
    run.add_argument("--junit", type=Path, default=None, metavar="FILE", help="JUnit XML report")
    run.add_argument(
        "-k",
        dest="keyword",
        default=None,
        metavar="PATTERN",
        help="only scenarios whose name or file matches, e.g. -k 'reset and not slow'",
    )
    run.add_argument(
        "--toxiproxy-bin", type=Path, default=None, help="toxiproxy-server for --backend toxiproxy"
    )
    run.add_argument("--docker-image", default=None, help="Toxiproxy image for --backend docker")
    display = run.add_mutually_exclusive_group()
    display.add_argument(
        "--live",
        dest="live",
        action="store_true",
        default=None,
        help="live display even when not on a terminal",
    )
    display.add_argument(
        "--plain", dest="live", action="store_false", help="plain line log even on a terminal"
    )

    validate = commands.add_parser("validate", help="check scenario files without running them")
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    _add_backend_option(validate)
    return parser


def _add_backend_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--backend",
        default=None,
        help="embedded (default), toxiproxy, docker, or http://host:port of a running server",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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

        return serve_main(
            host=args.host,
            port=args.port,
            seed=args.seed,
            config=args.config,
            history=args.history,
            buffer_limit=args.buffer_limit,
        )
    if args.command == "run":
        from chaosnet.scenario.commands import RunRequest, run_command

        return run_command(
            RunRequest(
                paths=args.paths,
                backend=args.backend,
                seed=args.seed,
                report=args.report,
                junit=args.junit,
                keyword=args.keyword,
                toxiproxy_bin=args.toxiproxy_bin,
                docker_image=args.docker_image,
                live=args.live,
            )
        )
    if args.command == "validate":
        from chaosnet.scenario.commands import validate_command

        return validate_command(args.paths, backend=args.backend)
    raise AssertionError(f"unhandled command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())
