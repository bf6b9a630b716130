"""Which connections a toxic applies to: the proxy's policy, from a spec's targeting fields.

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

from chaosnet.proxy import seeding
from chaosnet.proxy.toxics.base import ToxicSpec


def targets(spec: ToxicSpec, seq: int) -> bool:
    """Whether connection ``seq`` (the proxy's accept count) is in the spec's target range."""
    if spec.skip_connections <= 0 and spec.max_connections is None:
        return True
    k = spec.index_of(seq)
    if k < spec.skip_connections:
        return False
    return spec.max_connections is None or k < spec.skip_connections + spec.max_connections


def applies(spec: ToxicSpec, seq: int, server_seed: int, proxy: str) -> bool:
    """Targeted, and the toxicity draw for this connection says yes."""
    if not targets(spec, seq) or spec.toxicity <= 0:
        return False
    if spec.toxicity >= 1:
        return True
    draw = seeding.uniform(
        spec.effective_seed(server_seed), proxy, spec.name, spec.index_of(seq), "toxicity"
    )
    return draw < spec.toxicity
