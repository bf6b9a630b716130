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

A resource the code dropped without closing is a leak even when the garbage
collector closes it for the code (CPython finalizes an unclosed socket, file
or pipe and emits a ``ResourceWarning``, ignored by default). While a check
runs, those warnings are taken as leaks with the line that created the
resource and the place the collector finalized it; ``finish`` collects garbage
first, so a socket dropped in a reference cycle counts too.
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
import warnings
import weakref
from collections import OrderedDict, deque
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
Site = tuple[str, tuple[Frame, ...]]  # the creating thread's name, its stack
_MAX_FRAMES = 12
_KEEP_DEAD = 256


class _SiteTable:
    """Creation sites of live objects, by identity, kept a little while after they die.

    The garbage collector clears the weak references of a cycle before it runs
    the finalizers that warn about an unclosed socket, so a site is looked up by
    ``id`` among the recently dead too (the dying object still holds its id).
    """

    def __init__(self) -> None:
        self._live: dict[int, tuple[weakref.ref[object], Site]] = {}
        self._dead: OrderedDict[int, Site] = OrderedDict()
        self._lock = threading.RLock()  # a collection may run a callback inside ``add``

    def add(self, obj: object, site: Site) -> None:
        key = id(obj)

        def died(dead: weakref.ref[object]) -> None:
            self._died(key, dead)

        ref = weakref.ref(obj, died)
        with self._lock:
            self._live[key] = (ref, site)

    def _died(self, key: int, ref: weakref.ref[object]) -> None:
        with self._lock:
            entry = self._live.get(key)
            if entry is None or entry[0] is not ref:
                return
            del self._live[key]
            self._dead[key] = entry[1]
            while len(self._dead) > _KEEP_DEAD:
                self._dead.popitem(last=False)

    def of(self, obj: object) -> Site | None:
        with self._lock:
            entry = self._live.get(id(obj))
            if entry is not None and entry[0]() is obj:
                return entry[1]
            return self._dead.get(id(obj))

    def live(self) -> list[tuple[object, Site]]:
        with self._lock:
            entries = list(self._live.values())
        return [(obj, site) for ref, site in entries if (obj := ref()) is not None]


_socket_sites = _SiteTable()
_popen_sites: deque[tuple[tuple[str, ...], tuple[Frame, ...]]] = deque(maxlen=_KEEP_DEAD)
#: Where files (pipes too: their name is the fd) were opened, while a check listens.
_open_sites: OrderedDict[str | int, Site] = OrderedDict()
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
                _socket_sites.add(sock, (threading.current_thread().name, _stack()))
        elif event == "open" and _listeners and isinstance(args[0], str | int):
            _open_sites[args[0]] = (threading.current_thread().name, _stack())
            while len(_open_sites) > _KEEP_DEAD:
                _open_sites.popitem(last=False)
        elif event == "subprocess.Popen":
            argv = args[1]
            if isinstance(argv, list | tuple):
                _popen_sites.append((tuple(str(a) for a in argv), _stack()))
    except Exception:  # e.g. at interpreter shutdown, when modules are half torn down
        return


def frames_of(frame: FrameType | None) -> list[Frame]:
    """``frame`` and its callers, innermost first."""
    frames: list[Frame] = []
    while frame is not None and len(frames) < _MAX_FRAMES:
        frames.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    return frames


def _stack() -> tuple[Frame, ...]:
    """The caller's stack, innermost first, then the awaiting coroutines of the current task."""
    frames = frames_of(sys._getframe(2))
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


def _is_library(frame: Frame) -> bool:
    return frame[0].startswith(_LIBRARY_DIRS) or "<frozen" in frame[0]


def _user_frames(frames: Sequence[Frame], limit: int = 3) -> list[Frame]:
    """The innermost frames outside the standard library and chaosnet's own plumbing."""
    own = [f for f in frames if not _is_library(f)]
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


def _render_site_of(site: Site) -> list[str]:
    thread_name, frames = site
    return [*render_site(frames), f"(in thread {thread_name!r})"]


def _socket_site(fd: int) -> list[str]:
    for sock, site in _socket_sites.live():
        if isinstance(sock, socket.socket) and sock.fileno() == fd:
            return _render_site_of(site)
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
        details.extend(render_site(frames_of(frame), verb="now"))
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


# --------------------------------------------------------------------------- finalized unclosed

FinalizedListener = Callable[[Leak, Resource], None]
_listeners: tuple[FinalizedListener, ...] = ()
_listeners_lock = threading.Lock()
_ALWAYS = ("always", None, ResourceWarning, None, 0)
_hooked = False


def listen_for_finalized(listener: FinalizedListener) -> Callable[[], None]:
    """Call ``listener`` for every resource finalized unclosed from now on; returns the
    function that stops it.

    While anyone listens, ResourceWarnings are shown to nobody else (whatever the
    warning filters say, ``-W error`` included): each becomes a leak report instead.
    """
    global _listeners
    with _listeners_lock:
        _hook_warnings()
        _filter_always(True)  # again: a catch_warnings since the last one may have reset them
        _listeners = (*_listeners, listener)

    def stop() -> None:
        global _listeners
        with _listeners_lock:
            if listener in _listeners:
                rest = list(_listeners)
                rest.remove(listener)
                _listeners = tuple(rest)
                if not _listeners:
                    _filter_always(False)

    return stop


def _filter_always(on: bool) -> None:
    """Let ResourceWarnings through the filters (they are ignored by default)."""
    filters: list[object] = warnings.filters  # type: ignore[assignment]
    while _ALWAYS in filters:
        filters.remove(_ALWAYS)
    if on:
        filters.insert(0, _ALWAYS)
    warnings._filters_mutated()  # type: ignore[attr-defined]


def _hook_warnings() -> None:
    """Wrap ``warnings._showwarnmsg``, the one function every shown warning goes through
    (the C finalizers' too). ``catch_warnings`` swaps what it calls, not it, so the hook
    sees warnings inside pytest's per-test capture; others still reach that capture."""
    global _hooked
    if _hooked:
        return
    original = warnings._showwarnmsg  # type: ignore[attr-defined]

    def showwarnmsg(message: warnings.WarningMessage) -> None:
        if not _take_finalized(message):
            original(message)

    warnings._showwarnmsg = showwarnmsg  # type: ignore[attr-defined]
    _hooked = True


def _take_finalized(message: warnings.WarningMessage) -> bool:
    listeners = _listeners
    if not listeners or not issubclass(message.category, ResourceWarning):
        return False
    try:
        leak, resource = _describe_finalized(message)
    except Exception:  # never raise into a finalizer; say what we could
        leak = Leak("resource", f"finalized unclosed: {message.message}")
        resource = Resource("resource", ("finalized", id(message)))
    for listener in listeners:
        listener(leak, resource)
    return True


def _describe_finalized(message: warnings.WarningMessage) -> tuple[Leak, Resource]:
    source = message.source
    where = (
        "when the leak check collected garbage"
        if message.filename == __file__
        else f"at {_short_path(message.filename)}:{message.lineno}"
    )
    text = str(message.message)
    site: list[str] = []
    kind, fd, pid, internal = "resource", None, None, False
    if isinstance(source, socket.socket):
        kind, fd = "socket", source.fileno()
        found = _socket_sites.of(source)
        site = _render_site_of(found) if found else []
        internal = found is not None and all(_is_library(f) for f in found[1])
    elif source is not None and hasattr(source, "readable") and hasattr(source, "name"):
        kind = "file"
        found = _open_sites.get(source.name)
        site = _render_site_of(found) if found else []
    elif source is not None and hasattr(source, "args") and hasattr(source, "pid"):
        kind, pid = "process", source.pid
        args = source.args
        argv = (args,) if isinstance(args, str | bytes) else tuple(args)
        site = _popen_site(tuple(str(a) for a in argv))
    what = {"socket": "a socket", "file": "a file", "process": "a child process"}
    leak = Leak(
        kind,
        f"{what.get(kind, 'a resource')} was never closed; the garbage collector finalized it "
        f"({where}): {text}",
        tuple(site or ["(creation site unknown)"]),
    )
    # A socket made entirely by chaosnet's own plumbing (a control client's keep-alive
    # connection of a thread that ended) is chaosnet's, not the code under test's.
    key = ("finalized-internal" if internal else "finalized", id(source), time.monotonic())
    return leak, Resource(kind, key, fd=fd, pid=pid, obj=source)


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
        self._finalized: list[tuple[Leak, Resource]] = []
        self._stop_listening: Callable[[], None] | None = None

    def ignore(self, *things: Exempt | ExemptFn) -> None:
        self._ignore.add(*things)

    def start(self) -> None:
        probes = [*self._probes, *([TaskProbe(self._loop)] if self._loop else [])]
        gc.collect()  # garbage made before the check is not this check's leak
        self._baselines = [_Baseline(p, set(p.snapshot())) for p in probes]
        if self._stop_listening is None:
            self._stop_listening = listen_for_finalized(self._on_finalized)

    def _on_finalized(self, leak: Leak, resource: Resource) -> None:
        # Decided now: the fd is still open while its finalizer warns.
        if isinstance(resource.key, tuple) and resource.key[0] == "finalized-internal":
            return
        if not (self._ignore.exempts(resource) or long_lived.exempts(resource)):
            self._finalized.append((leak, Resource(resource.kind, resource.key, pid=resource.pid)))

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Also check this loop's tasks, from now on (e.g. once an async fixture made it)."""
        probe = TaskProbe(loop)
        self._baselines.append(_Baseline(probe, set(probe.snapshot())))

    def finish(self, *, settle: float | None = None) -> LeakReport:
        """Wait up to ``settle`` seconds for new resources to go away; report those left."""
        budget = self._settle if settle is None else settle
        started = time.monotonic()
        delay = _POLL_START_S
        gc.collect()  # a socket dropped in a reference cycle is finalized (and reported) now
        try:
            while True:
                leftovers = list(self._leftovers())
                waited = time.monotonic() - started
                if not leftovers or waited >= budget:
                    found = tuple(probe.describe(r) for probe, r in leftovers)
                    alive = {r.pid for _, r in leftovers if r.pid is not None}
                    return LeakReport((*self._take_finalized(alive), *found), waited)
                time.sleep(min(delay, budget - waited))
                delay = min(delay * 2, _POLL_MAX_S)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop taking finalized resources as this check's leaks (``finish`` does it)."""
        stop, self._stop_listening = self._stop_listening, None
        if stop is not None:
            stop()

    def _take_finalized(self, alive: set[int]) -> list[Leak]:
        """Finalized leaks, but not a Popen whose still-running child is reported anyway."""
        taken, self._finalized = self._finalized, []
        return [leak for leak, resource in taken if resource.pid not in alive]

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
