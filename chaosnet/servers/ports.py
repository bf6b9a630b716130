"""A port chosen by chaosnet, for real servers that cannot bind port 0 (redis, Postgres...).

A command with ``{port}`` in its argv gets a port chosen here: the kernel's
pick for a socket bound to port 0 on loopback, released just before the server
starts. Another process may take it in between, so the caller verifies that
the process it started is the one listening there (``listens_on``) and, on a
collision, tries again with a new port (``taken`` tells a lost race from a
server that failed for its own reasons).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence

PLACEHOLDER = "{port}"
LOOPBACK = "127.0.0.1"


def has_placeholder(argv: Sequence[str]) -> bool:
    return any(PLACEHOLDER in str(arg) for arg in argv)


def substitute(argv: Sequence[str], port: int) -> list[str]:
    return [str(arg).replace(PLACEHOLDER, str(port)) for arg in argv]


def pick_free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def taken(port: int, host: str = LOOPBACK) -> bool:
    """Whether something else holds ``port`` (binding it fails with EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def listens_on(pid: int, port: int) -> bool:
    """Whether the process ``pid`` (or one it started) has a TCP socket listening on ``port``."""
    import psutil  # here: a server process importing chaosnet.servers does not need it

    try:
        leader = psutil.Process(pid)
        for process in [leader, *leader.children(recursive=True)]:
            for conn in process.net_connections("tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return True
    except psutil.Error:  # it exited meanwhile
        return False
    return False
