"""A toxic as the API sees it: name, type, stream, toxicity, attributes, targeting, seed.

One :class:`ToxicSpec` per toxic on a proxy; the per-connection state lives in
the :class:`~chaosnet.proxy.toxics.base.Toxic` instances created from it.

Targeting (chaosnet extension). Connections are numbered ``k = 0, 1, 2 ...`` in
accept order from the moment the toxic was added. With ``skip_connections`` or
``max_connections`` set, the toxic applies to ``k`` in
``[skip, skip + max)`` only, so connections already open when it was added are
never targeted. Without them it applies to every connection, open ones included
(as in Toxiproxy).

Toxicity is drawn once per (toxic, connection) as ``u`` in [0, 1); the toxic
applies while ``u < toxicity``. Updating the toxicity re-evaluates live
connections against the same ``u``. ``u`` is derived from the seed (the toxic's
own ``seed`` or the server's), the proxy and toxic names and ``k``.
"""

from __future__ import annotations

from typing import Any

from chaosnet.proxy import seeding
from chaosnet.proxy.toxics.base import Toxic


class ToxicSpec:
    __slots__ = (
        "attributes",
        "cls",
        "first_seq",
        "max_connections",
        "name",
        "seed",
        "skip_connections",
        "stream",
        "toxicity",
        "type_name",
    )

    def __init__(
        self,
        *,
        name: str,
        cls: type[Toxic],
        stream: str,
        toxicity: float,
        attributes: dict[str, object],
        skip_connections: int = 0,
        max_connections: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.cls = cls
        self.type_name = cls.type_name
        self.stream = stream
        self.toxicity = toxicity
        self.attributes = attributes
        self.skip_connections = skip_connections
        self.max_connections = max_connections
        self.seed = seed
        self.first_seq = 0  # set by the proxy: its accept count when the toxic was added

    @property
    def targeted(self) -> bool:
        return self.skip_connections > 0 or self.max_connections is not None

    def index_of(self, seq: int) -> int:
        """``k``: the connection's number counted from this toxic's creation."""
        return seq - self.first_seq

    def effective_seed(self, server_seed: int) -> int:
        return server_seed if self.seed is None else self.seed

    def targets(self, seq: int) -> bool:
        if not self.targeted:
            return True
        k = self.index_of(seq)
        if k < self.skip_connections:
            return False
        return self.max_connections is None or k < self.skip_connections + self.max_connections

    def applies(self, seq: int, server_seed: int, proxy: str) -> bool:
        """Targeted, and the toxicity draw for this connection says yes."""
        if not self.targets(seq) or self.toxicity <= 0:
            return False
        if self.toxicity >= 1:
            return True
        draw = seeding.uniform(
            self.effective_seed(server_seed), proxy, self.name, self.index_of(seq), "toxicity"
        )
        return draw < self.toxicity

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's fields in its order; extension fields only when set."""
        body: dict[str, Any] = {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type_name,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }
        if self.skip_connections:
            body["skip_connections"] = self.skip_connections
        if self.max_connections is not None:
            body["max_connections"] = self.max_connections
        if self.seed is not None:
            body["seed"] = self.seed
        return body
