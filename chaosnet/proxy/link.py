"""One proxied connection: the client socket, the upstream socket and two directions.

Lifecycle: accepted -> connecting to the upstream (non-blocking, no task) ->
running (both directions read) -> closed. Closing paths:

- both directions half-closed (each side sent FIN and it was passed on): an
  orderly close, recorded as closed by whoever sent the first FIN;
- a toxic cut (``fin``: close both sockets; ``rst``: ``SO_LINGER`` 0 on both);
- a socket error on one side (a peer's RST, mostly): the other side is reset
  too, so a reset stays a reset through the proxy;
- the proxy closing it (disabled, deleted, updated, server stopped): FIN;
- an internal error (a toxic raised): recorded, reported, and the connection
  reset -- never another connection.

An upstream that cannot be reached closes the client with FIN, as Toxiproxy does.

A link knows its proxy only as a :class:`Route` (names and the upstream address,
as configured when it accepted the connection) and a :data:`LinkClosed`
callback; everything engine-wide comes from the
:class:`~chaosnet.proxy.runtime.Runtime` it is handed.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from chaosnet.proxy.addresses import family_of, ip_literal
from chaosnet.proxy.chain import ChainPair
from chaosnet.proxy.direction import Direction

if TYPE_CHECKING:
    from chaosnet.proxy.connlog import ConnectionRecord
    from chaosnet.proxy.messages import MessageSession
    from chaosnet.proxy.runtime import Runtime

_LINGER_RESET = struct.pack("ii", 1, 0)
_DRAIN_READS = 16
_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


def reset_close(sock: socket.socket) -> None:
    """Close with a TCP RST instead of FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    sock.close()


def orderly_close(sock: socket.socket) -> None:
    """Close with FIN: read what is pending first, since unread data makes close() send RST."""
    try:
        for _ in range(_DRAIN_READS):
            if not sock.recv(1 << 16):
                break
    except OSError:
        pass
    sock.close()


def tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True, slots=True)
class Route:
    """Where a proxy sends a connection: its name, its upstream as given and resolved."""

    proxy: str
    upstream: str
    address: tuple[str, int]


#: Called once a link has closed: (link, closed by, ``fin`` or ``rst``).
LinkClosed = Callable[["Link", str, str], None]


class Link(ChainPair[Direction]):
    __slots__ = (
        "client",
        "connecting",
        "down",
        "messages",
        "on_closed",
        "opened_at",
        "record",
        "route",
        "running",
        "runtime",
        "seq",
        "toxics",
        "up",
        "upstream",
    )

    def __init__(
        self,
        runtime: Runtime,
        route: Route,
        client: socket.socket,
        seq: int,
        record: ConnectionRecord,
        on_closed: LinkClosed,
        messages: MessageSession | None = None,
    ) -> None:
        self.runtime = runtime
        self.route = route
        self.on_closed = on_closed
        self.client = client
        self.seq = seq
        self.record = record
        self.opened_at = time.monotonic()
        self.running = True
        self.connecting = False
        family = family_of(ip_literal(route.address[0]) or "0.0.0.0")
        self.upstream = socket.socket(family, socket.SOCK_STREAM)
        tune(self.upstream)
        self.up = Direction(self, runtime, client, self.upstream, "upstream")
        self.down = Direction(self, runtime, self.upstream, client, "downstream")
        self.toxics: set[str] = set()
        record.bytes_counter = self.byte_counts
        # A proxy with a protocol: the connection's framing, message records, reply order.
        self.messages = messages
        if messages is not None:
            self.up.tracker, self.down.tracker = messages.up, messages.down
            messages.deliver = self.down.inject

    @property
    def proxy_name(self) -> str:
        return self.route.proxy

    def byte_counts(self) -> tuple[int, int]:
        return self.up.forwarded, self.down.forwarded

    # -- connecting -------------------------------------------------------------------

    def connect(self) -> None:
        host, port = self.route.address
        if ip_literal(host) is None:
            self.runtime.loop.create_task(self._resolve_and_connect(host, port))
        else:
            self._connect_to((host, port))

    async def _resolve_and_connect(self, host: str, port: int) -> None:
        # A task: nothing above it catches, so whatever it raises closes this link.
        try:
            infos = await self.runtime.loop.getaddrinfo(
                host, port, family=self.upstream.family, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:  # unknown name; a name IDNA refuses
            self._upstream_failed(exc)
            return
        except Exception as exc:
            self.fail(exc)
            return
        if self.running:
            self.guarded(lambda: self._connect_to((str(infos[0][4][0]), port)))

    def _connect_to(self, address: tuple[str, int]) -> None:
        code = self.upstream.connect_ex(address)
        if code == 0:
            self._connected()
        elif code in (errno.EINPROGRESS, errno.EAGAIN):
            self.connecting = True
            self.runtime.poller.set_writer(
                self.upstream.fileno(), partial(self.guarded, self._connect_done)
            )
        else:
            self._upstream_failed(OSError(code, errno.errorcode.get(code, str(code))))

    def _connect_done(self) -> None:
        self.connecting = False
        self.runtime.poller.clear_writer(self.upstream.fileno())
        code = self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._upstream_failed(OSError(code, errno.errorcode.get(code, str(code))))
        else:
            self._connected()

    def _connected(self) -> None:
        if self.running:
            self.up.start()
            self.down.start()

    def _upstream_failed(self, exc: OSError | UnicodeError) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        self.record.error = f"cannot connect to upstream {self.route.upstream}: {reason}"
        self.close("upstream", "fin")

    # -- closing -------------------------------------------------------------------------

    def source_ended(self, side: str) -> None:
        self.record.first_close(side, "fin")

    def half_closed(self) -> None:
        if self.up.half_closed and self.down.half_closed:
            self.close("client", "fin")  # the record keeps whoever sent the first FIN

    def aborted(self, side: str, exc: OSError) -> None:
        """A socket error on ``side``: reset the other side too."""
        if exc.errno not in _RESET_ERRNOS:
            self.record.error = f"{side} socket error: {exc}"
        self.close(side, "rst")

    def fail(self, exc: BaseException) -> None:
        """An exception escaped the engine: record it, reset this connection only."""
        self.record.error = f"internal error: {exc!r}"
        self.runtime.report(exc)
        self.close("proxy", "rst")

    def close(self, by: str, kind: str) -> None:
        if not self.running:
            return
        self.running = False
        self.record.first_close(by, kind)
        self.up.shut()
        self.down.shut()
        self.connecting = False
        self.runtime.poller.forget(self.client.fileno())
        self.runtime.poller.forget(self.upstream.fileno())
        closer = reset_close if kind == "rst" else orderly_close
        closer(self.client)
        closer(self.upstream)
        self.on_closed(self, by, kind)
