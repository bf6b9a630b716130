"""Readiness checks: how we know a freshly started server is ready for clients.

Each check is one non-blocking attempt (``poll``); ``wait_until_ready`` runs
the bounded wait around them and notices an early exit between attempts. Checks
run in order, and a ``LogLine`` can capture the address the server reports, so
a server started on port 0 tells us its port and later checks (``PortAccepts``,
``HttpOk``) use it: no "find a free port, then bind" race.

A check is anything with the ``ReadinessCheck`` shape: ``describe``, ``poll``
and whether it needs or learns the server's address. The six below are the
builtin ones; ``Probe`` (a callable, e.g. a Redis PING) and ``Command`` (e.g.
``redis-cli -p {port} ping``) ask the server itself whether it is ready.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from chaosnet.address import Address as Address  # the old name, kept for one release
from chaosnet.address import format_address
from chaosnet.errors import ChaosnetError

if TYPE_CHECKING:
    from chaosnet.servers.logs import ServerLog


ATTEMPT_TIMEOUT_S = 1.0
POLL_START_S = 0.002
POLL_MAX_S = 0.05


class ReadinessContext:
    """What the checks of one start share: the log read so far and the address learnt.

    The log is read from ``log_offset`` on: what this start wrote, not an earlier run.
    """

    def __init__(self, log: ServerLog, log_offset: int, address: Address | None, pid: int) -> None:
        self.address = address
        self.pid = pid
        self._log = log
        self._offset = log_offset
        self._pending = b""
        self.lines: list[str] = []
        self.cursors: dict[int, int] = {}

    def read_new_lines(self) -> None:
        """Append the complete lines written to the log since the last read."""
        chunk = self._log.read(self._offset)
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

    @property
    def needs_address(self) -> bool:
        return self.address is None

    @property
    def learns_address(self) -> bool:
        return self.address is not None

    def describe(self) -> str:
        where = f" {format_address(*self.address)}" if self.address else ""
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

    needs_address = False
    learns_address = True

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

    needs_address = False

    @property
    def captures_port(self) -> bool:
        return "port" in self._regex.groupindex

    @property
    def learns_address(self) -> bool:
        return self.captures_port

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

    learns_address = False

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


@dataclass(frozen=True)
class Probe:
    """Ready when ``probe((host, port))`` returns something true, e.g. a Redis ``PING``
    answered ``PONG``. An exception it raises counts as "not yet" and is shown in the
    not-ready message; each call should bound its own wait (``ATTEMPT_TIMEOUT_S``).
    """

    probe: Callable[[Address], object]
    description: str = ""
    _last_error: list[str] = field(default_factory=list, repr=False, compare=False)

    needs_address = True
    learns_address = False

    def describe(self) -> str:
        what = self.description or f"probe {getattr(self.probe, '__name__', repr(self.probe))}"
        return f"{what} (last: {self._last_error[-1]})" if self._last_error else what

    def poll(self, ctx: ReadinessContext) -> bool:
        try:
            return bool(self.probe(ctx.need_address("Probe")))
        except Exception as exc:  # the server is not ready yet: connection refused, reset...
            self._last_error[:] = [f"{type(exc).__name__}: {exc}"]
            return False


@dataclass(frozen=True)
class Command:
    """Ready when ``argv`` exits with status 0 within ``ATTEMPT_TIMEOUT_S``; ``{host}`` and
    ``{port}`` in it are the server's address. A program that does not exist is an error
    at once, not a timeout.
    """

    argv: Sequence[str]

    def __post_init__(self) -> None:
        if isinstance(self.argv, str) or not self.argv:
            raise ValueError(f"Command needs a non-empty argv list, got {self.argv!r}")

    learns_address = False

    @property
    def needs_address(self) -> bool:
        return any("{host}" in arg or "{port}" in arg for arg in self.argv)

    def describe(self) -> str:
        return f"command {' '.join(self.argv)!r} exiting 0"

    def poll(self, ctx: ReadinessContext) -> bool:
        import subprocess

        argv = list(self.argv)
        if self.needs_address:
            host, port = ctx.need_address("Command with {host}/{port}")
            argv = [arg.replace("{host}", host).replace("{port}", str(port)) for arg in argv]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=ATTEMPT_TIMEOUT_S, check=False)
        except FileNotFoundError:
            raise ChaosnetError(f"readiness command not found: {argv[0]!r}") from None
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


class ReadinessCheck(Protocol):
    """One way to tell a server is ready; ``poll`` is one attempt and must not block long."""

    @property
    def needs_address(self) -> bool:
        """It must know the address before its first attempt."""
        ...

    @property
    def learns_address(self) -> bool:
        """Once it passes, the server's address is known (later checks may need it)."""
        ...

    def describe(self) -> str: ...

    def poll(self, ctx: ReadinessContext) -> bool: ...


def normalize_checks(
    ready: ReadinessCheck | Sequence[ReadinessCheck] | None,
) -> tuple[ReadinessCheck, ...]:
    """``ready`` as a tuple of checks; by default the port must accept connections."""
    if ready is None:
        return (PortAccepts(),)
    if isinstance(ready, Sequence):
        return tuple(ready)
    return (ready,)


def validate_checks(checks: Sequence[ReadinessCheck], address: Address | None, name: str) -> None:
    """Refuse, before starting anything, checks that could never learn the address they need."""
    known = address is not None
    for check in checks:
        if check.needs_address and not known:
            raise ValueError(
                f"server {name!r}: {type(check).__name__} needs an address: pass "
                "address=(host, port) or a LogLine check with a (?P<port>...) group before it"
            )
        known = known or check.learns_address


def wait_until_ready(
    checks: Sequence[ReadinessCheck],
    ctx: ReadinessContext,
    timeout: float,
    *,
    still_running: Callable[[str], None],
) -> ReadinessCheck | None:
    """Run the checks in order within ``timeout`` seconds in all; the first one still
    failing at the deadline, or None once all passed.

    ``still_running(waiting_for)`` is called before every attempt and raises when
    the server has exited: a dead server is reported at once, not at the deadline.
    """
    deadline = time.monotonic() + timeout
    for check in checks:

        def attempt(check: ReadinessCheck = check) -> bool:
            still_running(check.describe())
            return check.poll(ctx)

        if not poll_until(attempt, deadline):
            return check
    return None


def poll_until(condition: Callable[[], bool], deadline: float) -> bool:
    """Try ``condition`` (at least once) with a short back-off until it holds or the
    monotonic ``deadline`` passes; whether it held."""
    delay = POLL_START_S
    while not condition():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, POLL_MAX_S)
    return True


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
