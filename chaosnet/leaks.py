"""Leak check: what a test opened and did not close, found by comparing two snapshots.

A snapshot of the current process lists its open file descriptors (sockets
apart), threads, live child processes and the pending tasks of a watched
asyncio loop; further probes (containers carrying our label) plug in through
``register_probe``. ``LeakCheck.finish`` compares against the baseline and
waits a bounded while for things to settle (a proxy closing its side of a
link, a thread finishing), then reports exactly what is left, with where each
socket was created.

Creation sites come from a ``sys.addaudithook`` on ``socket.__new__`` that
records a short stack per socket in a weak map: about 3 us per socket created
and nothing measurable elsewhere, where ``tracemalloc`` slows every operation
down 7-25x (measured; see docs/servers.md).
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import os
import socket
import stat
import sys
import sysconfig
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol, runtime_checkable

import psutil

from chaosnet.address import format_address

DEFAULT_SETTLE_S = 2.0
_POLL_START_S = 0.002
_POLL_MAX_S = 0.05

# --------------------------------------------------------------------------- resources


@dataclass(frozen=True, eq=False)
class Resource:
    """One thing a snapshot saw; ``key`` is its identity across snapshots of its probe."""

    kind: str
    key: Hashable
    fd: int | None = None
    pid: int | None = None
    obj: object | None = None


@dataclass(frozen=True)
class Leak:
    """A resource present after the test and not before, described for a human."""

    kind: str
    summary: str
    details: tuple[str, ...] = ()

    def render(self) -> str:
        return "\n".join([f"- {self.summary}", *(f"    {line}" for line in self.details)])


class Probe(Protocol):
    """One family of resources: a cheap ``snapshot`` and a ``describe`` for leaked ones."""

    def snapshot(self) -> Mapping[Hashable, Resource]: ...

    def describe(self, resource: Resource) -> Leak: ...


@runtime_checkable
class Exemption(Protocol):
    """An object that knows which resources are its own long-lived ones (e.g. a server)."""

    def exempts(self, resource: Resource) -> bool: ...


@dataclass(frozen=True)
class Pid:
    """Exempt the child process with this pid."""

    pid: int


@dataclass(frozen=True)
class Fd:
    """Exempt this file descriptor number."""

    fd: int


Exempt = threading.Thread | socket.socket | asyncio.Task[object] | Pid | Fd | Exemption
ExemptFn = Callable[[Resource], bool]

# --------------------------------------------------------------------------- creation sites

Frame = tuple[str, int, str]
_MAX_FRAMES = 12
_socket_sites: weakref.WeakKeyDictionary[socket.socket, tuple[str, tuple[Frame, ...]]] = (
    weakref.WeakKeyDictionary()
)
_popen_sites: deque[tuple[tuple[str, ...], tuple[Frame, ...]]] = deque(maxlen=256)
_tracking_lock = threading.Lock()
_tracking = False


def track_creation_sites() -> None:
    """Record where sockets and subprocesses are created from now on (idempotent).

    Audit hooks cannot be removed, so this stays on for the life of the process;
    it costs a few microseconds per socket. Call it early (the pytest plugin does
    at session start) so sockets made by fixtures have a site too.
    """
    global _tracking
    with _tracking_lock:
        if not _tracking:
            sys.addaudithook(_audit)
            _tracking = True


def _audit(event: str, args: tuple[object, ...]) -> None:
    # An exception here would propagate into the socket() call being audited.
    try:
        if event == "socket.__new__":
            sock = args[0]
            if isinstance(sock, socket.socket):
                _socket_sites[sock] = (threading.current_thread().name, _stack())
        elif event == "subprocess.Popen":
            argv = args[1]
            if isinstance(argv, list | tuple):
                _popen_sites.append((tuple(str(a) for a in argv), _stack()))
    except Exception:  # e.g. at interpreter shutdown, when modules are half torn down
        return


def _frames_from(frame: FrameType | None) -> list[Frame]:
    """``frame`` and its callers, innermost first."""
    frames: list[Frame] = []
    while frame is not None and len(frames) < _MAX_FRAMES:
        frames.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    return frames


def _stack() -> tuple[Frame, ...]:
    """The caller's stack, innermost first, then the awaiting coroutines of the current task."""
    frames = _frames_from(sys._getframe(2))
    loop = asyncio._get_running_loop()
    task = asyncio.current_task(loop) if loop is not None else None
    if task is not None:
        frames.extend(_await_chain(task))
    return tuple(frames)


def _await_chain(task: asyncio.Task[object]) -> list[Frame]:
    """A coroutine's own frames stop at the event loop; its awaiters are the real callers."""
    chain: list[Frame] = []
    coro: object = task.get_coro()
    while len(chain) < _MAX_FRAMES:
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            break
        chain.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        coro = getattr(coro, "cr_await", None)
    chain.reverse()  # innermost first, like the synchronous part
    return chain


_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib")} | {os.path.dirname(__file__)}
)


def _user_frames(frames: Sequence[Frame], limit: int = 3) -> list[Frame]:
    """The innermost frames outside the standard library and chaosnet's own plumbing."""
    own = [f for f in frames if not f[0].startswith(_LIBRARY_DIRS) and "<frozen" not in f[0]]
    return own[:limit] if own else list(frames[:1])


def render_site(frames: Sequence[Frame], verb: str = "created") -> list[str]:
    lines: list[str] = []
    for index, (filename, lineno, name) in enumerate(_user_frames(frames)):
        label = f"{verb} at" if index == 0 else "called from"
        lines.append(f"{label} {_short_path(filename)}:{lineno} in {name}")
        source = linecache.getline(filename, lineno).strip()
        if source:
            lines.append(f"    {source}")
    return lines


def _short_path(filename: str) -> str:
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


def _socket_site(fd: int) -> list[str]:
    for _ in range(3):  # the weak map may change under us while other threads run
        try:
            entries = list(_socket_sites.items())
            break
        except RuntimeError:
            continue
    else:
        return []
    for sock, (thread_name, frames) in entries:
        if sock.fileno() == fd:
            return [*render_site(frames), f"(in thread {thread_name!r})"]
    if not _tracking:
        return ["(creation site unknown: call chaosnet.leaks.track_creation_sites() first)"]
    return ["(no Python socket object owns it: created natively, detached, or before tracking)"]


# --------------------------------------------------------------------------- probes


class FdProbe:
    """Open file descriptors, sockets apart; identity is (fd, device, inode)."""

    def snapshot(self) -> Mapping[Hashable, Resource]:
        found: dict[Hashable, Resource] = {}
        for fd in _open_fds():
            try:
                info = os.fstat(fd)
            except OSError:  # closed since listed (e.g. the listing's own fd)
                continue
            kind = "socket" if stat.S_ISSOCK(info.st_mode) else "fd"
            key = (fd, info.st_dev, info.st_ino)
            found[key] = Resource(kind, key, fd=fd)
        return found

    def describe(self, resource: Resource) -> Leak:
        fd = resource.fd
        assert fd is not None
        if resource.kind == "socket":
            return Leak("socket", f"socket fd {fd}: {_socket_summary(fd)}", tuple(_socket_site(fd)))
        return Leak("fd", f"file descriptor {fd}: {_fd_target(fd)}")


def _open_fds() -> list[int]:
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            return sorted(int(name) for name in os.listdir(listing))
        except OSError:
            continue
    return []


def _fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "(target unknown)"


def _socket_summary(fd: int) -> str:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        return f"(closed while reporting: {exc.strerror})"
    try:
        family = getattr(sock.family, "name", str(sock.family))
        kind = getattr(sock.type, "name", str(sock.type))
        local = _sockname(sock.getsockname)
        peer = _sockname(sock.getpeername)
        return f"{family} {kind} {local} -> {peer}" if peer else f"{family} {kind} {local}"
    finally:
        sock.detach()


def _sockname(get: Callable[[], object]) -> str:
    try:
        name = get()
    except OSError:
        return ""
    if isinstance(name, tuple) and len(name) >= 2:
        return format_address(str(name[0]), int(name[1]))
    return repr(name) if name else "(unbound)"


class ThreadProbe:
    """Python threads, identified by their Thread object."""

    def snapshot(self) -> Mapping[Hashable, Resource]:
        return {t: Resource("thread", t, obj=t) for t in threading.enumerate() if t.is_alive()}

    def describe(self, resource: Resource) -> Leak:
        thread = resource.obj
        assert isinstance(thread, threading.Thread)
        flavour = "daemon thread" if thread.daemon else "thread"
        details: list[str] = []
        target = getattr(thread, "_target", None)  # private, but the best name for what runs
        code = getattr(target, "__code__", None)
        if code is not None:
            where = f"{_short_path(code.co_filename)}:{code.co_firstlineno}"
            details.append(f"runs {getattr(target, '__qualname__', '?')} ({where})")
        frame = sys._current_frames().get(thread.ident or -1)
        details.extend(render_site(_frames_from(frame), verb="now"))
        return Leak("thread", f"{flavour} {thread.name!r} (ident {thread.ident})", tuple(details))


class ChildProcessProbe:
    """Live (non-zombie) direct children, identified by (pid, start time)."""

    def snapshot(self) -> Mapping[Hashable, Resource]:
        found: dict[Hashable, Resource] = {}
        for pid in _child_pids():
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        continue
                    key = (pid, proc.create_time())
            except psutil.Error:
                continue
            found[key] = Resource("process", key, pid=pid)
        return found

    def describe(self, resource: Resource) -> Leak:
        pid = resource.pid
        assert pid is not None
        try:
            cmdline = tuple(psutil.Process(pid).cmdline())
        except psutil.Error:
            return Leak("process", f"child process {pid} (exited while reporting)")
        shown = " ".join(cmdline) or "?"
        return Leak("process", f"child process {pid}: {shown}", tuple(_popen_site(cmdline)))


def _child_pids() -> list[int]:
    try:
        pids: list[int] = []
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as children:
                pids.extend(int(pid) for pid in children.read().split())
        return pids
    except OSError:  # no /proc or no CONFIG_PROC_CHILDREN
        return [child.pid for child in psutil.Process().children()]


def _popen_site(cmdline: tuple[str, ...]) -> list[str]:
    for argv, frames in reversed(list(_popen_sites)):
        if cmdline and argv[-len(cmdline) :] == cmdline:  # a wrapper may exec the real argv
            return render_site(frames, verb="started")
    return []


class TaskProbe:
    """Pending tasks of one asyncio event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def snapshot(self) -> Mapping[Hashable, Resource]:
        tasks = asyncio.all_tasks(self._loop)
        return {t: Resource("task", t, obj=t) for t in tasks if not t.done()}

    def describe(self, resource: Resource) -> Leak:
        task = resource.obj
        assert isinstance(task, asyncio.Task)
        coro = task.get_coro()
        details = render_site(_await_chain(task), verb="now")
        source = getattr(task, "_source_traceback", None)  # set when the loop is in debug mode
        if source:
            frames = [(f.filename, f.lineno or 0, f.name) for f in reversed(source)]
            details.extend(render_site(frames))
        name = getattr(coro, "__qualname__", type(coro).__name__)
        return Leak("task", f"asyncio task {task.get_name()!r} running {name}", tuple(details))


_extra_probes: list[Callable[[], Probe]] = []


def register_probe(factory: Callable[[], Probe]) -> Callable[[], None]:
    """Add a probe family to every future ``LeakCheck`` (e.g. containers carrying our label).

    Returns a function that unregisters it.
    """
    _extra_probes.append(factory)
    return lambda: _extra_probes.remove(factory)


# --------------------------------------------------------------------------- exemptions


class Exemptions:
    """Things that are not leaks although they appear during a test: session servers and the
    like. Objects are held weakly when possible, so registering one does not keep it alive.
    """

    def __init__(self) -> None:
        self._weak: weakref.WeakSet[object] = weakref.WeakSet()
        self._strong: list[object] = []
        self._lock = threading.Lock()

    def add(self, *things: Exempt | ExemptFn) -> None:
        with self._lock:
            for thing in things:
                if isinstance(thing, Pid | Fd) or _is_plain_function(thing):
                    self._strong.append(thing)
                else:
                    self._weak.add(thing)

    def discard(self, thing: Exempt | ExemptFn) -> None:
        with self._lock:
            self._weak.discard(thing)
            if thing in self._strong:
                self._strong.remove(thing)

    def exempts(self, resource: Resource) -> bool:
        with self._lock:
            things = [*self._weak, *self._strong]
        return any(_matches(thing, resource) for thing in things)


def _is_plain_function(thing: object) -> bool:
    return callable(thing) and not isinstance(thing, Exemption | threading.Thread)


def _matches(thing: object, resource: Resource) -> bool:
    if isinstance(thing, Exemption):
        return thing.exempts(resource)
    if isinstance(thing, threading.Thread | asyncio.Task):
        return resource.obj is thing
    if isinstance(thing, socket.socket):
        return resource.kind == "socket" and resource.fd == thing.fileno()
    if isinstance(thing, Pid):
        return resource.pid == thing.pid
    if isinstance(thing, Fd):
        return resource.fd == thing.fd
    if callable(thing):
        return bool(thing(resource))
    return False


long_lived = Exemptions()
"""Process-wide exemptions: session-scope servers, an embedded proxy's threads, our spawner."""

# --------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class LeakReport:
    """What leaked, and how long the check waited for it to go away."""

    leaks: tuple[Leak, ...] = ()
    waited: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.leaks)

    def of_kind(self, kind: str) -> list[Leak]:
        return [leak for leak in self.leaks if leak.kind == kind]

    def render(self) -> str:
        if not self.leaks:
            return "no leaks"
        count = len(self.leaks)
        head = (
            f"{count} resource{'s' if count > 1 else ''} leaked "
            f"(still there after waiting {self.waited:.2f}s for them to close):"
        )
        return "\n".join([head, *(leak.render() for leak in self.leaks)])


class LeakError(AssertionError):
    """A leak check found leftovers; ``report`` lists them."""

    def __init__(self, report: LeakReport) -> None:
        self.report = report
        super().__init__(report.render())


@dataclass
class _Baseline:
    probe: Probe
    keys: set[Hashable] = field(default_factory=set)


class LeakCheck:
    """Snapshot at ``start``, compare at ``finish``; a context manager that asserts on exit.

    ``ignore`` adds exemptions for this check only; ``long_lived`` holds the
    process-wide ones.
    """

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        probes: Sequence[Probe] | None = None,
        ignore: Iterable[Exempt | ExemptFn] = (),
        settle: float = DEFAULT_SETTLE_S,
    ) -> None:
        track_creation_sites()
        if probes is None:
            probes = [FdProbe(), ThreadProbe(), ChildProcessProbe()]
            probes += [factory() for factory in _extra_probes]
        self._probes = list(probes)
        self._loop = loop
        self._settle = settle
        self._ignore = Exemptions()
        self._ignore.add(*ignore)
        self._baselines: list[_Baseline] = []

    def ignore(self, *things: Exempt | ExemptFn) -> None:
        self._ignore.add(*things)

    def start(self) -> None:
        probes = [*self._probes, *([TaskProbe(self._loop)] if self._loop else [])]
        self._baselines = [_Baseline(p, set(p.snapshot())) for p in probes]

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Also check this loop's tasks, from now on (e.g. once an async fixture made it)."""
        probe = TaskProbe(loop)
        self._baselines.append(_Baseline(probe, set(probe.snapshot())))

    def finish(self, *, settle: float | None = None) -> LeakReport:
        """Wait up to ``settle`` seconds for new resources to go away; report those left."""
        budget = self._settle if settle is None else settle
        started = time.monotonic()
        delay, collected = _POLL_START_S, False
        while True:
            leftovers = list(self._leftovers())
            waited = time.monotonic() - started
            if not leftovers:
                return LeakReport((), waited)
            if not collected:  # garbage (e.g. a socket in a reference cycle) is not a leak
                gc.collect()
                collected = True
                continue
            if waited >= budget:
                return LeakReport(tuple(probe.describe(r) for probe, r in leftovers), waited)
            time.sleep(min(delay, budget - waited))
            delay = min(delay * 2, _POLL_MAX_S)

    def assert_clean(self, *, settle: float | None = None) -> LeakReport:
        report = self.finish(settle=settle)
        if report:
            raise LeakError(report)
        return report

    def _leftovers(self) -> Iterator[tuple[Probe, Resource]]:
        for baseline in self._baselines:
            for key, resource in baseline.probe.snapshot().items():
                if key in baseline.keys:
                    continue
                if self._ignore.exempts(resource) or long_lived.exempts(resource):
                    continue
                yield baseline.probe, resource

    def __enter__(self) -> LeakCheck:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.assert_clean()
