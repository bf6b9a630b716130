"""``Address``: a ``(host, port)`` pair, and the one way chaosnet writes it as text.

Standard library only (it imports nothing at all), so the primitives
(``retry``, ``connection``, ``framing``, ``datagram``) use it as freely as the
harness. ``retry.Endpoint``, ``control.Address``, ``proxy.addresses.Address``
and ``servers.readiness.Address`` are this same type under the names they had
before (aliases kept for one release).
"""

from __future__ import annotations

Address = tuple[str, int]


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets (``[::1]:80``) as URLs and Toxiproxy
    write it, so the text parses back unambiguously."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
