"""``ServerProcess``: any command run as a real server; ``ProcessDriver`` runs it.

The lifecycle (readiness, stop, restart, logs...) is ``ManagedServer``'s; this
module only launches, signals and reaps a process, and chooses the port of a
command that has ``{port}`` in its argv (a server that cannot bind port 0):
see ``ports``. It then checks that the process it started is the one listening
on that port, and on a collision (another process took the port first) starts
it again on a new one, up to ``port_attempts`` times. The process runs in its own
session and process group, dies with the thread that spawned it
(``PR_SET_PDEATHSIG``, see ``spawn``), and writes stdout and stderr to its log
file (``ServerLog``), kept after it stops for failure reports. The parent keeps
no pipe or file open to it: between calls, a server costs this process one
child pid and nothing else, so a leak check sees nothing but that.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shlex
import signal
import subprocess
import time
import weakref
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar, Self

import psutil

from chaosnet.address import Address
from chaosnet.leaks import Resource
from chaosnet.servers import ports, spawn
from chaosnet.servers.errors import ServerError, ServerExitedEarly
from chaosnet.servers.lifecycle import (
    DEFAULT_READY_TIMEOUT_S,
    DEFAULT_STOP_GRACE_S,
    KILL_WAIT_S,
    ArgvSpec,
    ManagedServer,
    command_for,
    describe_exit,
)
from chaosnet.servers.logs import ServerLog
from chaosnet.servers.readiness import ReadinessCheck, poll_until

__all__ = ["ArgvSpec", "ProcessDriver", "ServerProcess"]

SIGNAL_WAIT_S = 2.0
PORT_ATTEMPTS = 5

#: Servers started by this process: stopped at interpreter exit if still running.
_live: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


class ServerProcess(ManagedServer):
    """A real server process. ``start()`` returns once it is ready; ``stop()`` is graceful.

    ``ready`` is a check or a sequence of checks run in order (``PortAccepts``,
    ``LogLine``, ``HttpOk``, ``Listening``); an empty sequence means "started is
    ready". By default the server must accept connections on ``address``.
    """

    def __init__(
        self,
        argv: ArgvSpec,
        *,
        name: str | None = None,
        address: Address | None = None,
        ready: ReadinessCheck | Sequence[ReadinessCheck] | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
        stop_grace: float = DEFAULT_STOP_GRACE_S,
        log_path: str | os.PathLike[str] | None = None,
        port_attempts: int = PORT_ATTEMPTS,
    ) -> None:
        template = None if callable(argv) else list(argv)
        self._picks_port = template is not None and ports.has_placeholder(template)
        if template is not None and self._picks_port:
            if address is not None:
                raise ValueError(
                    "ServerProcess: {port} in argv means chaosnet chooses the port; "
                    f"do not also pass address={address!r}"
                )
            argv = partial(ports.substitute, template)
            address = (ports.LOOPBACK, 0)  # the port is chosen at start
        self._port_attempts = port_attempts
        first = command_for(argv, address[1] if address else 0)
        if not first:
            raise ValueError("ServerProcess needs a non-empty argv")
        name = name or Path(first[0]).name
        self._process = ProcessDriver(name, _environment(env, inherit_env), cwd)
        super().__init__(
            self._process,
            argv,
            name=name,
            address=address,
            ready=ready,
            ready_timeout=ready_timeout,
            stop_grace=stop_grace,
            log=ServerLog(name, log_path),
        )

    def start(self) -> Self:
        _live.add(self)
        if not self._picks_port or self.address[1] != 0:  # a restart keeps its port
            return super().start()
        return self._start_on_a_chosen_port()

    def _start_on_a_chosen_port(self) -> Self:
        lost: list[str] = []
        for _ in range(self._port_attempts):
            port = ports.pick_free_port()
            self._address = (ports.LOOPBACK, port)
            try:
                super().start()
            except ServerExitedEarly:
                self._address = (ports.LOOPBACK, 0)
                if not ports.taken(port):
                    raise  # it failed for its own reasons, not for the port
                lost.append(f"{port} (taken before it could bind)")
                continue
            if ports.listens_on(self.pid, port):
                return self
            self.stop(grace=0)  # what answered on the port is another process
            self._address = (ports.LOOPBACK, 0)
            lost.append(f"{port} (another process listens there)")
        raise ServerError(
            f"server {self.name!r}: no port chosen for {{port}} worked in "
            f"{self._port_attempts} attempts: {', '.join(lost)}",
            name=self.name,
            log_tail=self.log_tail(),
        )


class ProcessDriver:
    """Runs one command at a time in its own process group; see ``ManagedServer``."""

    label: ClassVar[str] = "server"
    command_noun: ClassVar[str] = "argv"
    failed_start_grace: ClassVar[float] = 0.5

    def __init__(
        self, name: str, env: Mapping[str, str], cwd: str | os.PathLike[str] | None
    ) -> None:
        self.name = name
        self._env = dict(env)
        self._cwd = Path(cwd) if cwd is not None else None
        self._popen: subprocess.Popen[bytes] | None = None

    def session(self, purpose: str) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def describe(self, argv: list[str] | None) -> str:
        return f"command: {shlex.join(argv or [])}"

    def prepare(self, argv: list[str] | None, address: Address | None) -> None:
        program = argv[0] if argv else ""
        if spawn.resolve_program(program, self._env, self._cwd) is None:
            raise ServerError(
                f"cannot start server {self.name!r}: command not found: {program!r}",
                name=self.name,
            )
        if self._cwd is not None and not self._cwd.is_dir():
            raise ServerError(
                f"cannot start server {self.name!r}: no such directory: {self._cwd}",
                name=self.name,
            )

    def launch(self, argv: list[str] | None, log: ServerLog) -> None:
        with log.path.open("ab") as out:
            self._popen = spawn.spawn(argv or [], env=self._env, cwd=self._cwd, log=out)

    def before_ready(self, checks: Sequence[ReadinessCheck]) -> None:
        return None

    def exists(self) -> bool:
        return self._popen is not None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def how_it_ended(self) -> str:
        code = self.returncode()
        return "is still running" if code is None else describe_exit(code)

    @property
    def pid(self) -> int:
        assert self._popen is not None
        return self._popen.pid

    def discard(self) -> None:
        return None  # an exited process holds nothing but its exit status

    def terminate(self, grace: float) -> None:
        """TERM (and CONT, so a paused server can act on it), then KILL what is left."""
        popen = self._popen
        if popen is None:
            return
        group = popen.pid  # a session leader: its pid is its group id
        deadline = time.monotonic() + grace
        if grace > 0 and popen.poll() is None:
            spawn.signal_group(group, signal.SIGTERM)
            spawn.signal_group(group, signal.SIGCONT)
            _wait_exit(popen, deadline - time.monotonic())
            poll_until(lambda: not _group_has_live_members(group), deadline)
        if spawn.group_alive(group):
            spawn.signal_group(group, signal.SIGKILL)
        if not _wait_exit(popen, KILL_WAIT_S):
            raise ServerError(
                f"server {self.name!r} (pid {popen.pid}) survived SIGKILL for {KILL_WAIT_S:g}s",
                name=self.name,
            )
        poll_until(lambda: not _group_has_live_members(group), time.monotonic() + SIGNAL_WAIT_S)

    def pause(self) -> None:
        """SIGSTOP the group: connections still queue in the backlog, nothing answers."""
        spawn.signal_group(self.pid, signal.SIGSTOP)
        self._await_state(stopped=True)

    def resume(self) -> None:
        spawn.signal_group(self.pid, signal.SIGCONT)
        self._await_state(stopped=False)

    def wait(self, timeout: float) -> None:
        if self._popen is not None:
            _wait_exit(self._popen, timeout)

    def exempts(self, resource: Resource) -> bool:
        popen = self._popen
        return popen is not None and resource.kind == "process" and resource.pid == popen.pid

    def summary(self) -> str:
        return f"pid {self._popen.pid}" if self._popen is not None else "never started"

    def _await_state(self, *, stopped: bool) -> None:
        """SIGSTOP/SIGCONT are asynchronous: wait until the leader shows the new state."""
        try:
            proc = psutil.Process(self.pid)
            poll_until(
                lambda: (proc.status() == psutil.STATUS_STOPPED) == stopped,
                time.monotonic() + SIGNAL_WAIT_S,
            )
        except psutil.Error:
            pass


def _environment(env: Mapping[str, str] | None, inherit: bool) -> dict[str, str]:
    merged = dict(os.environ) if inherit else {}
    merged.update(env or {})
    # A Python server's stdout is a file here: unbuffered, its readiness line shows at once.
    merged.setdefault("PYTHONUNBUFFERED", "1")
    return merged


def _group_has_live_members(group: int) -> bool:
    """True while a non-zombie process is in the group (orphaned zombies may linger)."""
    if not spawn.group_alive(group):
        return False
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == group and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def _wait_exit(popen: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait (bounded) for the process to exit and reap it; woken by a pidfd when available,
    instead of ``Popen.wait``'s sleep loop, so a stop returns as soon as the server is gone.
    """
    if popen.poll() is not None:
        return True
    try:
        pidfd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3
        pidfd = None
    if pidfd is not None:
        try:
            select.select([pidfd], [], [], max(0.0, timeout))
        finally:
            os.close(pidfd)
    try:
        popen.wait(0 if pidfd is not None else max(0.0, timeout))
    except subprocess.TimeoutExpired:
        return False
    return True


@atexit.register
def _at_exit() -> None:
    """A server left running at interpreter exit is stopped, not orphaned."""
    for server in list(_live):
        if server.running:
            with contextlib.suppress(ServerError):
                server.stop(grace=1.0)
