"""``refuse_new`` (chaosnet): new connects get ``ECONNREFUSED``; open connections keep working.

Unlike ``enabled: false``, which closes the open connections too. The proxy closes
its listening socket (see ``listener.py``) and binds the same address again when
the toxic goes. It is a toxic so that add/remove, ``toxicity`` and
``skip_connections`` work as for any other; ``stream`` does not matter (either is
accepted). ``skip_connections: N`` lets N more connections in first; ``toxicity``
is drawn once, when it would start; ``max_connections`` is refused (400): the
kernel refuses those connects without the proxy ever seeing them.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.base import Toxic


class RefuseNewToxic(Toxic):
    type_name = "refuse_new"
    phase = "listen"
    listener_mode = "refuse"
    in_toxiproxy = False
    summary = "refuse new connections, keep existing ones"
    effect = (
        "new connects get `ConnectionRefusedError`; open connections keep working "
        "(unlike `enabled: false`)"
    )
    __slots__ = ()
