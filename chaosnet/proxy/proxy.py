"""A proxy: its listen/upstream configuration, its toxics, its listener and its links.

Semantics follow Toxiproxy 2.12: a new proxy is enabled unless asked otherwise;
disabling closes the listener and every connection; enabling listens again on the
same (resolved) address; changing ``listen`` or ``upstream`` restarts the proxy.
``listen`` is shown as given until the proxy listens, then as the bound address
(``localhost:0`` becomes ``127.0.0.1:41234``); an address that cannot be bound is
Toxiproxy's 500 ``listen tcp ADDR: bind: REASON``.
Toxics are kept in the order they were added, and a new toxic goes at the end of
its direction's chain on every live connection it applies to.

``protocol`` (chaosnet extension) makes the proxy frame messages (see
``messages.py``). Changing it applies to connections accepted afterwards: an
open connection keeps the framing it started with, and message toxics never act
on a connection that has none.
"""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from chaosnet.proxy.addresses import (
    LOOPBACK,
    format_address,
    parse_listen,
    parse_upstream,
    resolve_listen_host,
)
from chaosnet.proxy.chain import ChainPair
from chaosnet.proxy.connlog import ConnectionLog, ConnectionRecord
from chaosnet.proxy.errors import ApiError, bad_request, toxic_exists, toxic_not_found
from chaosnet.proxy.framers import Protocol as WireProtocol
from chaosnet.proxy.link import Link, Route, reset_close, tune
from chaosnet.proxy.listener import Listener, Mode, StallFailed
from chaosnet.proxy.messages import MessageLog, MessageSession
from chaosnet.proxy.targeting import applies
from chaosnet.proxy.toxics.base import STREAMS, FieldError, Toxic, ToxicSpec, Transport

if TYPE_CHECKING:
    from chaosnet.proxy.runtime import Runtime

INTERNAL_ERROR = 500
FD_HEADROOM = 32  # descriptors a proxy never takes: the API's, and upstream sockets' own


#: What toxic management acts on: a connection (a link) or a datagram flow.
ToxicTarget = ChainPair[Any]


class Proxy:
    def __init__(self, runtime: Runtime, name: str, listen: str, upstream: str) -> None:
        self.runtime = runtime
        self.name = name
        normalise_listen(listen)  # a malformed or unresolvable address is a 400 now
        self.listen = listen or format_address(LOOPBACK, 0)
        self.upstream = upstream
        self.upstream_address = parse_upstream(upstream)
        # What a toxic must fit (``Toxic.misfit``): TCP byte streams (a datagram proxy: udp).
        self.transport: Transport = "tcp"
        self.enabled = False
        self.toxics: dict[str, ToxicSpec] = {}
        self.links: set[Link] = set()
        self.log = ConnectionLog(runtime.history)
        self.protocol: WireProtocol | None = None
        self.messages = MessageLog(runtime.history)
        self.accepted = 0
        self.listener: Listener | None = None

    # -- JSON ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics_json(),
        }
        if self.protocol is not None:
            body.update(self.protocol.to_json())
        return body

    def toxics_json(self) -> list[dict[str, Any]]:
        """Upstream toxics first, then downstream, each in the order added (as Toxiproxy)."""
        return [
            spec.to_json()
            for stream in STREAMS
            for spec in self.toxics.values()
            if spec.stream == stream
        ]

    # -- start / stop / update ------------------------------------------------------------------

    async def start(self) -> None:
        if self.enabled:
            return
        address = normalise_listen(self.listen)
        host, port = parse_listen(address)
        listener = Listener(self.runtime.loop, self.on_accept)
        try:
            bound = listener.open(host, port)
        except OSError as exc:
            raise bind_failed(address, self.name, exc) from None
        self.listener = listener
        self.listen = format_address(*bound)
        self.enabled = True
        await self._sync_listener()

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self.enabled = False
        for link in list(self.links):
            link.close("proxy", "fin")

    async def update(
        self,
        listen: str | None,
        upstream: str | None,
        enabled: bool | None,
        protocol: tuple[WireProtocol | None] | None = None,
    ) -> None:
        """Change what is given; ``protocol`` is ``(new,)`` to change it (new connections only)."""
        if protocol is not None:
            self.set_protocol(protocol[0])
        new_listen = self.listen if listen is None else listen
        new_upstream = self.upstream if upstream is None else upstream
        new_address = parse_upstream(new_upstream)
        if self.differs(new_listen, new_upstream, self.protocol):  # a new protocol: no restart
            was_enabled = self.enabled
            self.stop()
            self.listen, self.upstream, self.upstream_address = (
                new_listen,
                new_upstream,
                new_address,
            )
            await self.set_enabled(was_enabled if enabled is None else enabled)
        elif enabled is not None:
            await self.set_enabled(enabled)

    async def set_enabled(self, enabled: bool) -> None:
        if enabled:
            await self.start()
        else:
            self.stop()

    def differs(self, listen: str, upstream: str, protocol: WireProtocol | None = None) -> bool:
        changed = normalise_listen(listen) != normalise_listen(self.listen)
        return changed or upstream != self.upstream or protocol != self.protocol

    def set_protocol(self, protocol: WireProtocol | None) -> None:
        for spec in self.toxics.values():
            self.check_toxic(spec, protocol)
        self.protocol = protocol
        for spec in self.toxics.values():
            spec.framed = self._framed(spec)

    # -- connections -----------------------------------------------------------------------------

    def on_accept(self, sock: socket.socket, address: tuple[str, int]) -> None:
        seq = self.accepted
        self.accepted += 1
        record = self.log.opening(format_address(*address))
        self.runtime.counters.connection_opened(self.name)
        link: Link | None = None
        if _descriptors_short(sock):
            record.error = (
                f"refused: the proxy is out of file descriptors ({sock.fileno() + 1} of "
                f"{_descriptor_limit()} in use; {FD_HEADROOM} are kept for the control API)"
            )
            self._refuse(sock, None, record)
            return
        try:
            tune(sock)
            if self._reset_on_accept(sock, seq, record.toxics):
                self._record_closed(record, f"toxic {record.toxics[-1]}", "rst")
            else:
                route = Route(self.name, self.upstream, self.upstream_address)
                session = None
                if self.protocol is not None:
                    session = MessageSession(self.protocol, record, self.messages)
                link = Link(self.runtime, route, sock, seq, record, self.link_closed, session)
                self.links.add(link)
                self._apply_toxics(link)
                link.connect()
        except OSError as exc:  # out of descriptors, mostly: only this client suffers
            record.error = f"proxy could not open the upstream socket: {exc}"
            self._refuse(sock, link, record)
        except Exception as exc:  # a bug: this connection is reset, the others go on
            record.error = f"internal error: {exc!r}"
            self.runtime.report(exc)
            self._refuse(sock, link, record)
        if self._listen_phase_toxics():
            self.runtime.loop.create_task(self._sync_listener_reporting())

    def _refuse(self, sock: socket.socket, link: Link | None, record: ConnectionRecord) -> None:
        if link is not None:
            link.close("proxy", "rst")
        else:
            reset_close(sock)
            self._record_closed(record, "proxy", "rst")

    def _reset_on_accept(self, sock: socket.socket, seq: int, applied: list[str]) -> bool:
        for spec in self.toxics.values():
            if spec.cls.phase == "accept" and self._applies(spec, seq):
                applied.append(spec.name)
                self.runtime.counters.toxic_applied(self.name, spec.type_name)
                reset_close(sock)
                return True
        return False

    def targets(self) -> Iterable[ToxicTarget]:
        """The live connections toxics apply to (a snapshot)."""
        return list(self.links)

    def _apply_toxics(self, link: ToxicTarget) -> None:
        counts: dict[str, int] = dict.fromkeys(STREAMS, 0)
        for spec in self.toxics.values():
            if spec.cls.phase == "stream" and self._applies_to_link(spec, link):
                link.apply(spec, counts[spec.stream])
                counts[spec.stream] += 1

    def _applies(self, spec: ToxicSpec, seq: int) -> bool:
        return applies(spec, seq, self.runtime.seed, self.name)

    def link_closed(self, link: Link, by: str, kind: str) -> None:
        self.links.discard(link)
        self.runtime.counters.link_finished(self, (link.up, link.down))
        self._record_closed(link.record, by, kind)

    def _record_closed(self, record: ConnectionRecord, by: str, kind: str) -> None:
        if record.closed_at is not None:
            return
        self.log.closed(record, by, kind)
        # the first close wins (the record may already name who closed first)
        self.runtime.counters.connection_closed(
            self.name, record.closed_by or by, record.close_kind or kind
        )

    # -- toxics ------------------------------------------------------------

    def get_toxic(self, name: str) -> ToxicSpec:
        spec = self.toxics.get(name)
        if spec is None:
            raise toxic_not_found(name)
        return spec

    def check_fits(self, cls: type[Toxic]) -> None:
        """A 400 naming the type when a toxic cannot go on this proxy (``Toxic.misfit``)."""
        protocol = self.protocol.name if self.protocol is not None else None
        misfit = cls.misfit(self.transport, protocol)
        if misfit is not None:
            raise bad_request(f"type: {misfit} (proxy {self.name})")

    def check_toxic(self, spec: ToxicSpec, protocol: WireProtocol | None) -> None:
        """A 400 for a toxic that does not fit the proxy (its transport, its protocol)."""
        cls = spec.cls
        misfit = cls.misfit(self.transport, protocol.name if protocol is not None else None)
        if misfit is not None:
            raise bad_request(f"type: {misfit} (proxy {self.name})")
        if protocol is None:
            targeting = (
                ("skip_messages", spec.skip_messages),
                ("max_messages", spec.max_messages is not None),
                ("message_scope", spec.message_scope != "connection"),
            )
            field = next((name for name, given in targeting if given), None)
            if field is not None:
                raise bad_request(
                    f"{field}: toxic {spec.name} needs a proxy with a protocol, "
                    f"and proxy {self.name} has none"
                )
            return
        try:
            cls.check_protocol(protocol, spec.attributes)
        except FieldError as exc:
            raise bad_request(f"{exc} (protocol {protocol.name})") from None

    def _framed(self, spec: ToxicSpec) -> bool:
        return self.protocol is not None and (
            spec.message_targeted or spec.cls.uses_messages(spec.attributes)
        )

    def _applies_to_link(self, spec: ToxicSpec, link: ToxicTarget) -> bool:
        # A gated toxic needs framing, which a connection opened without a protocol lacks
        # (and a datagram flow never has).
        if spec.framed and getattr(link, "messages", None) is None:
            return False
        return self._applies(spec, link.seq)

    async def add_toxic(self, spec: ToxicSpec) -> None:
        if spec.name in self.toxics:
            raise toxic_exists(spec.name)
        self.check_toxic(spec, self.protocol)
        spec.framed = self._framed(spec)
        spec.first_seq = self.accepted
        self.toxics[spec.name] = spec
        if spec.cls.phase == "stream":
            for link in self.targets():
                if self._applies_to_link(spec, link):
                    index = len(link.direction(spec.stream).stages)
                    link.guarded(partial(link.apply, spec, index))
        elif spec.cls.phase == "listen":
            await self._sync_listener_or_undo(spec)

    async def toxic_changed(self, spec: ToxicSpec) -> None:
        """Re-apply an updated toxic: live connections see the new values at once."""
        framed = self._framed(spec)
        if framed != spec.framed:  # the stage changes kind: rebuild it on every connection
            for target in self.targets():
                if spec.name in target.toxics:
                    target.unapply(spec)
            spec.framed = framed
        if spec.cls.phase == "stream":
            for link in self.targets():  # a toxic failing on one link resets that link only
                link.guarded(partial(self._reconcile, link, spec))
        elif spec.cls.phase == "listen":
            await self._sync_listener()

    def _reconcile(self, link: ToxicTarget, spec: ToxicSpec) -> None:
        wanted = self._applies_to_link(spec, link)
        if wanted and spec.name not in link.toxics:
            link.apply(spec, self._chain_position(link, spec))
        elif not wanted and spec.name in link.toxics:
            link.unapply(spec)
        elif wanted:
            link.update(spec)

    def _chain_position(self, link: ToxicTarget, spec: ToxicSpec) -> int:
        order = list(self.toxics)
        rank = order.index(spec.name)
        stages = link.direction(spec.stream).stages
        return sum(1 for stage in stages if order.index(stage.spec.name) < rank)

    async def remove_toxic(self, name: str) -> None:
        spec = self.get_toxic(name)
        del self.toxics[name]
        if spec.cls.phase == "stream":
            for link in self.targets():
                if name in link.toxics:
                    link.unapply(spec)
        elif spec.cls.phase == "listen":
            await self._sync_listener()

    async def reset_toxics(self) -> None:
        for name in list(self.toxics):
            await self.remove_toxic(name)

    # -- connect-phase toxics --------------------------------------------------

    def _listen_phase_toxics(self) -> list[ToxicSpec]:
        return [spec for spec in self.toxics.values() if spec.cls.phase == "listen"]

    def _desired_mode(self) -> Mode:
        active = {
            spec.cls.listener_mode
            for spec in self._listen_phase_toxics()
            if self.accepted - spec.first_seq >= spec.skip_connections
            and self._applies(spec, spec.first_seq + spec.skip_connections)
        }
        if "refuse" in active:
            return "refuse"
        return "stall" if "stall" in active else "accept"

    async def _sync_listener(self) -> None:
        listener = self.listener
        if listener is None:
            return
        mode = self._desired_mode()
        if mode == listener.mode:
            return
        try:
            listener.set_mode(mode)
        except OSError as exc:
            raise ApiError(
                INTERNAL_ERROR, f"proxy {self.name}: cannot listen again on {self.listen}: {exc}"
            ) from None
        if mode == "stall":
            await listener.wait_stalled()

    async def _sync_listener_or_undo(self, spec: ToxicSpec) -> None:
        try:
            await self._sync_listener()
        except StallFailed as exc:
            del self.toxics[spec.name]
            await self._sync_listener()
            raise ApiError(INTERNAL_ERROR, f"{spec.type_name}: {exc}") from None

    async def _sync_listener_reporting(self) -> None:
        try:
            await self._sync_listener()
        except Exception as exc:
            self.runtime.report(exc)


def bind_failed(address: str, proxy: str, exc: OSError, transport: str = "tcp") -> ApiError:
    """Toxiproxy's text (Go's ``net.Listen`` error) for an address that cannot be bound."""
    reason = exc.strerror or str(exc)
    return ApiError(
        INTERNAL_ERROR,
        f"listen {transport} {address}: bind: {reason[:1].lower()}{reason[1:]}",
        f"proxy {proxy!r} cannot listen on {address}",
    )


def normalise_listen(listen: str) -> str:
    """``listen`` as it will be shown: loopback for an empty host, names resolved."""
    host, port = parse_listen(listen)
    return format_address(resolve_listen_host(host), port)


def _descriptor_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _descriptors_short(sock: socket.socket) -> bool:
    """Fewer than ``FD_HEADROOM`` descriptors are left after ``sock``.

    The kernel hands out the lowest free descriptor, so a new socket numbered near
    the limit means nearly all below it are in use. Refusing (RST, logged) then keeps
    the descriptors the control API and the upstream sockets need: the API keeps
    answering, and a client is told at once instead of waiting in the backlog.
    """
    limit = _descriptor_limit()
    return limit != resource.RLIM_INFINITY and sock.fileno() >= limit - FD_HEADROOM
