"""A small typed client for any server that speaks the Toxiproxy v2 HTTP API.

chaosnet does not wrap toxiproxy-python (the client most users already have):
it keeps host and port in class-level globals (one server per process, which
breaks xdist workers and side-by-side backends), has no request timeouts,
lets 500 responses through unraised, cannot update a toxic, and drags in the
Python 2 shim ``future``. This client uses only the standard library, bounds
every request, raises a named error for every failure, and knows which
chaosnet extensions the server supports, so an extension sent to a real
Toxiproxy is refused here with a clear error instead of silently misbehaving.
toxiproxy-python still drives ``chaosnet serve`` unmodified; the conformance
suite proves it.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from chaosnet.address import Address as Address  # the old name, kept for one release
from chaosnet.errors import ChaosnetError
from chaosnet.proxy.toxics import TOXIPROXY_TYPES
from chaosnet.proxy.toxics.base import DEFAULT_STREAM as DEFAULT_STREAM
from chaosnet.proxy.toxics.base import EXTENSION_FIELDS

DEFAULT_TIMEOUT_S = 10.0
#: Optional toxic fields that only chaosnet understands.
EXTENSION_TOXIC_FIELDS = EXTENSION_FIELDS
#: Toxic types the real Toxiproxy v2.12 implements (from the toxics' declarations).
TOXIPROXY_TOXIC_TYPES = frozenset(TOXIPROXY_TYPES)
#: The extension feature name for ``GET /proxies/{name}/connections``.
CONNECTION_LOG = "connections"
#: The extension feature name for datagram proxies (``"transport": "udp"``).
DATAGRAM_PROXIES = "udp"
#: The extension feature names for a proxy's protocol and ``GET /proxies/{name}/messages``.
PROTOCOL = "protocol"
MESSAGE_LOG = "messages"


class ControlError(ChaosnetError):
    """The control server answered a request with an error."""

    def __init__(self, method: str, path: str, status: int, message: str, url: str) -> None:
        self.method, self.path, self.status, self.server_message = method, path, status, message
        super().__init__(f"{method} {url}{path} failed with HTTP {status}: {message}")


class NotFound(ControlError):
    """404: no such proxy or toxic."""


class AlreadyExists(ControlError):
    """409: a proxy or toxic of that name exists."""


class BackendUnreachable(ChaosnetError):
    """Nothing answers at the control URL (not started, crashed, or wrong address)."""


class UnsupportedByBackend(ChaosnetError):
    """A chaosnet extension was asked of a backend that does not implement it."""

    def __init__(self, feature: str, backend: str) -> None:
        self.feature, self.backend = feature, backend
        super().__init__(f"not supported by backend {backend}: {feature}")


@dataclass(frozen=True)
class ToxicInfo:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ToxicInfo:
        known = {"name", "type", "stream", "toxicity", "attributes"}
        return cls(
            name=str(body["name"]),
            type=str(body["type"]),
            stream=str(body.get("stream", DEFAULT_STREAM)),
            toxicity=float(body.get("toxicity", 1.0)),
            attributes=dict(body.get("attributes") or {}),
            extra={k: v for k, v in body.items() if k not in known},
        )


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[ToxicInfo]
    transport: str = "tcp"
    flow_timeout: int | None = None  # ms, datagram proxies only
    protocol: str | None = None
    protocol_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ProxyInfo:
        flow_timeout = body.get("flow_timeout")
        return cls(
            name=str(body["name"]),
            listen=str(body["listen"]),
            upstream=str(body["upstream"]),
            enabled=bool(body.get("enabled", True)),
            toxics=[ToxicInfo.from_json(t) for t in body.get("toxics") or []],
            transport=str(body.get("transport", "tcp")),
            flow_timeout=None if flow_timeout is None else int(flow_timeout),
            protocol=body.get("protocol"),
            protocol_options=dict(body.get("protocol_options") or {}),
        )

    @property
    def address(self) -> Address:
        return parse_address(self.listen)


@dataclass(frozen=True)
class ConnectionInfo:
    """One proxied connection (or datagram flow), as the embedded server's log reports it.

    The ``datagrams_*`` counts and ``toxic_counts`` (toxic name -> {"dropped",
    "duplicated", "reordered", "truncated", "corrupted"}) are a datagram flow's.
    """

    id: int
    client: str
    opened_at: float
    closed_at: float | None
    bytes_upstream: int
    bytes_downstream: int
    closed_by: str | None
    close_kind: str | None
    toxics: list[str]
    datagrams_upstream: int = 0
    datagrams_downstream: int = 0
    toxic_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    error: str | None = None  # why the proxy closed it, when that was an error
    messages_upstream: int = 0
    messages_downstream: int = 0
    desynchronized: bool = False
    desync: str | None = None  # which stream broke its protocol, and how

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ConnectionInfo:
        return cls(
            id=int(body["id"]),
            client=str(body["client"]),
            opened_at=float(body["opened_at"]),
            closed_at=None if body.get("closed_at") is None else float(body["closed_at"]),
            bytes_upstream=int(body.get("bytes_upstream", 0)),
            bytes_downstream=int(body.get("bytes_downstream", 0)),
            closed_by=body.get("closed_by"),
            close_kind=body.get("close_kind"),
            toxics=[str(t) for t in body.get("toxics") or []],
            datagrams_upstream=int(body.get("datagrams_upstream", 0)),
            datagrams_downstream=int(body.get("datagrams_downstream", 0)),
            toxic_counts={
                str(name): {str(k): int(v) for k, v in counts.items()}
                for name, counts in (body.get("toxic_counts") or {}).items()
            },
            error=body.get("error"),
            messages_upstream=int(body.get("messages_upstream", 0)),
            messages_downstream=int(body.get("messages_downstream", 0)),
            desynchronized=bool(body.get("desynchronized", False)),
            desync=body.get("desync"),
        )


@dataclass(frozen=True)
class ConnectionLogInfo:
    """A proxy's connection log as the control API reports it: counters and records."""

    opened: int
    open: int
    records: list[ConnectionInfo]


# The names the two classes above had before 0.2 (the engine's connection log in
# chaosnet.proxy.connlog has classes of those names); aliases for one release.
ConnectionRecord = ConnectionInfo
ConnectionLog = ConnectionLogInfo


@dataclass(frozen=True)
class MessageRecord:
    """One message on a proxy with a protocol (see ``chaosnet/proxy/messages.py``)."""

    connection: int
    stream: str  # "upstream": a request; "downstream": a reply
    index: int
    size: int
    at: float
    complete: bool
    summary: str
    toxics: list[str]
    interim: bool = False
    injected: bool = False
    forwarded: bool = True
    discarded: bool = False

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> MessageRecord:
        return cls(
            connection=int(body["connection"]),
            stream=str(body["stream"]),
            index=int(body["index"]),
            size=int(body["size"]),
            at=float(body["at"]),
            complete=bool(body["complete"]),
            summary=str(body["summary"]),
            toxics=[str(t) for t in body.get("toxics") or []],
            interim=bool(body.get("interim", False)),
            injected=bool(body.get("injected", False)),
            forwarded=bool(body.get("forwarded", True)),
            discarded=bool(body.get("discarded", False)),
        )

    def __str__(self) -> str:
        arrow = "->" if self.stream == "upstream" else "<-"
        flags = [name for name in ("injected", "discarded", "interim") if getattr(self, name)]
        if not self.forwarded:
            flags.append("not forwarded")
        if not self.complete:
            flags.append("incomplete")
        if self.toxics:
            flags.append("toxics: " + ", ".join(self.toxics))
        extra = f" ({'; '.join(flags)})" if flags else ""
        return f"#{self.connection} {arrow} {self.index} {self.summary} [{self.size} B]{extra}"


@dataclass(frozen=True)
class MessageLog:
    total: int  # every message the proxy has seen
    records: list[MessageRecord]  # the newest ones, oldest first

    def requests(self) -> list[MessageRecord]:
        return [r for r in self.records if r.stream == "upstream"]

    def replies(self) -> list[MessageRecord]:
        return [r for r in self.records if r.stream == "downstream"]


def parse_address(text: str) -> Address:
    """``"127.0.0.1:80"`` or ``"[::1]:80"`` → ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ChaosnetError(f"not a host:port address: {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class ControlClient:
    """Typed, bounded access to one Toxiproxy-compatible control server.

    ``backend`` names the server kind in error messages
    ("not supported by backend toxiproxy: truncate_frame").
    Safe to share between threads: each thread keeps its own keep-alive connection.
    """

    def __init__(self, url: str, *, backend: str = "url", timeout: float = DEFAULT_TIMEOUT_S):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ChaosnetError(f"control URL must look like http://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self.backend = backend
        self.timeout = timeout
        self._host, self._port = parts.hostname, parts.port or 80
        self._local = threading.local()
        self._extensions: frozenset[str] | None = None

    # -- capabilities -------------------------------------------------------

    def version(self) -> dict[str, Any]:
        body = self._request("GET", "/version")
        return body if isinstance(body, dict) else {"version": str(body)}

    def chaosnet_info(self) -> dict[str, Any] | None:
        """chaosnet's ``GET /chaosnet`` (version, extensions, seed); None from Toxiproxy (404)."""
        try:
            body = self._request("GET", "/chaosnet")
        except NotFound:
            return None
        return body if isinstance(body, dict) else None

    @property
    def extensions(self) -> frozenset[str]:
        """Extension features the server announces in ``GET /chaosnet`` (empty for Toxiproxy)."""
        if self._extensions is None:
            info = self.chaosnet_info() or {}
            self._extensions = frozenset(info.get("extensions") or ())
        return self._extensions

    @property
    def is_chaosnet(self) -> bool:
        return bool(self.extensions)

    def require(self, feature: str) -> None:
        if feature not in self.extensions:
            raise UnsupportedByBackend(feature, self.backend)

    # -- proxies --------------------------------------------------------------

    def proxies(self) -> dict[str, ProxyInfo]:
        body = self._request("GET", "/proxies")
        return {name: ProxyInfo.from_json(p) for name, p in body.items()}

    def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(self._request("GET", f"/proxies/{_seg(name)}"))

    def create_proxy(
        self,
        name: str,
        upstream: str,
        *,
        listen: str = "127.0.0.1:0",
        enabled: bool = True,
        transport: str = "tcp",
        flow_timeout: int | None = None,
        protocol: str | None = None,
        protocol_options: Mapping[str, Any] | None = None,
    ) -> ProxyInfo:
        """Create a proxy; ``transport="udp"`` (a datagram proxy, with ``flow_timeout``
        in ms) is a chaosnet extension, refused by name on any other backend."""
        body: dict[str, Any] = {
            "name": name,
            "listen": listen,
            "upstream": upstream,
            "enabled": enabled,
        }
        if transport != "tcp":
            if DATAGRAM_PROXIES not in self.extensions:
                raise UnsupportedByBackend(
                    f"transport {transport!r} (datagram proxies are a chaosnet extension)",
                    self.backend,
                )
            body["transport"] = transport
        if flow_timeout is not None:
            body["flow_timeout"] = flow_timeout
        if protocol is not None or protocol_options:
            self.require(PROTOCOL)
            body["protocol"] = protocol
            if protocol_options:
                body["protocol_options"] = dict(protocol_options)
        return ProxyInfo.from_json(self._request("POST", "/proxies", body))

    def update_proxy(self, name: str, **fields: Any) -> ProxyInfo:
        if "protocol" in fields or "protocol_options" in fields:
            self.require(PROTOCOL)
        return ProxyInfo.from_json(self._request("POST", f"/proxies/{_seg(name)}", fields))

    def delete_proxy(self, name: str) -> None:
        self._request("DELETE", f"/proxies/{_seg(name)}")

    def reset(self) -> None:
        self._request("POST", "/reset")

    def populate(self, proxies: Sequence[Mapping[str, Any]]) -> list[ProxyInfo]:
        body = self._request("POST", "/populate", list(proxies))
        return [ProxyInfo.from_json(p) for p in body["proxies"]]

    # -- toxics ---------------------------------------------------------------

    def toxics(self, proxy: str) -> list[ToxicInfo]:
        return [ToxicInfo.from_json(t) for t in self._request("GET", _toxics_path(proxy))]

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        stream: str = DEFAULT_STREAM,
        toxicity: float = 1.0,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        **extension_fields: Any,
    ) -> ToxicInfo:
        self._check_toxic_support(type, extension_fields)
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        body.update({k: v for k, v in extension_fields.items() if v is not None})
        return ToxicInfo.from_json(self._request("POST", _toxics_path(proxy), body))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> ToxicInfo:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        path = f"{_toxics_path(proxy)}/{_seg(name)}"
        return ToxicInfo.from_json(self._request("POST", path, body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._request("DELETE", f"{_toxics_path(proxy)}/{_seg(name)}")

    # -- extensions -----------------------------------------------------------

    def connections(
        self, proxy: str, *, wait_open: int | None = None, timeout: float = 0.0
    ) -> ConnectionLogInfo:
        """The connection log; with ``wait_open`` the server first waits (up to
        ``timeout`` s, an event, not a poll) until that many connections are open."""
        self.require(CONNECTION_LOG)
        path = f"/proxies/{_seg(proxy)}/connections"
        if wait_open is not None:
            wait_ms = int(min(timeout, max(0.0, self.timeout - 1.0)) * 1000)
            path += f"?wait_open={wait_open}&timeout_ms={wait_ms}"
        body = self._request("GET", path)
        return ConnectionLogInfo(
            opened=int(body["opened"]),
            open=int(body["open"]),
            records=[ConnectionInfo.from_json(r) for r in body["connections"]],
        )

    def messages(self, proxy: str, *, connection: int | None = None) -> MessageLog:
        """The message log of a proxy with a protocol (newest records, oldest first)."""
        self.require(MESSAGE_LOG)
        path = f"/proxies/{_seg(proxy)}/messages"
        if connection is not None:
            path += f"?connection={int(connection)}"
        body = self._request("GET", path)
        return MessageLog(
            total=int(body["total"]),
            records=[MessageRecord.from_json(r) for r in body["messages"]],
        )

    def _check_toxic_support(self, type: str, extension_fields: Mapping[str, Any]) -> None:
        unknown = set(extension_fields) - set(EXTENSION_TOXIC_FIELDS)
        if unknown:
            raise ChaosnetError(f"unknown toxic field(s): {', '.join(sorted(unknown))}")
        if type not in TOXIPROXY_TOXIC_TYPES and not self.is_chaosnet:
            raise UnsupportedByBackend(type, self.backend)
        for field_name, value in extension_fields.items():
            if value is not None:
                self.require(field_name)

    # -- transport ------------------------------------------------------------

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "chaosnet"}
        status, raw = self._send(method, path, payload, headers)
        text = raw.decode("utf-8", "replace")
        if status >= 400:
            raise _error_for(method, path, status, _error_message(text), self.url)
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ControlError(
                method, path, status, f"invalid JSON: {text[:200]!r}", self.url
            ) from exc

    def _send(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        # A kept-alive connection may have been closed by the server since the
        # last request; one fresh retry is safe for these idempotent-enough calls
        # only when the failure happened before any response was read.
        for fresh in (False, True):
            conn = self._connection(fresh)
            try:
                conn.request(method, path, body=payload, headers=headers)
                # Closed here, not by its finalizer: a Ctrl-C or SIGTERM whose handler runs
                # inside a finalizer is silently lost, and the run would ignore it.
                with conn.getresponse() as response:
                    return response.status, response.read()
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                conn.close()
                if fresh:
                    raise self._unreachable(method, path) from None
            except TimeoutError:
                conn.close()
                raise BackendUnreachable(
                    f"control server {self.url} did not answer {method} {path} "
                    f"within {self.timeout:g}s"
                ) from None
            except OSError as exc:
                conn.close()
                raise self._unreachable(method, path, exc) from None
            except BaseException:  # Ctrl-C mid-request: the next request needs a new connection
                conn.close()
                raise
        raise AssertionError("unreachable")

    def _unreachable(
        self, method: str, path: str, exc: OSError | None = None
    ) -> BackendUnreachable:
        why = f": {exc.strerror or exc}" if exc is not None else ": connection closed"
        return BackendUnreachable(
            f"control server {self.url} ({self.backend}) is not reachable for {method} {path}{why}"
        )

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn


def _seg(name: str) -> str:
    return quote(name, safe="")


def _toxics_path(proxy: str) -> str:
    return f"/proxies/{_seg(proxy)}/toxics"


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:500] or "(empty body)"
    if isinstance(body, dict) and "error" in body:
        detail = body.get("detail")
        return f"{body['error']}: {detail}" if detail else str(body["error"])
    return text.strip()[:500]


def _error_for(method: str, path: str, status: int, message: str, url: str) -> ControlError:
    kind = {404: NotFound, 409: AlreadyExists}.get(status, ControlError)
    return kind(method, path, status, message, url)
