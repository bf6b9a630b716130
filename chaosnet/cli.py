"""The ``chaosnet`` command: argument parsing only, the work lives in the library.

Exit status: 0 success, 1 an expectation failed, 2 bad input or usage,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from chaosnet.errors import ChaosnetError
from chaosnet.interrupts import exit_status as interrupted_status
from chaosnet.proxy.addresses import parse_port, resolve_listen_host
from chaosnet.proxy.budget import DEFAULT_LIMIT
from chaosnet.proxy.connlog import DEFAULT_HISTORY
from chaosnet.proxy.errors import ApiError

EXIT_USAGE = 2
#: toxiproxy-server's boolean flags: -flag, -flag=true|false (Go's strconv.ParseBool spellings).
GO_BOOL_FLAGS = {
    "proxy-metrics": "serve Toxiproxy's proxy metrics (and chaosnet's) on GET /metrics",
    "runtime-metrics": "serve process and runtime metrics on GET /metrics",
    "version": "print the version and exit",
}
GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chaosnet", description="Fault-injection harness for network client code."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # toxiproxy-server's flags (Go style: -flag, --flag, -flag=value) are accepted as they are.
    serve = commands.add_parser(
        "serve",
        help="run the embedded proxy with its Toxiproxy-compatible control API",
        allow_abbrev=False,
    )
    serve.add_argument(
        "-host",
        "--host",
        type=_host,
        default="127.0.0.1",
        help="API bind address (default 127.0.0.1)",
    )
    serve.add_argument(
        "-port", "--port", type=_port, default=8474, help="API port (default 8474; 0 = any)"
    )
    serve.add_argument(
        "-seed", "--seed", type=int, default=None, help="seed for reproducible toxics"
    )
    serve.add_argument(
        "-config", "--config", type=Path, default=None, help="Toxiproxy-style JSON array of proxies"
    )
    for flag, what in GO_BOOL_FLAGS.items():
        serve.add_argument(
            f"-{flag}", f"--{flag}", action=argparse.BooleanOptionalAction, default=False, help=what
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
    _add_report_option(run, "each scenario")
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
    run.add_argument(
        "--unsupported",
        choices=("fail", "skip"),
        default=None,
        help="scenarios needing an extension the backend lacks: fail (default) or skip",
    )
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

    explore = commands.add_parser(
        "explore",
        help="generate fault schedules inside a scenario's explore: envelope; shrink a failure",
    )
    explore.add_argument("path", type=Path, metavar="FILE", help="a scenario with explore:")
    explore.add_argument(
        "--budget", default="60s", help="time to search for a failure (default 60s)"
    )
    explore.add_argument(
        "--max-examples", type=_positive_int, default=10_000, help="stop after this many"
    )
    explore.add_argument("--seed", default=None, help="seed for reproducible runs")
    explore.add_argument(
        "--out", type=Path, default=None, help="the minimal failing scenario (default: beside FILE)"
    )
    explore.add_argument(
        "--workload", default=None, metavar="MODULE:FUNCTION", help="explore this client instead"
    )
    _add_report_option(explore, "the minimal failing run")
    stored = explore.add_mutually_exclusive_group()
    stored.add_argument(
        "--database",
        type=Path,
        default=None,
        help="Hypothesis example database (default .hypothesis/chaosnet-explore)",
    )
    stored.add_argument("--no-database", action="store_true", help="keep no examples between runs")
    _add_backend_option(explore)
    explore.add_argument(
        "--toxiproxy-bin", type=Path, default=None, help="toxiproxy-server for --backend toxiproxy"
    )
    explore.add_argument("--docker-image", default=None, help="image for --backend docker")

    check = commands.add_parser(
        "check", help="run the battery of faults against your client (module:function)"
    )
    check.add_argument("workload", metavar="MODULE:FUNCTION", help="your callable workload")
    check.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="scenario files (default: the battery)"
    )
    check.add_argument(
        "--kind",
        action="append",
        default=None,
        help="what the client speaks: framed (default), kv, stream, datagram; repeat for several",
    )
    _add_backend_option(check)
    check.add_argument("--seed", default=None, help="seed for reproducible runs (default: random)")
    _add_report_option(check, "each scenario")
    check.add_argument("--junit", type=Path, default=None, metavar="FILE", help="JUnit XML report")
    check.add_argument("-k", dest="keyword", default=None, metavar="PATTERN", help="as for run")
    check_display = check.add_mutually_exclusive_group()
    check_display.add_argument("--live", dest="live", action="store_true", default=None)
    check_display.add_argument("--plain", dest="live", action="store_false")

    validate = commands.add_parser("validate", help="check scenario files without running them")
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    _add_backend_option(validate)
    return parser


def _add_report_option(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--report",
        dest="reports",
        nargs=2,
        action="append",
        default=[],
        metavar=("FORMAT", "FILE"),
        help="write a report, repeatable: --report json FILE (machine-readable), "
        f"--report html FILE (a self-contained page with a picture of {what}), "
        "--report png FILE (the same pictures; html and png need chaosnet[report])",
    )


def _add_backend_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--backend",
        default=None,
        help="embedded (default), toxiproxy, docker, or http://host:port of a running server",
    )


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    try:
        return parse_port(text, "port")
    except ApiError as exc:
        raise argparse.ArgumentTypeError(exc.message.removeprefix("port: ")) from None


def _host(text: str) -> str:
    try:
        return resolve_listen_host(text)
    except ApiError as exc:
        raise argparse.ArgumentTypeError(exc.message.replace("listen: ", "")) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _go_bool_values(argv: Sequence[str]) -> list[str]:
    """``serve -proxy-metrics=false`` as argparse spells it (``--no-proxy-metrics``)."""
    if not argv or argv[0] != "serve":
        return list(argv)
    out = []
    for arg in argv:
        flag, sep, value = arg.lstrip("-").partition("=")
        if sep and arg.startswith("-") and flag in GO_BOOL_FLAGS:
            if value not in GO_TRUE + GO_FALSE:
                raise ChaosnetError(f"invalid boolean value {value!r} for -{flag}")
            arg = f"--{flag}" if value in GO_TRUE else f"--no-{flag}"
        out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    try:
        argv = _go_bool_values(sys.argv[1:] if argv is None else argv)
    except ChaosnetError as exc:
        print(f"chaosnet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args = _build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ChaosnetError as exc:
        print(f"chaosnet: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        return interrupted_status(exc)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from chaosnet.proxy.metrics import MetricsOptions
        from chaosnet.proxy.serve import main as serve_main
        from chaosnet.proxy.serve import print_version

        if args.version:
            return print_version()
        return serve_main(
            host=args.host,
            port=args.port,
            seed=args.seed,
            config=args.config,
            history=args.history,
            buffer_limit=args.buffer_limit,
            metrics=MetricsOptions(proxy=args.proxy_metrics, runtime=args.runtime_metrics),
        )
    if args.command == "run":
        from chaosnet.scenario.commands import RunRequest, run_command

        return run_command(_request(RunRequest, args))
    if args.command == "explore":
        from chaosnet.explore.command import DEFAULT_DATABASE, ExploreRequest, explore_command

        database = None if args.no_database else (args.database or DEFAULT_DATABASE)
        return explore_command(_request(ExploreRequest, args, database=database))
    if args.command == "check":
        from chaosnet.scenario.check import CheckRequest, check_command

        return check_command(_request(CheckRequest, args, kinds=args.kind or ["framed"]))
    if args.command == "validate":
        from chaosnet.scenario.commands import validate_command

        return validate_command(args.paths, backend=args.backend)
    raise AssertionError(f"unhandled command {args.command!r}")


R = TypeVar("R")


def _request(make: Callable[..., R], args: argparse.Namespace, **computed: object) -> R:
    """A command's request from the options named as its fields (each option's ``dest``
    is its field's name); ``computed`` are the fields worked out from several options."""
    fields = inspect.signature(make).parameters
    options = {name: value for name, value in vars(args).items() if name in fields}
    return make(**{**options, **computed})


if __name__ == "__main__":
    sys.exit(main())
