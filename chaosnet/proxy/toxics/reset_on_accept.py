"""``reset_on_accept`` (chaosnet): the TCP handshake completes, then an immediate RST.

The proxy accepts the connection and closes it at once with ``SO_LINGER`` 0, before
any data and without connecting upstream. The client's ``connect()`` succeeds and
its first read or write fails with ``ECONNRESET`` -- or, when the reset arrives
before a non-blocking/timeout ``connect()`` returns, the connect reports it.
Acts per accepted connection, so ``toxicity``, ``skip_connections`` and
``max_connections`` work as for stream toxics; ``stream`` does not matter.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.base import Toxic


class ResetOnAcceptToxic(Toxic):
    type_name = "reset_on_accept"
    phase = "accept"
    in_toxiproxy = False
    summary = "reset right after the handshake"
    effect = (
        "the handshake completes, then an immediate RST (`ConnectionResetError` on the first "
        "read/write, or from `connect()` itself if the reset beats it)"
    )
    __slots__ = ()
