"""One lifecycle for every real server chaosnet manages, whatever runs it.

``ManagedServer`` is the lifecycle: start with cleanup (a start that fails
stops what it started and raises with the log's last lines), the readiness
wait, stop without hiding a crash, kill, restart on the same address, pause,
resume, ``check_alive`` and the log. What runs the server is its ``Driver``:
``ProcessDriver`` (``ServerProcess``, any command) or ``ContainerDriver``
(``ContainerServer``, a Docker image). A driver only launches, signals,
inspects and removes; every decision and every message lives here once.

``RealServer`` is the interface the pytest plugin's failure reports and a
scenario's timeline hold, so they never ask which kind a server is.

The port a start binds is ``port_for_start()``: the address's port once known
(a restart comes back on it), else 0. A command given as a function of the
port (``ArgvSpec``) receives it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import ClassVar, Protocol, Self

from chaosnet.address import Address, format_address
from chaosnet.leaks import Resource
from chaosnet.servers.errors import ServerCrashed, ServerError, ServerExitedEarly, ServerNotReady
from chaosnet.servers.logs import LOG_TAIL_LINES, ServerLog
from chaosnet.servers.readiness import (
    ReadinessCheck,
    ReadinessContext,
    normalize_checks,
    validate_checks,
    wait_until_ready,
)

ArgvSpec = Sequence[str] | Callable[[int], Sequence[str]]
"""A fixed command, or a function of the port to bind (0 at the first start, the port the
server reported on a restart, so it comes back on the same address)."""

DEFAULT_READY_TIMEOUT_S = 10.0
DEFAULT_STOP_GRACE_S = 3.0
KILL_WAIT_S = 5.0
RESTART_ATTEMPTS = 3


class RealServer(Protocol):
    name: str

    @property
    def address(self) -> Address: ...

    @property
    def pid(self) -> int: ...

    @property
    def running(self) -> bool: ...

    @property
    def paused(self) -> bool: ...

    @property
    def crashed(self) -> bool: ...

    @property
    def returncode(self) -> int | None: ...

    def start(self) -> Self: ...

    def stop(self, grace: float | None = None) -> int | None: ...

    def kill(self) -> int | None: ...

    def restart(self, grace: float | None = None) -> Self: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def wait(self, timeout: float) -> int | None: ...

    def check_alive(self) -> None: ...

    def log_position(self) -> int: ...

    def log_text(self, since: int = 0) -> str: ...

    def log_tail(self, lines: int = ...) -> str: ...

    def exempts(self, resource: Resource) -> bool: ...


class Driver(Protocol):
    """What runs one server: launch it, signal it, inspect it, remove it. No policy.

    ``label`` names the server in messages ("server", "container"); ``command_noun``
    says what to pass as a function of the port to restart on the same address.
    """

    label: ClassVar[str]
    command_noun: ClassVar[str]
    failed_start_grace: ClassVar[float]

    def session(self, purpose: str) -> AbstractContextManager[object]:
        """Batch the calls made inside it (a container's engine connection); ``purpose``
        completes "cannot ..." in an error."""
        ...

    def describe(self, argv: list[str] | None) -> str:
        """The command (or image and command) for a message."""
        ...

    def prepare(self, argv: list[str] | None, address: Address | None) -> None:
        """Refuse, before anything starts, a start that cannot work (ServerError)."""
        ...

    def launch(self, argv: list[str] | None, log: ServerLog) -> None:
        """Start it, its output going to ``log``; a launch that fails cleans up and raises."""
        ...

    def before_ready(self, checks: Sequence[ReadinessCheck]) -> None:
        """Refuse checks this driver cannot serve, once launched."""
        ...

    def exists(self) -> bool:
        """Something was launched and not removed (it may have exited)."""
        ...

    def running(self) -> bool: ...

    def returncode(self) -> int | None:
        """Exit status (negative: killed by that signal); None while running or never run."""
        ...

    def how_it_ended(self) -> str:
        """How it stopped, for a crash report ("exited with code 1")."""
        ...

    @property
    def pid(self) -> int: ...

    def discard(self) -> None:
        """Drop what is left of an exited run (its log is kept) before a new start."""
        ...

    def terminate(self, grace: float) -> None:
        """TERM, KILL what is left after ``grace`` seconds; bounded; ServerError if it stays."""
        ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def wait(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds for it to exit by itself."""
        ...

    def exempts(self, resource: Resource) -> bool: ...

    def summary(self) -> str:
        """What tells this run apart, for a report: "pid 4242", "image redis:7 3f2a..."."""
        ...


class ManagedServer:
    """A real server: ``start()`` returns once it is ready; ``stop()`` is graceful.

    ``ready`` is a check or a sequence of checks run in order; an empty
    sequence means "started is ready". By default the server must accept
    connections on ``address``.
    """

    def __init__(
        self,
        driver: Driver,
        command: ArgvSpec | None,
        *,
        name: str,
        address: Address | None,
        ready: ReadinessCheck | Sequence[ReadinessCheck] | None,
        ready_timeout: float,
        stop_grace: float,
        log: ServerLog,
    ) -> None:
        self.name = name
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.log = log
        self._driver = driver
        self._command_spec = command
        self._argv = self.command_for(self.port_for_start(address))
        self._address = address
        self._ready = normalize_checks(ready)
        validate_checks(self._ready, address, name)
        self._started = False
        self._stop_requested = False
        self._paused = False
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- properties

    @property
    def address(self) -> Address:
        """(host, port) the server listens on; known once ready (or given)."""
        if self._address is None:
            raise self._error("has no known address yet")
        return self._address

    @property
    def pid(self) -> int:
        if not self._started:
            raise self._error("was never started")
        return self._driver.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once exited (negative: killed by that signal), else None."""
        return self._driver.returncode()

    @property
    def running(self) -> bool:
        return self._driver.running()

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    @property
    def crashed(self) -> bool:
        """It exited although nobody asked it to stop: the test that was running should fail."""
        return self._started and not self._stop_requested and not self._driver.running()

    @property
    def argv(self) -> list[str]:
        """The command of the current (or last) run; empty for a container's default CMD."""
        return list(self._argv or [])

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Launch and wait until ready; raises ServerExitedEarly / ServerNotReady otherwise."""
        with self._lock, self._driver.session(f"start {self._who}"):
            if self._driver.running():
                raise self._error("is already running")
            self._driver.discard()
            self._argv = self.command_for(self.port_for_start(self._address))
            self._driver.prepare(self._argv, self._address)
            self.log.mark(f"starting {self._driver.label}: {self._describe()}")
            offset = self.log.size()
            self._stop_requested = True  # until it runs, an exit is a failed start, not a crash
            self._driver.launch(self._argv, self.log)
            self._started, self._stop_requested, self._paused = True, False, False
            try:
                self._wait_until_ready(offset)
            except BaseException:
                self._stop_requested = True
                self._driver.terminate(self._driver.failed_start_grace)
                raise
            return self

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM, SIGKILL after ``grace`` seconds (``stop_grace`` by default); the exit
        status."""
        with self._lock:
            if not self._driver.exists():
                return self._driver.returncode()
            with self._driver.session(f"stop {self._who}"):
                if self._driver.running():  # stopping a dead server does not hide its crash
                    self._stop_requested = True
                self._driver.terminate(self.stop_grace if grace is None else grace)
            self._paused = False
            code = self._driver.returncode()
            self.log.mark(f"stopped (exit status {code})")
            return code

    def kill(self) -> int | None:
        """SIGKILL at once (a crash on purpose); the exit status."""
        return self.stop(grace=0)

    def restart(self, grace: float | None = None) -> Self:
        """Stop, then start again on the same address."""
        with self._lock:
            before = self._address
            self.stop(grace)
            self._start_again(before)
            return self

    def pause(self) -> None:
        """Freeze the server: connections still queue in the backlog, nothing answers."""
        self._set_paused(True)

    def resume(self) -> None:
        """Thaw the server after ``pause``."""
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        """Freeze or thaw the running server through its driver (SIGSTOP/SIGCONT, or
        the container engine's pause/unpause)."""
        verb = "pause" if paused else "resume"
        with self._lock:
            self._require_running(verb)
            with self._driver.session(f"{verb} {self._who}"):
                (self._driver.pause if paused else self._driver.resume)()
            self._paused = paused

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the server to exit by itself; its exit status,
        or None if it is still running."""
        if not self._started:
            raise self._error("was never started")
        if self._driver.exists():
            with self._driver.session(f"wait for {self._who}"):
                self._driver.wait(timeout)
        return self._driver.returncode()

    def check_alive(self) -> None:
        """Raise ServerCrashed if the server died without being asked to."""
        if not self.crashed:
            return
        code = self._driver.returncode()
        raise ServerCrashed(
            f"{self._who} ({self._driver.summary()}) died unexpectedly: "
            f"{self._driver.how_it_ended()}",
            name=self.name,
            returncode=code if code is not None else -1,
            log_tail=self.log.tail(),
        )

    def port_for_start(self, address: Address | None) -> int:
        """The port the next start binds: the known one (a restart), else 0."""
        return address[1] if address else 0

    def command_for(self, port: int) -> list[str] | None:
        return command_for(self._command_spec, port)

    # ----------------------------------------------------------------- logs

    @property
    def log_path(self) -> Path:
        return self.log.path

    def log_position(self) -> int:
        """The log's current size: pass it to ``log_text(since=...)`` later to get what a
        session-long server wrote during one test only.
        """
        return self.log.position()

    def log_text(self, since: int = 0) -> str:
        """The server's stdout and stderr, with our start/stop lines, from byte ``since`` on."""
        return self.log.text(since)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return self.log.tail(lines)

    # ----------------------------------------------------------------- leak-check exemption

    def exempts(self, resource: Resource) -> bool:
        """For ``chaosnet.leaks.long_lived.add(server)``: its process or container is not
        a leak."""
        return self._driver.exempts(resource)

    # ----------------------------------------------------------------- context manager

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f" {format_address(*self._address)}" if self._address else ""
        state = "paused" if self.paused else "running" if self.running else "not running"
        return f"<{type(self).__name__} {self.name!r} {self._driver.summary()}{where} {state}>"

    # ----------------------------------------------------------------- internals

    @property
    def _who(self) -> str:
        return f"{self._driver.label} {self.name!r}"

    def _error(self, what: str) -> ServerError:
        return ServerError(f"{self._who} {what}", name=self.name)

    def _describe(self) -> str:
        return self._driver.describe(self._argv)

    def _wait_until_ready(self, offset: int) -> None:
        ctx = ReadinessContext(self.log, offset, self._address, self._driver.pid)
        self._driver.before_ready(self._ready)
        pending = wait_until_ready(
            self._ready, ctx, self.ready_timeout, still_running=self._raise_if_exited
        )
        if pending is not None:
            raise ServerNotReady(
                f"{self._who} was not ready within {self.ready_timeout:g}s: still waiting "
                f"for {pending.describe()}; {self._describe()}",
                name=self.name,
                timeout=self.ready_timeout,
                log_tail=self.log.tail(),
            )
        self._raise_if_exited("its readiness checks to stay true")
        self._address = ctx.address

    def _raise_if_exited(self, waiting_for: str) -> None:
        if self._driver.running():
            return
        code = self._driver.returncode()
        code = code if code is not None else -1
        raise ServerExitedEarly(
            f"{self._who} {describe_exit(code)} before it was ready "
            f"(waiting for {waiting_for}); {self._describe()}",
            name=self.name,
            returncode=code,
            log_tail=self.log.tail(),
        )

    def _start_again(self, before: Address | None) -> None:
        """Start a stopped server again where it was (``before``): a start that loses a brief
        race for its own port is retried; one that comes back elsewhere is stopped and reported.
        """
        for attempt in range(1, RESTART_ATTEMPTS + 1):
            try:
                self.start()
                break
            except ServerExitedEarly:  # e.g. our port briefly held by a closing socket
                if attempt == RESTART_ATTEMPTS:
                    raise
        if before is not None and self.address != before:
            moved = self.address
            self.stop(grace=0)
            raise self._error(
                f"came back on {moved} instead of {before}: pass {self._driver.command_noun} "
                "as a function of the port to restart on the same address"
            )

    def _require_running(self, action: str) -> None:
        if not self.running:
            raise ServerError(f"cannot {action} {self._who}: not running", name=self.name)


def command_for(spec: ArgvSpec | None, port: int) -> list[str] | None:
    """The command for a start on ``port``; None for "the image's own" (containers)."""
    if spec is None:
        return None
    return [str(a) for a in (spec(port) if callable(spec) else spec)]


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
