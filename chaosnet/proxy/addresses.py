"""``host:port`` strings as the Toxiproxy API spells them, parsed and formatted.

Listen addresses default to loopback: an empty host (``":0"`` or a missing
``listen``) means 127.0.0.1, never every interface.
"""

from __future__ import annotations

import ipaddress
import socket

from chaosnet.proxy.errors import bad_request

LOOPBACK = "127.0.0.1"
MAX_PORT = 65535

Address = tuple[str, int]


def parse_hostport(text: str, field: str, *, min_port: int) -> Address:
    """Split ``host:port`` (``[v6]:port`` for IPv6); a 400 naming ``field`` if malformed."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise bad_request(f"{field}: expected host:port, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise bad_request(f"{field}: IPv6 hosts need brackets, e.g. [::1]:8080, got {text!r}")
    if not port_text.isdigit():
        raise bad_request(f"{field}: port must be a number, got {text!r}")
    port = int(port_text)
    if not min_port <= port <= MAX_PORT:
        raise bad_request(f"{field}: port {port} out of range {min_port}..{MAX_PORT}")
    return host, port


def parse_listen(text: str) -> Address:
    """A listen address; an empty string or empty host means loopback."""
    if not text:
        return LOOPBACK, 0
    host, port = parse_hostport(text, "listen", min_port=0)
    return host or LOOPBACK, port


def parse_upstream(text: str) -> Address:
    host, port = parse_hostport(text, "upstream", min_port=1)
    if not host:
        raise bad_request(f"upstream: missing host in {text!r}")
    return host, port


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ip_literal(host: str) -> str | None:
    """``host`` normalised if it is an IP address, else None (a name to resolve)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def resolve_listen_host(host: str) -> str:
    """The IP a listen host binds to (``localhost`` -> ``127.0.0.1``); 400 if unknown."""
    literal = ip_literal(host)
    if literal is not None:
        return literal
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise bad_request(f"listen: cannot resolve host {host!r}: {exc}") from None
    ipv4 = [info for info in infos if info[0] == socket.AF_INET]
    return str((ipv4 or infos)[0][4][0])
