"""``ServerProcess``: any command run as a real server, with readiness, logs and a lifecycle.

The process runs in its own session and process group, dies with the thread
that spawned it (``PR_SET_PDEATHSIG``, see ``spawn``), and writes stdout and
stderr to a log file we keep after it stops, for failure reports. The parent
keeps no pipe or file open to it: between calls, a server costs this process
one child pid and nothing else, so a leak check sees nothing but that.

Every wait is bounded. A start that fails (early exit, never ready) stops what
it started and raises with the exit code and the log's last lines.
"""

from __future__ import annotations

import atexit
import os
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import psutil

from chaosnet.leaks import Resource
from chaosnet.servers import spawn
from chaosnet.servers.errors import ServerCrashed, ServerError, ServerExitedEarly, ServerNotReady
from chaosnet.servers.lifecycle import start_again
from chaosnet.servers.readiness import (
    Address,
    HttpOk,
    Listening,
    LogLine,
    PortAccepts,
    ReadinessCheck,
    ReadinessContext,
)

ArgvSpec = Sequence[str] | Callable[[int], Sequence[str]]
"""A fixed command, or a function of the port to bind (0 at the first start, the port the
server reported on a restart, so it comes back on the same address)."""

DEFAULT_READY_TIMEOUT_S = 10.0
DEFAULT_STOP_GRACE_S = 3.0
KILL_WAIT_S = 5.0
SIGNAL_WAIT_S = 2.0
LOG_TAIL_LINES = 20
_POLL_START_S = 0.002
_POLL_MAX_S = 0.05

_live: weakref.WeakSet[ServerProcess] = weakref.WeakSet()
_log_dir: Path | None = None
_log_dir_lock = threading.Lock()


class ServerProcess:
    """A real server process. ``start()`` returns once it is ready; ``stop()`` is graceful.

    ``ready`` is a check or a sequence of checks run in order (``PortAccepts``,
    ``LogLine``, ``HttpOk``); an empty sequence means "started is ready". By
    default the server must accept connections on ``address``.
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
    ) -> None:
        self._argv_spec = argv
        first = self._argv_for(address[1] if address else 0)
        if not first:
            raise ValueError("ServerProcess needs a non-empty argv")
        self.name = name or Path(first[0]).name
        self._address = address
        self._ready = normalize_checks(ready)
        validate_checks(self._ready, address, self.name)
        self._env = _environment(env, inherit_env)
        self._cwd = Path(cwd) if cwd is not None else None
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self._log_path = Path(log_path) if log_path is not None else None
        self._popen: subprocess.Popen[bytes] | None = None
        self._argv: list[str] = first
        self._log_offset = 0
        self._stop_requested = False
        self._paused = False
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- properties

    @property
    def address(self) -> Address:
        """(host, port) the server listens on; known once ready (or given)."""
        if self._address is None:
            raise ServerError(f"server {self.name!r} has no known address yet", name=self.name)
        return self._address

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise ServerError(f"server {self.name!r} was never started", name=self.name)
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once exited (negative: killed by that signal), else None."""
        return None if self._popen is None else self._popen.poll()

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    @property
    def crashed(self) -> bool:
        """It exited although nobody asked it to stop: the test that was running should fail."""
        return self._popen is not None and self.returncode is not None and not self._stop_requested

    @property
    def argv(self) -> list[str]:
        """The command of the current (or last) run."""
        return list(self._argv)

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            self._log_path = new_log_path(self.name)
        return self._log_path

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> ServerProcess:
        """Spawn and wait until ready; raises ServerExitedEarly / ServerNotReady otherwise."""
        with self._lock:
            if self.running:
                raise ServerError(f"server {self.name!r} is already running", name=self.name)
            port = self._address[1] if self._address else 0
            self._argv = self._argv_for(port)
            self._launch()
            try:
                self._wait_ready()
            except BaseException:
                self._stop_requested = True  # a failed start is reported, not a crash
                self._terminate(grace=0.5)
                raise
            return self

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; the exit status."""
        with self._lock:
            if self._popen is None:
                return None
            if self._popen.poll() is None:  # stopping a dead server does not hide its crash
                self._stop_requested = True
            self._terminate(self.stop_grace if grace is None else grace)
            self._mark(f"stopped (exit status {self.returncode})")
            return self.returncode

    def kill(self) -> int | None:
        """SIGKILL the group at once (a crash on purpose); the exit status."""
        return self.stop(grace=0)

    def restart(self, grace: float | None = None) -> ServerProcess:
        """Stop, then start again on the same address."""
        with self._lock:
            before = self._address
            self.stop(grace)
            start_again(
                self,
                before,
                kind="server",
                hint="pass argv as a function of the port to restart on the same address",
            )
            return self

    def pause(self) -> None:
        """SIGSTOP the group: connections still queue in the backlog, nothing answers."""
        with self._lock:
            self._require_running("pause")
            spawn.signal_group(self.pid, signal.SIGSTOP)
            self._paused = True
            self._await_state(stopped=True)

    def resume(self) -> None:
        """SIGCONT the group after ``pause``."""
        with self._lock:
            self._require_running("resume")
            spawn.signal_group(self.pid, signal.SIGCONT)
            self._paused = False
            self._await_state(stopped=False)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the server to exit by itself; its exit status,
        or None if it is still running."""
        popen = self._popen
        if popen is None:
            raise ServerError(f"server {self.name!r} was never started", name=self.name)
        _wait_exit(popen, timeout)
        return popen.poll()

    def check_alive(self) -> None:
        """Raise ServerCrashed if the server died without being asked to."""
        if self.crashed:
            code = self.returncode
            assert code is not None
            raise ServerCrashed(
                f"server {self.name!r} (pid {self.pid}) died unexpectedly: {describe_exit(code)}",
                name=self.name,
                returncode=code,
                log_tail=self.log_tail(),
            )

    # ----------------------------------------------------------------- logs

    def log_position(self) -> int:
        """The log's current size: pass it to ``log_text(since=...)`` later to get what a
        session-long server wrote during one test only.
        """
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        """The log (stdout and stderr, with our start/stop lines), from byte ``since`` on."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # ----------------------------------------------------------------- leak-check exemption

    def exempts(self, resource: Resource) -> bool:
        """For ``chaosnet.leaks.long_lived.add(server)``: its process is not a leak."""
        popen = self._popen
        return popen is not None and resource.kind == "process" and resource.pid == popen.pid

    # ----------------------------------------------------------------- context manager

    def __enter__(self) -> ServerProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f" {self._address[0]}:{self._address[1]}" if self._address else ""
        state = "paused" if self.paused else "running" if self.running else "not running"
        pid = f" pid {self._popen.pid}" if self._popen else ""
        return f"<ServerProcess {self.name!r}{pid}{where} {state}>"

    # ----------------------------------------------------------------- internals

    def _argv_for(self, port: int) -> list[str]:
        spec = self._argv_spec
        return [str(a) for a in (spec(port) if callable(spec) else spec)]

    def _launch(self) -> None:
        program = spawn.resolve_program(self._argv[0], self._env, self._cwd)
        if program is None:
            raise ServerError(
                f"cannot start server {self.name!r}: command not found: {self._argv[0]!r}",
                name=self.name,
            )
        if self._cwd is not None and not self._cwd.is_dir():
            raise ServerError(
                f"cannot start server {self.name!r}: no such directory: {self._cwd}",
                name=self.name,
            )
        self._mark(f"starting: {shlex.join(self._argv)}")
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self._popen = spawn.spawn(self._argv, env=self._env, cwd=self._cwd, log=log)
        self._stop_requested = False
        self._paused = False
        _live.add(self)

    def _wait_ready(self) -> None:
        ctx = ReadinessContext(self.log_path, self._log_offset, self._address, self.pid)
        deadline = time.monotonic() + self.ready_timeout
        delay = _POLL_START_S
        for check in self._ready:
            while True:
                self._raise_if_exited(check.describe())
                if check.poll(ctx):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServerNotReady(
                        f"server {self.name!r} (pid {self.pid}) was not ready within "
                        f"{self.ready_timeout:g}s: still waiting for {check.describe()}; "
                        f"command: {shlex.join(self._argv)}",
                        name=self.name,
                        timeout=self.ready_timeout,
                        log_tail=self.log_tail(),
                    )
                time.sleep(min(delay, left))
                delay = min(delay * 2, _POLL_MAX_S)
        self._raise_if_exited("its readiness checks to stay true")
        self._address = ctx.address

    def _raise_if_exited(self, waiting_for: str) -> None:
        assert self._popen is not None
        code = self._popen.poll()
        if code is not None:
            raise ServerExitedEarly(
                f"server {self.name!r} {describe_exit(code)} before it was ready "
                f"(waiting for {waiting_for}); command: {shlex.join(self._argv)}",
                name=self.name,
                returncode=code,
                log_tail=self.log_tail(),
            )

    def _terminate(self, grace: float) -> None:
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
            _wait_until(lambda: not _group_has_live_members(group), deadline)
        if spawn.group_alive(group):
            spawn.signal_group(group, signal.SIGKILL)
        if not _wait_exit(popen, KILL_WAIT_S):
            raise ServerError(
                f"server {self.name!r} (pid {popen.pid}) survived SIGKILL for {KILL_WAIT_S:g}s",
                name=self.name,
            )
        _wait_until(lambda: not _group_has_live_members(group), time.monotonic() + SIGNAL_WAIT_S)
        self._paused = False
        _live.discard(self)

    def _require_running(self, action: str) -> None:
        if not self.running:
            raise ServerError(f"cannot {action} server {self.name!r}: not running", name=self.name)

    def _await_state(self, *, stopped: bool) -> None:
        """SIGSTOP/SIGCONT are asynchronous: wait until the leader shows the new state."""
        try:
            proc = psutil.Process(self.pid)
            _wait_until(
                lambda: (proc.status() == psutil.STATUS_STOPPED) == stopped,
                time.monotonic() + SIGNAL_WAIT_S,
            )
        except psutil.Error:
            pass

    def _mark(self, event: str) -> None:
        """A line of our own in the log, so a restart or a stop reads clearly in a report."""
        stamp = time.strftime("%H:%M:%S")
        with self.log_path.open("ab") as log:
            log.write(f"[chaosnet {stamp}] {self.name}: {event}\n".encode())


def normalize_checks(
    ready: ReadinessCheck | Sequence[ReadinessCheck] | None,
) -> tuple[ReadinessCheck, ...]:
    if ready is None:
        return (PortAccepts(),)
    if isinstance(ready, PortAccepts | LogLine | HttpOk | Listening):
        return (ready,)
    return tuple(ready)


def validate_checks(checks: Sequence[ReadinessCheck], address: Address | None, name: str) -> None:
    """Refuse, before starting anything, checks that could never learn the address they need."""
    known = address is not None
    for check in checks:
        if isinstance(check, LogLine):
            known = known or check.captures_port
        elif isinstance(check, Listening) or (
            isinstance(check, PortAccepts) and check.address is not None
        ):
            known = True
        elif not known and (isinstance(check, PortAccepts) or check.needs_address):
            raise ValueError(
                f"server {name!r}: {type(check).__name__} needs an address: pass "
                "address=(host, port) or a LogLine check with a (?P<port>...) group before it"
            )


def _environment(env: Mapping[str, str] | None, inherit: bool) -> dict[str, str]:
    merged = dict(os.environ) if inherit else {}
    merged.update(env or {})
    # A Python server's stdout is a file here: unbuffered, its readiness line shows at once.
    merged.setdefault("PYTHONUNBUFFERED", "1")
    return merged


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


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


def _wait_until(condition: Callable[[], bool], deadline: float) -> bool:
    """Poll ``condition`` with a short back-off until it holds or ``deadline`` passes."""
    delay = _POLL_START_S
    while not condition():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, _POLL_MAX_S)
    return True


def new_log_path(name: str) -> Path:
    global _log_dir
    with _log_dir_lock:
        if _log_dir is None:
            _log_dir = Path(tempfile.mkdtemp(prefix=f"chaosnet-servers-{os.getpid()}-"))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        handle, path = tempfile.mkstemp(prefix=f"{safe}-", suffix=".log", dir=_log_dir)
        os.close(handle)
        return Path(path)


@atexit.register
def _at_exit() -> None:
    """A server left running at interpreter exit is stopped, not orphaned; default logs go.

    (Pass ``log_path`` to keep a server's log beyond the process, as the pytest
    plugin does under its ``tmp_path``.)
    """
    for server in list(_live):
        try:
            server.stop(grace=1.0)
        except ServerError:
            continue
    if _log_dir is not None:
        shutil.rmtree(_log_dir, ignore_errors=True)
