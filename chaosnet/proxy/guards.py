"""Requests the control API refuses before any handler sees them (403 and 415, as JSON).

Toxiproxy refuses a browser (``User-Agent: Mozilla/...``, matched
case-sensitively) so that a web page cannot drive it. chaosnet goes further,
because a browser is not the only way in:

- any ``User-Agent`` starting with ``mozilla/`` in any case (browsers and tools
  copying them);
- while the API listens on loopback only, a ``Host`` that is not a loopback name
  or address, with or without a port: a DNS-rebinding page reaches 127.0.0.1
  under its own name, and that name is what its requests carry;
- an ``Origin`` that is not a loopback origin, and ``Sec-Fetch-Site: cross-site``
  or ``same-site`` (a page of another site or port asked for it);
- a ``Content-Encoding`` other than ``identity``: bodies are small JSON, and an
  inflated body would be decompressed on the one event loop that also runs every
  proxy (a 2 MB gzip body inflates to gigabytes) before any size check applies.
  The HTTP layer is told not to decompress at all (``httpconn.py``); this check
  gives the client a reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from chaosnet.proxy.addresses import is_loopback
from chaosnet.proxy.errors import ApiError

FORBIDDEN = 403
UNSUPPORTED_MEDIA_TYPE = 415
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
ACCEPTED_ENCODINGS = frozenset({"", "identity"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback_host(host: str) -> bool:
    """``host`` (a Host header or URL host, maybe with a port) names this machine's loopback."""
    return is_loopback(_without_port(host.strip()))


def _without_port(host: str) -> str:
    if host.startswith("["):  # [v6] or [v6]:port
        return host[1 : host.index("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    if sep and ":" not in name and port.isascii() and port.isdigit():
        return name
    return host


def refusal(request: web.Request, *, loopback_only: bool) -> ApiError | None:
    """Why ``request`` is refused, or None."""
    headers = request.headers
    if headers.get("User-Agent", "").lower().startswith("mozilla/"):
        return ApiError(FORBIDDEN, "User agent not allowed")
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in ALLOWED_FETCH_SITES:
        return ApiError(FORBIDDEN, f"cross-site request refused (Sec-Fetch-Site: {site})")
    origin = headers.get("Origin")
    if origin is not None and not _loopback_origin(origin):
        return ApiError(FORBIDDEN, f"request from another origin refused (Origin: {origin})")
    host = headers.get("Host")
    if loopback_only and host is not None and not is_loopback_host(host):
        return ApiError(
            FORBIDDEN,
            f"Host {host!r} is not a loopback name or address; the API listens on loopback only",
        )
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ACCEPTED_ENCODINGS:
        return ApiError(
            UNSUPPORTED_MEDIA_TYPE,
            f"Content-Encoding {encoding!r} not accepted: send the JSON body uncompressed",
        )
    return None


def _loopback_origin(origin: str) -> bool:
    try:
        host = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(host) and is_loopback_host(host)


def admission(*, loopback_only: bool) -> Middleware:
    """The middleware: raise the refusal (the errors middleware around it answers JSON)."""

    @web.middleware
    async def admit(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = refusal(request, loopback_only=loopback_only)
        if refused is not None:
            raise refused
        return await handler(request)

    return admit
