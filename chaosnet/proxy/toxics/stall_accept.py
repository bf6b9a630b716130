"""``stall_accept`` (chaosnet): new ``connect()`` calls hang until the client's own timeout.

Open connections keep working. The proxy keeps its accept queue full so Linux
drops new SYNs (see ``listener.py`` for how, and how it is verified); removing the
toxic lets clients still retrying in. Targeting as for ``refuse_new``:
``skip_connections`` and a once-drawn ``toxicity``, no ``max_connections``;
``stream`` does not matter.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.base import Toxic


class StallAcceptToxic(Toxic):
    type_name = "stall_accept"
    phase = "listen"
    listener_mode = "stall"
    in_toxiproxy = False
    summary = "accept stall (connect hangs until the client's timeout)"
    effect = (
        "new `connect()` calls hang until the client's own timeout (`TimeoutError`); open "
        "connections keep working; after removal, clients still retrying get in"
    )
    __slots__ = ()
