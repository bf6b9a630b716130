"""``host:port`` strings as the Toxiproxy API spells them, parsed strictly and formatted.

One parser for every way an address or a number arrives as text: API bodies and
query strings, the ``--config`` file and the ``serve`` flags. It never lets a
Python conversion decide: digits are ASCII only (``str.isdigit`` accepts ``²``)
and bounded in length (``int()`` of 5,000 digits raises), host names must encode
as IDNA (``a..b`` or a 64-character label raise ``UnicodeError`` deep in the
socket layer otherwise). Every failure is one :class:`ApiError` 400 naming the
field.

Listen addresses default to loopback: an empty host (``":0"`` or a missing
``listen``) means 127.0.0.1, never every interface. A listen host is an IP
address or ``localhost``, so binding never waits on a resolver on the event loop.
Upstream names are resolved per connection, off the loop (see ``link.py``).
"""

from __future__ import annotations

import ipaddress
import re
import socket

# The one (host, port) type and its text form, under the names proxy modules import here.
from chaosnet.address import Address as Address
from chaosnet.address import format_address as format_address
from chaosnet.proxy.errors import bad_request

LOOPBACK = "127.0.0.1"
MAX_PORT = 65535
MAX_HOST_LENGTH = 253  # DNS: a name longer than this cannot exist
MAX_DIGITS = 18  # any count the API takes fits; int() never sees a huge string
LOCALHOST = "localhost"
LOOPBACK_NAMES = frozenset({LOCALHOST, "ip6-localhost", "ip6-loopback"})


_DIGITS = re.compile(r"[0-9]+")  # ASCII digits only


def parse_decimal(text: str, field: str, *, maximum: int, minimum: int = 0) -> int:
    """A whole number written in ASCII digits, within [minimum, maximum]; a 400 otherwise."""
    if len(text) > MAX_DIGITS or not _DIGITS.fullmatch(text):
        raise bad_request(f"{field}: must be a whole number, got {_shown(text)}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise bad_request(f"{field}: must be from {minimum} to {maximum}, got {value}")
    return value


def parse_port(text: str, field: str, *, min_port: int = 0) -> int:
    if len(text) > len(str(MAX_PORT)) or not _DIGITS.fullmatch(text):
        raise bad_request(f"{field}: port must be a number, got {_shown(text)}")
    port = int(text)
    if not min_port <= port <= MAX_PORT:
        raise bad_request(f"{field}: port {port} out of range {min_port}..{MAX_PORT}")
    return port


def check_host(host: str, field: str) -> None:
    """An IP address or a host name that can be looked up; a 400 naming ``field`` otherwise."""
    if ip_literal(host) is not None:
        return
    problem = _name_problem(host)
    if problem:
        raise bad_request(f"{field}: invalid host {_shown(host)}: {problem}")


def _name_problem(host: str) -> str:
    if len(host) > MAX_HOST_LENGTH:
        return f"longer than {MAX_HOST_LENGTH} characters"
    if any(c.isspace() or c in "/[]@%\\" or ord(c) < 32 for c in host):
        return "not a host name"
    try:
        host.encode("idna")
    except UnicodeError as exc:  # empty or over-long label, bad characters
        return str(exc.__cause__ or exc).removeprefix("encoding with 'idna' codec failed ")
    return ""


def parse_hostport(text: str, field: str, *, min_port: int) -> Address:
    """Split ``host:port`` (``[v6]:port`` for IPv6); a 400 naming ``field`` if malformed."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise bad_request(f"{field}: expected host:port, got {_shown(text)}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ip_literal(host) is None or ":" not in host:
            raise bad_request(f"{field}: brackets hold an IPv6 address, got {_shown(text)}")
    elif ":" in host:
        raise bad_request(f"{field}: IPv6 hosts need brackets, e.g. [::1]:8080, got {_shown(text)}")
    port = parse_port(port_text, field, min_port=min_port)
    if host:
        check_host(host, field)
    return host, port


def parse_listen(text: str) -> Address:
    """A listen address; an empty string or empty host means loopback."""
    if not text:
        return LOOPBACK, 0
    host, port = parse_hostport(text, "listen", min_port=0)
    if host and ip_literal(host) is None and host.lower() != LOCALHOST:
        raise bad_request(f"listen: host must be an IP address or localhost, got {_shown(host)}")
    return host or LOOPBACK, port


def parse_upstream(text: str) -> Address:
    host, port = parse_hostport(text, "upstream", min_port=1)
    if not host:
        raise bad_request(f"upstream: missing host in {_shown(text)}")
    return host, port


def ip_literal(host: str) -> str | None:
    """``host`` normalised if it is an IP address, else None (a name to resolve)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """``host`` (no port) is this machine's loopback: 127.0.0.0/8, ::1 or a localhost name."""
    name = host.lower().rstrip(".")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    literal = ip_literal(name)
    return literal is not None and ipaddress.ip_address(literal).is_loopback


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def resolve_listen_host(host: str) -> str:
    """The IP a listen host binds to (``localhost`` -> ``127.0.0.1``); no resolver involved."""
    literal = ip_literal(host)
    if literal is not None:
        return literal
    if host.lower() == LOCALHOST:
        return LOOPBACK
    raise bad_request(f"listen: host must be an IP address or localhost, got {_shown(host)}")


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut short: an error never echoes 5,000 digits."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"
