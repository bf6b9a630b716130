"""``python -m chaosnet.servers KIND [--host H] [--port P] [...]``: run one builtin server.

Prints ``chaosnet-server KIND listening on HOST:PORT`` (flushed) once bound,
logs notable events to stderr, exits 0 on SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chaosnet.framing import DEFAULT_MAX_FRAME_SIZE
from chaosnet.servers.builtin_runtime import ProtocolFactory, ServerContext, serve, serve_datagrams
from chaosnet.servers.kv import KVStore
from chaosnet.servers.protocols import EchoProtocol, FramedProtocol, datagram_echo, echo_payload


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chaosnet.servers", description="Run a chaosnet builtin server."
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, help_text in (
        ("echo", "raw TCP echo"),
        ("framed_echo", "answers each chaosnet frame with the same payload"),
        ("kv", "framed key-value store that logs every write (chaosnet.kv protocol)"),
        ("udp_echo", "answers each chaosnet.datagram request with its payload (UDP)"),
        ("http", "HTTP/1.1 with keep-alive: echo, status, wait, bytes, stream, count"),
    ):
        sub = kinds.add_parser(kind, help=help_text)
        sub.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
        sub.add_argument("--port", type=int, default=0, help="port (default 0: any)")
        sub.add_argument("--verbose", action="store_true", help="also log every connection")
        if kind not in ("echo", "udp_echo", "http"):
            sub.add_argument(
                "--max-frame-size", type=int, default=DEFAULT_MAX_FRAME_SIZE, metavar="BYTES"
            )
        if kind == "kv":
            sub.add_argument(
                "--dedupe", action="store_true", help="apply each request id at most once"
            )
    return parser


def _factory(args: argparse.Namespace) -> ProtocolFactory:
    if args.kind == "echo":
        return EchoProtocol
    if args.kind == "http":
        from chaosnet.servers.http import http_factory  # aiohttp: only this server needs it

        return http_factory()
    if args.kind == "framed_echo":
        return lambda ctx: FramedProtocol(ctx, echo_payload, args.max_frame_size)
    store = KVStore(dedupe=args.dedupe)

    def kv_protocol(ctx: ServerContext) -> FramedProtocol:
        return FramedProtocol(ctx, store.handle_payload, args.max_frame_size)

    return kv_protocol


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.kind == "udp_echo":
        return serve_datagrams(
            args.kind, datagram_echo, host=args.host, port=args.port, verbose=args.verbose
        )
    return serve(args.kind, _factory(args), host=args.host, port=args.port, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
