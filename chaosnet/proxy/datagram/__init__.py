"""Datagram (UDP) proxies: flows instead of connections, in the same engine as TCP.

- ``proxy.py`` -- :class:`DatagramProxy`: the listening socket, the flows by client
  address, enabling and disabling, toxics (shared with the TCP proxy's rules).
- ``flow.py`` -- :class:`Flow` (one client address, its own upstream socket) and
  :class:`Path` (one direction: toxic chain, then the send).
- ``flowlog.py`` -- the flow records behind ``GET /proxies/{name}/connections``.

The toxics live with the others in ``chaosnet/proxy/toxics/``.
"""
