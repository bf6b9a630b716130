"""A datagram (UDP) proxy: one listening socket, a flow per client address.

Created with ``"transport": "udp"`` (a chaosnet extension). ``listen`` and
``upstream`` are as for TCP; the upstream's host is resolved when the proxy
starts. Each new client address opens a :class:`~chaosnet.proxy.datagram.flow.Flow`
with its own socket towards the upstream; the upstream's replies go back to that
address from the listening socket, so the client sees them come from where it sent.

- ``flow_timeout`` (ms, default 30,000): a flow with no datagram either way for
  that long is closed (``closed_by: "idle"``) and its socket released.
- ``enabled: false``: the listening socket stays bound (the address stays the
  proxy's) but every datagram that arrives is read and dropped, and every flow is
  closed, so nothing reaches the upstream and no reply comes back. UDP has no
  refusal: a client sees silence -- its requests time out. (Had the port been
  closed, the kernel would answer with ICMP port-unreachable and a connected
  client socket would raise ``ConnectionRefusedError``; a disabled proxy never
  does that.) Enabling forwards again; flows open afresh.
- Toxics follow the TCP proxy's rules (order, targeting, toxicity, seeds), with
  flows in place of connections: ``skip_connections`` and ``max_connections``
  count flows in the order they were opened. Only toxics that declare the ``udp``
  transport are accepted (each acts through ``Toxic.stage("udp")``); the rest get
  a 400 naming the type, as does ``body_only`` on ``corrupt``.
- Changing ``listen`` or ``upstream`` closes every flow and binds again.

Reading is bounded per readiness callback (``READ_BATCH`` datagrams), and the
engine's poller bounds a whole turn, so a flood on one proxy does not starve the
control API or other proxies.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chaosnet.proxy.addresses import family_of, format_address, ip_literal, parse_listen
from chaosnet.proxy.datagram.flow import READ_BATCH, RECV_SIZE, Flow
from chaosnet.proxy.datagram.flowlog import FlowLog
from chaosnet.proxy.errors import bad_request
from chaosnet.proxy.proxy import Proxy, ToxicTarget, bind_failed, normalise_listen

if TYPE_CHECKING:
    from chaosnet.proxy.runtime import Runtime
    from chaosnet.proxy.toxics.base import ToxicSpec

DEFAULT_FLOW_TIMEOUT_MS = 30_000
MAX_FLOW_TIMEOUT_MS = 86_400_000
SOCKET_BUFFER = 4 << 20
FLOW_CLOSE = "flow"  # the close "kind" of a flow in the metrics (no FIN or RST)
Address = tuple[Any, ...]  # (host, port) or IPv6's (host, port, flowinfo, scope_id)


class DatagramProxy(Proxy):
    def __init__(
        self,
        runtime: Runtime,
        name: str,
        listen: str,
        upstream: str,
        flow_timeout: int = DEFAULT_FLOW_TIMEOUT_MS,
    ) -> None:
        super().__init__(runtime, name, listen, upstream)
        self.transport = "udp"
        self.flow_timeout = flow_timeout
        self.log: FlowLog = FlowLog(runtime.history)
        self.sock: socket.socket | None = None
        self.flows: dict[Address, Flow] = {}
        self.target: tuple[str, int] | None = None  # the upstream, resolved
        self.dropped_while_disabled = 0

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        body["transport"] = self.transport
        body["flow_timeout"] = self.flow_timeout
        return body

    def targets(self) -> Iterable[ToxicTarget]:
        return list(self.flows.values())

    # -- enabled, disabled, stopped -------------------------------------------------------

    async def start(self) -> None:
        await self._bind()
        self.enabled = True

    async def set_enabled(self, enabled: bool) -> None:
        if enabled:
            await self.start()
        else:
            await self._bind()  # disabled still holds the address, and drops
            self.enabled = False
            self._close_flows()

    def stop(self) -> None:
        """Close every flow and the listening socket (deleted, changed, server stopped)."""
        self.enabled = False
        self._close_flows()
        sock, self.sock = self.sock, None
        if sock is not None:
            self.runtime.poller.forget(sock.fileno())
            sock.close()

    def _close_flows(self) -> None:
        for flow in list(self.flows.values()):
            flow.close("proxy")

    async def _bind(self) -> None:
        if self.sock is not None:
            return
        self.target = await self._resolve_upstream()
        address = normalise_listen(self.listen)
        host, port = parse_listen(address)
        sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                # Every client shares this socket: a burst from many flows at once must
                # not overflow it. The kernel caps the size at net.core.[rw]mem_max.
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise bind_failed(address, self.name, exc, self.transport) from None
        self.sock = sock
        bound = sock.getsockname()
        self.listen = format_address(bound[0], bound[1])
        self.runtime.poller.set_reader(sock.fileno(), self._on_readable)

    async def _resolve_upstream(self) -> tuple[str, int]:
        host, port = self.upstream_address
        if ip_literal(host) is not None:
            return host, port
        try:
            infos = await self.runtime.loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise bad_request(f"upstream: cannot resolve host {host!r}: {exc}") from None
        address = infos[0][4]
        return str(address[0]), port

    # -- datagrams from clients -------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            self._read()
        except Exception as exc:  # never let one datagram stop the proxy
            self.runtime.report(exc)

    def _read(self) -> None:
        sock = self.sock
        if sock is None:
            return
        recvfrom_into, view, flows = sock.recvfrom_into, self.runtime.buffer.view, self.flows
        now = time.monotonic()  # once per batch: idleness is measured in milliseconds
        for _ in range(READ_BATCH):
            try:
                count, address = recvfrom_into(view, RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error for an earlier send to a client: nothing to do
            if not self.enabled:
                self.dropped_while_disabled += 1
                continue
            flow = flows.get(address)
            if flow is None:
                flow = self._open_flow(address)
                if flow is None:
                    continue
            flow.last_active = now
            up = flow.up
            if up.head is up:
                up.forward(view[:count])  # no toxic: straight from the engine's buffer
            else:
                up.enter(bytes(view[:count]))

    def _open_flow(self, address: Address) -> Flow | None:
        assert self.target is not None
        seq = self.accepted
        self.accepted += 1
        record = self.log.opening_flow(format_address(address[0], address[1]))
        self.runtime.counters.connection_opened(self.name)
        try:
            flow = Flow(self, address, seq, record, self.target, family_of(self.target[0]))
        except OSError as exc:  # out of descriptors, mostly: this datagram is lost
            record.error = f"proxy could not open the upstream socket: {exc}"
            self._record_closed(record, "proxy", FLOW_CLOSE)
            return None
        self.flows[address] = flow
        self._apply_toxics(flow)
        return flow

    def flow_closed(self, flow: Flow, by: str) -> None:
        if self.flows.get(flow.client) is flow:
            del self.flows[flow.client]
        flow.record.freeze()
        self._record_closed(flow.record, by, FLOW_CLOSE)

    # -- toxics ----------------------------------------------------------------------------

    async def add_toxic(self, spec: ToxicSpec) -> None:
        if spec.type_name == "corrupt" and spec.attributes.get("body_only"):
            raise bad_request(
                "attributes.body_only: a datagram proxy has no stream framing; "
                "corrupt acts on whole datagrams"
            )
        await super().add_toxic(spec)
