"""What a test or a scenario holds: proxies and toxics it created, removed when it ends.

``Chaos`` tracks everything it creates on one control server and ``close()``
removes it all, so a failing or timed-out test leaves nothing behind on a
shared server. ``ProxyHandle`` and ``ToxicHandle`` are thin, typed handles over
:mod:`chaosnet.control`; they hold names, never server state, so they stay
valid across an API ``/reset``.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

from chaosnet.address import Address, format_address
from chaosnet.closing import Closing
from chaosnet.control import (
    DEFAULT_STREAM,
    EXTENSION_TOXIC_FIELDS,
    ConnectionLogInfo,
    ControlClient,
    MessageLog,
    NotFound,
    ProxyInfo,
    ToxicInfo,
    parse_address,
)
from chaosnet.errors import ChaosnetError
from chaosnet.seeds import derive_seed


class HasAddress(Protocol):
    @property
    def address(self) -> Address: ...


Upstream = Address | str | HasAddress


def upstream_text(upstream: Upstream) -> str:
    """Accept ``(host, port)``, ``"host:port"`` or anything with an ``.address``."""
    if isinstance(upstream, str):
        parse_address(upstream)  # validates
        return upstream
    if isinstance(upstream, tuple):
        return format_address(*upstream)
    return format_address(*upstream.address)


@dataclass(frozen=True)
class ProxyChange:
    """A fault this controller put on a proxy or lifted, and when (Unix times)."""

    started: float
    done: float
    action: str  # "add_toxic", "update_toxic", "remove_toxic", "disable", "enable"
    toxic: str = ""  # its name, for the toxic actions
    detail: str = ""  # "latency latency=300" ...


class ToxicHandle:
    """A toxic on a proxy; as a context manager it is removed on exit."""

    def __init__(self, proxy: ProxyHandle, info: ToxicInfo) -> None:
        self.proxy = proxy
        self.name = info.name
        self.type = info.type
        self.stream = info.stream
        self.info = info

    def update(self, toxicity: float | None = None, **attributes: Any) -> ToxicInfo:
        changed = {**attributes, **({} if toxicity is None else {"toxicity": toxicity})}
        with self.proxy.recording("update_toxic", self.name, _attributes(changed)):
            self.info = self.proxy.client.update_toxic(
                self.proxy.name, self.name, attributes=attributes or None, toxicity=toxicity
            )
        return self.info

    def remove(self) -> None:
        """Remove the toxic; removing one that is already gone is not an error."""
        with suppress(NotFound), self.proxy.recording("remove_toxic", self.name):
            self.proxy.client.remove_toxic(self.proxy.name, self.name)

    def __enter__(self) -> ToxicHandle:
        return self

    def __exit__(self, *_: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<toxic {self.name} ({self.type}, {self.stream}) on {self.proxy.name}>"


class ProxyHandle:
    """One proxy on the control server: where clients connect instead of the real server."""

    def __init__(self, client: ControlClient, info: ProxyInfo, *, seed: int | None = None) -> None:
        self.client = client
        self.seed = seed
        self._toxic_count = itertools.count(1)
        self.name = info.name
        self.upstream = info.upstream
        self.listen = info.listen
        self.address: Address = info.address
        self.protocol = info.protocol  # None: plain bytes
        #: What was done to it through this handle, oldest first (the picture of a test).
        self.history: list[ProxyChange] = []
        self.transport = info.transport

    @contextmanager
    def recording(self, action: str, toxic: str = "", detail: str = "") -> Iterator[None]:
        """Add ``action`` to the history once it succeeded, with when it started and ended."""
        started = time.time()
        yield
        self.history.append(ProxyChange(started, time.time(), action, toxic, detail))

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    def toxic(
        self,
        type: str,
        stream: str = DEFAULT_STREAM,
        toxicity: float = 1.0,
        name: str | None = None,
        **attributes: Any,
    ) -> ToxicHandle:
        """Add a toxic now. ``skip_connections``, ``max_connections``, ``seed``,
        ``skip_messages``, ``max_messages`` and ``message_scope`` are chaosnet's per-toxic
        fields; every other keyword is a toxic attribute."""
        fields = {k: attributes.pop(k) for k in EXTENSION_TOXIC_FIELDS if k in attributes}
        number = next(self._toxic_count)
        if "seed" not in fields and self.seed is not None and "seed" in self.client.extensions:
            fields["seed"] = derive_seed(self.seed, f"toxic{number}")
        started = time.time()
        info = self.client.add_toxic(
            self.name,
            type,
            stream=stream,
            toxicity=toxicity,
            name=name,
            attributes=attributes,
            **fields,
        )
        detail = f"{type} {_attributes({**attributes, 'toxicity': toxicity})}"
        self.history.append(ProxyChange(started, time.time(), "add_toxic", info.name, detail))
        return ToxicHandle(self, info)

    def toxics(self) -> list[ToxicInfo]:
        return self.client.toxics(self.name)

    def info(self) -> ProxyInfo:
        return self.client.get_proxy(self.name)

    def disable(self) -> None:
        """Stop listening and drop every open connection (Toxiproxy's ``enabled: false``)."""
        with self.recording("disable"):
            self.client.update_proxy(self.name, enabled=False)

    def enable(self) -> None:
        with self.recording("enable"):
            info = self.client.update_proxy(self.name, enabled=True)
        self.listen, self.address = info.listen, info.address

    @contextmanager
    def down(self) -> Iterator[ProxyHandle]:
        self.disable()
        try:
            yield self
        finally:
            self.enable()

    @property
    def connections(self) -> ConnectionLogInfo:
        """A fresh snapshot of the connection log (a chaosnet extension)."""
        return self.client.connections(self.name)

    @property
    def messages(self) -> MessageLog:
        """A fresh snapshot of the message log (a proxy with a protocol; chaosnet only)."""
        return self.client.messages(self.name)

    def wait_connections(self, *, open: int = 0, timeout: float = 2.0) -> ConnectionLogInfo:
        """Wait until exactly ``open`` connections are open; the proxy notices a
        client's close a moment after the client returns from ``close()``. The
        server waits on the event itself (one request, no polling)."""
        log = self.client.connections(self.name, wait_open=open, timeout=timeout)
        if log.open != open:
            raise ChaosnetError(
                f"proxy {self.name}: {log.open} connection(s) open after {timeout:g}s, "
                f"expected {open}"
            )
        return log

    def delete(self) -> None:
        with suppress(NotFound):
            self.client.delete_proxy(self.name)

    def __repr__(self) -> str:
        return f"<proxy {self.name} {self.listen} -> {self.upstream}>"


def _attributes(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


#: The name ``ProxyHandle`` had before 0.2 (it collided with the engine's ``Proxy``); an
#: alias for one release.
Proxy = ProxyHandle


class Chaos(Closing):
    """The controller for one test or scenario run; ``close()`` removes what it made.

    With a ``seed``, every toxic it adds on a chaosnet backend gets a seed derived
    from it (unless given one), so the run's faults replay exactly.
    """

    def __init__(
        self, client: ControlClient, *, name_prefix: str = "", seed: int | None = None
    ) -> None:
        self.client = client
        self.name_prefix = _UNSAFE.sub("-", name_prefix)
        self.seed = seed
        self._proxies: list[ProxyHandle] = []
        self._counter = itertools.count(1)

    @property
    def proxies(self) -> list[ProxyHandle]:
        return list(self._proxies)

    def proxy(
        self,
        upstream: Upstream,
        name: str | None = None,
        *,
        listen: str = "127.0.0.1:0",
        transport: str = "tcp",
        flow_timeout: int | None = None,
        protocol: str | None = None,
        protocol_options: Mapping[str, Any] | None = None,
    ) -> ProxyHandle:
        """Create a proxy to ``upstream``, listening on a fresh loopback port.

        ``transport="udp"`` makes a datagram proxy (chaosnet backends only), whose
        idle flows end after ``flow_timeout`` ms (default 30,000).
        ``protocol`` (``http1``, ``resp``, ``line``, ``length_prefix``; chaosnet only)
        makes it frame messages: message toxics, message targeting, ``proxy.messages``.
        """
        short_name = _UNSAFE.sub("-", name) if name else self._next_name()
        info = self.client.create_proxy(
            self.name_prefix + short_name,
            upstream_text(upstream),
            listen=listen,
            transport=transport,
            flow_timeout=flow_timeout,
            protocol=protocol,
            protocol_options=protocol_options,
        )
        seed = None if self.seed is None else derive_seed(self.seed, short_name)
        proxy = ProxyHandle(self.client, info, seed=seed)
        self._proxies.append(proxy)
        return proxy

    def _next_name(self) -> str:
        return f"proxy{next(self._counter)}"

    def close(self) -> None:
        """Delete every proxy (and so every toxic) this controller created.

        Every deletion is attempted even if one fails; the first failure is
        re-raised afterwards so teardown problems are not silent.
        """
        errors: list[Exception] = []
        while self._proxies:
            proxy = self._proxies.pop()
            try:
                proxy.delete()
            except ChaosnetError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
