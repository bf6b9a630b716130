"""Readiness checks: how we know a freshly started server is ready for clients.

Each check is one non-blocking attempt (``poll``); ``ServerProcess`` runs the
bounded wait around them and notices an early exit between attempts. Checks
run in order, and a ``LogLine`` can capture the address the server reports, so
a server started on port 0 tells us its port and later checks (``PortAccepts``,
``HttpOk``) use it: no "find a free port, then bind" race.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Address = tuple[str, int]

ATTEMPT_TIMEOUT_S = 1.0


class ReadinessContext:
    """What the checks of one start share: the log read so far and the address learnt.

    ``refresh_log``, when given, brings the log file up to date before each read: a
    container's output reaches our file that way (``ContainerServer``).
    """

    def __init__(
        self,
        log_path: Path,
        log_offset: int,
        address: Address | None,
        pid: int,
        *,
        refresh_log: Callable[[], None] | None = None,
    ) -> None:
        self.address = address
        self.pid = pid
        self._refresh_log = refresh_log
        self._log_path = log_path
        self._offset = log_offset
        self._pending = b""
        self.lines: list[str] = []
        self.cursors: dict[int, int] = {}

    def read_new_lines(self) -> None:
        """Append the complete lines written to the log since the last read."""
        if self._refresh_log is not None:
            self._refresh_log()
        with self._log_path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        self._offset += len(chunk)
        *complete, self._pending = (self._pending + chunk).split(b"\n")
        self.lines.extend(line.decode(errors="replace").rstrip("\r") for line in complete)

    def need_address(self, check: str) -> Address:
        if self.address is None:
            raise ValueError(
                f"{check} needs the server's address: pass address=(host, port) "
                "or put a LogLine check capturing (?P<port>...) before it"
            )
        return self.address


@dataclass(frozen=True)
class PortAccepts:
    """Ready when a TCP connection to the address (or the one learnt so far) is accepted."""

    address: Address | None = None

    def describe(self) -> str:
        where = f" {self.address[0]}:{self.address[1]}" if self.address else ""
        return f"port{where} accepting connections"

    def poll(self, ctx: ReadinessContext) -> bool:
        host, port = self.address or ctx.need_address("PortAccepts")
        try:
            with socket.create_connection((host, port), timeout=ATTEMPT_TIMEOUT_S):
                pass
        except OSError:
            return False
        if ctx.address is None:
            ctx.address = (host, port)
        return True


@dataclass(frozen=True)
class Listening:
    """Ready when the server (or a process it started) has a TCP socket listening; its address
    becomes the server's. For servers that bind port 0 and do not say which port they got.
    """

    def describe(self) -> str:
        return "a listening TCP socket"

    def poll(self, ctx: ReadinessContext) -> bool:
        import psutil  # here: a server process importing this module does not need it

        try:
            leader = psutil.Process(ctx.pid)
            processes = [leader, *leader.children(recursive=True)]
            for process in processes:
                for conn in process.net_connections("tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr:
                        ctx.address = (conn.laddr.ip, conn.laddr.port)
                        return True
        except psutil.Error:  # exited meanwhile: the caller notices
            return False
        return False


@dataclass(frozen=True)
class LogLine:
    """Ready when a line of the log matches ``pattern``.

    Named groups ``port`` (and optionally ``host``) set the server's address,
    for servers that bind port 0 and print what they got.
    """

    pattern: str | re.Pattern[str]
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.pattern))

    def describe(self) -> str:
        return f"a log line matching {self._regex.pattern!r}"

    @property
    def captures_port(self) -> bool:
        return "port" in self._regex.groupindex

    def poll(self, ctx: ReadinessContext) -> bool:
        ctx.read_new_lines()
        start = ctx.cursors.get(id(self), 0)
        for index in range(start, len(ctx.lines)):
            match = self._regex.search(ctx.lines[index])
            if match is not None:
                ctx.cursors[id(self)] = index + 1
                self._learn_address(match, ctx)
                return True
        ctx.cursors[id(self)] = len(ctx.lines)
        return False

    @staticmethod
    def _learn_address(match: re.Match[str], ctx: ReadinessContext) -> None:
        groups = match.groupdict()
        if groups.get("port"):
            host = groups.get("host") or (ctx.address[0] if ctx.address else "127.0.0.1")
            ctx.address = (host.strip("[]"), int(groups["port"]))


@dataclass(frozen=True)
class HttpOk:
    """Ready when a GET of ``url`` answers 200.

    ``url`` may be a full URL, may use ``{host}`` and ``{port}`` for the address
    learnt so far, or may be a path such as ``/health`` on that address.
    """

    url: str = "/"

    def describe(self) -> str:
        return f"GET {self.url} answering 200"

    @property
    def needs_address(self) -> bool:
        return self.url.startswith("/") or "{host}" in self.url or "{port}" in self.url

    def resolve(self, ctx: ReadinessContext) -> str:
        if self.url.startswith("/"):
            host, port = ctx.need_address("HttpOk with a path")
            return f"http://{_url_host(host)}:{port}{self.url}"
        if "{host}" in self.url or "{port}" in self.url:
            host, port = ctx.need_address("HttpOk with {host}/{port}")
            return self.url.format(host=_url_host(host), port=port)
        return self.url

    def poll(self, ctx: ReadinessContext) -> bool:
        import urllib.error  # here: urllib costs every server process ~10 ms to import
        import urllib.request

        # No proxy handler: an http_proxy in the environment must not see loopback checks.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.resolve(ctx), timeout=ATTEMPT_TIMEOUT_S) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False


ReadinessCheck = PortAccepts | LogLine | HttpOk | Listening


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
