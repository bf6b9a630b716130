"""``ContainerServer``: a Docker container run as a real server; ``ContainerDriver`` runs it.

The lifecycle is ``ManagedServer``'s, the same as ``ServerProcess``'s (``start``,
``stop``, ``kill``, ``restart``, ``pause``, ``resume``, ``address``, ``crashed``,
``check_alive``, the log), so failure reports and a scenario's timeline treat
both alike. This module only talks to the engine.

- **Host networking.** The container shares the host's network and its server
  binds 127.0.0.1 like a local process: no bridge, no published port. Its
  "port" is the one its process binds. Port 0 works with a ``LogLine`` that
  captures the port, or ``Listening``, which reads the container's processes
  on this host (that needs root or rootless Docker: checked, with a clear error).
- **One container per start.** ``start`` creates a container from the image
  (with the command for the port: a restart comes back on the same address);
  ``stop`` removes it once its log is copied. A stopped server leaves no
  container behind, and files written inside do not survive a restart, as a
  process's memory does not: mount a volume for state that must.
- **Logs.** stdout and stderr are copied from the engine into a local file on
  demand (readiness, ``log_text``...), with our start and stop lines, and the
  file outlives the container, for a failed test's report.
- **Ownership.** Every container carries the labels of ``ownership``: what a
  killed run leaves is removed by ``reap_orphans`` when the next one starts,
  and whatever is left at interpreter exit is removed then.
- **Bad input.** Nothing is pulled. A missing image, a taken port, a container
  that exits or never gets ready, an engine that is not running: each raises a
  ``ServerError`` subclass (``DockerUnavailable`` for the engine) naming the
  container, with its log's last lines, and the container is removed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import RUN_CREATE_KWARGS, RUN_HOST_CONFIG_KWARGS

from chaosnet.address import Address, format_address
from chaosnet.leaks import Resource
from chaosnet.servers import ownership
from chaosnet.servers.docker_engine import DockerUnavailable, docker_client
from chaosnet.servers.errors import ServerError, ServerExitedEarly
from chaosnet.servers.lifecycle import (
    DEFAULT_READY_TIMEOUT_S,
    DEFAULT_STOP_GRACE_S,
    KILL_WAIT_S,
    ArgvSpec,
    ManagedServer,
    describe_exit,
)
from chaosnet.servers.logs import ServerLog
from chaosnet.servers.readiness import Listening, ReadinessCheck

if TYPE_CHECKING:
    from docker import DockerClient

PORT_PROBE_TIMEOUT_S = 0.5
#: docker-run options chaosnet sets itself: passing them in ``options`` is a mistake.
_RESERVED_OPTIONS = frozenset(
    {
        "image",
        "command",
        "entrypoint",
        "environment",
        "init",
        "volumes",
        "name",
        "labels",
        "detach",
        "auto_remove",
        "remove",
        "network",
        "network_mode",
        "ports",
        "publish_all_ports",
    }
)

ownership.register_leak_probe()  # a container a test leaves running is a leak

# Container id -> pid of the process that created it: what is still there at that process's
# exit is removed then (a forked child exiting must not remove its parent's containers).
_owned: dict[str, int] = {}
_owned_lock = threading.Lock()


class ImageMissing(ServerError):
    """The image is not present locally; chaosnet never pulls one."""

    def __init__(self, image: str, *, name: str) -> None:
        self.image = image
        super().__init__(
            f"cannot start container {name!r}: image {image!r} is not present locally, and "
            f"chaosnet does not pull images; pull it first:\n    docker pull {image}",
            name=name,
        )


class PortInUse(ServerError):
    """The address the container's server must bind already accepts connections."""

    def __init__(self, address: Address, *, name: str) -> None:
        self.address = address
        super().__init__(
            f"cannot start container {name!r}: {format_address(*address)} is already taken "
            "(something else accepts connections there); no container was started",
            name=name,
        )


class ContainerServer(ManagedServer):
    """A real server in a Docker container. ``start()`` returns once it is ready.

    ``command`` replaces the image's CMD (None keeps it); like ``ServerProcess``'s
    argv it may be a function of the port to bind (0 at the first start, the
    port learnt on a restart). ``ready`` defaults to the port accepting
    connections, which needs ``address``. ``volumes`` maps a host path (or a named
    volume) to ``/path/inside[:ro]``. ``options`` passes further ``docker run``
    options (``user``, ``working_dir``, ``tmpfs``...) to the SDK.
    """

    def __init__(
        self,
        image: str,
        command: ArgvSpec | None = None,
        *,
        name: str | None = None,
        address: Address | None = None,
        ready: ReadinessCheck | Sequence[ReadinessCheck] | None = None,
        env: Mapping[str, str] | None = None,
        entrypoint: Sequence[str] | None = None,
        volumes: Mapping[str, str] | None = None,
        init: bool = True,
        ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
        stop_grace: float = DEFAULT_STOP_GRACE_S,
        log_path: str | os.PathLike[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if not image:
            raise ValueError("ContainerServer needs an image")
        self.image = image
        name = name or _image_name(image)
        log = ServerLog(name, log_path)
        self._container = ContainerDriver(
            image,
            name=name,
            log=log,
            env=env,
            entrypoint=entrypoint,
            volumes=volumes,
            init=init,
            options=options,
        )
        super().__init__(
            self._container,
            command,
            name=name,
            address=address,
            ready=ready,
            ready_timeout=ready_timeout,
            stop_grace=stop_grace,
            log=log,
        )

    @property
    def container_id(self) -> str | None:
        """The current container's id; None before a start and after a stop."""
        return self._container.container_id

    @property
    def pid(self) -> int:
        """The host pid of the container's first process (docker-init with ``init``)."""
        return super().pid


class ContainerDriver:
    """Runs one container at a time with host networking; see ``ManagedServer``.

    Each batch of engine calls (a ``session``) shares one short-lived SDK client,
    kept per thread: between calls a container costs this process no socket.
    """

    label: ClassVar[str] = "container"
    command_noun: ClassVar[str] = "the command"
    failed_start_grace: ClassVar[float] = 0.0

    def __init__(
        self,
        image: str,
        *,
        name: str,
        log: ServerLog,
        env: Mapping[str, str] | None,
        entrypoint: Sequence[str] | None,
        volumes: Mapping[str, str] | None,
        init: bool,
        options: Mapping[str, Any] | None,
    ) -> None:
        self.image = image
        self.name = name
        self._log = log
        log.refresh = self.refresh_log
        self._env = {str(k): str(v) for k, v in (env or {}).items()}
        self._entrypoint = list(entrypoint) if entrypoint is not None else None
        self._volumes = [
            f"{_host_source(host)}:{inside}" for host, inside in (volumes or {}).items()
        ]
        self._init = init
        self._options = _checked_options(options or {}, name)
        self.container_id: str | None = None
        self._pid = 0
        self._exit: int | None = None
        self._vanished = False
        self._log_copied = 0
        self._sync_lock = threading.Lock()
        self._local = threading.local()

    # ----------------------------------------------------------------- engine sessions

    @contextlib.contextmanager
    def session(self, purpose: str) -> Iterator[DockerClient]:
        """The current thread's client, or a new one for the calls inside."""
        current: DockerClient | None = getattr(self._local, "client", None)
        if current is not None:
            yield current
            return
        with docker_client(purpose) as client:
            self._local.client = client
            try:
                yield client
            finally:
                self._local.client = None

    # ----------------------------------------------------------------- the Driver interface

    def describe(self, argv: list[str] | None) -> str:
        shown = "(the image's CMD)" if argv is None else shlex.join(argv) or "(none)"
        if self._entrypoint is not None:
            shown = f"{shown} (entrypoint: {shlex.join(self._entrypoint)})"
        return f"image {self.image}, command: {shown}"

    def prepare(self, argv: list[str] | None, address: Address | None) -> None:
        with self.session(f"start container {self.name!r}") as client:
            try:
                client.images.get(self.image)
            except ImageNotFound:
                raise ImageMissing(self.image, name=self.name) from None
        _require_free_port(address, self.name)

    def launch(self, argv: list[str] | None, log: ServerLog) -> None:
        with self.session(f"start container {self.name!r}") as client:
            ownership.note_created()
            try:
                container = client.containers.create(
                    self.image,
                    command=argv,
                    entrypoint=self._entrypoint,
                    environment=self._env,
                    labels=ownership.labels_for(self.name),
                    name=_container_name(self.name),
                    network_mode="host",
                    init=self._init,
                    volumes=self._volumes,
                    detach=True,
                    **self._options,
                )
            except ImageNotFound:
                raise ImageMissing(self.image, name=self.name) from None
            except APIError as exc:
                raise ServerError(
                    f"cannot create container {self.name!r} ({self.describe(argv)}): "
                    f"{_explain(exc)}",
                    name=self.name,
                ) from None
            cid = str(container.id)
            with _owned_lock:
                _owned[cid] = os.getpid()
            self.container_id, self._exit, self._vanished, self._log_copied = cid, None, False, 0
            try:
                client.api.start(cid)
            except APIError as exc:  # e.g. the command does not exist in the image
                self.terminate(grace=0)
                raise ServerExitedEarly(
                    f"container {self.name!r} could not start ({self.describe(argv)}): "
                    f"{_explain(exc)}",
                    name=self.name,
                    returncode=self._exit if self._exit is not None else -1,
                    log_tail=log.tail(),
                ) from None
            self._pid = int(client.api.inspect_container(cid)["State"].get("Pid") or 0)

    def before_ready(self, checks: Sequence[ReadinessCheck]) -> None:
        """``Listening`` reads the container's sockets through its processes on this host."""
        if not any(isinstance(check, Listening) for check in checks):
            return
        try:
            os.listdir(f"/proc/{self._pid}/fd")
            return
        except PermissionError:
            why = f"no permission to inspect its process (pid {self._pid}; run as root or use "
            why += "rootless Docker)"
        except FileNotFoundError:
            if not self.running():
                return  # it exited: the readiness loop reports that, with the log
            why = f"its process (pid {self._pid}) is not visible here (a Docker VM?)"
        raise ServerError(
            f"cannot learn which port container {self.name!r} listens on: {why}; give it a "
            "fixed address, or a LogLine check capturing (?P<port>...) instead of Listening",
            name=self.name,
        )

    def exists(self) -> bool:
        return self.container_id is not None

    def running(self) -> bool:
        """Whether the current container runs; records its exit status when it does not.
        An engine that does not answer counts as "not running"."""
        if self.container_id is None:
            return False
        try:
            with self.session(f"inspect container {self.name!r}") as client:
                return self._state_with(client)
        except DockerUnavailable:
            return False

    def returncode(self) -> int | None:
        return None if self.running() else self._exit

    def how_it_ended(self) -> str:
        if self._vanished:
            return "was removed outside chaosnet"
        return describe_exit(self._exit) if self._exit is not None else "stopped"

    @property
    def pid(self) -> int:
        return self._pid

    def discard(self) -> None:
        self.terminate(grace=0)  # a crashed one: keep its log, drop the container

    def terminate(self, grace: float) -> None:
        """TERM (thawing a paused container first), KILL what is left, then remove it."""
        cid = self.container_id
        if cid is None:
            return
        with self.session(f"stop container {self.name!r}") as client:
            try:
                state = client.api.inspect_container(cid)["State"]
            except NotFound:
                self._forget()
                return
            if state.get("Paused"):
                client.api.unpause(cid)  # a frozen process cannot act on a signal
            if state.get("Running"):
                exited = grace > 0 and _signal(client, cid, "SIGTERM") and _wait(client, cid, grace)
                if not exited:
                    _signal(client, cid, "SIGKILL")
                    if not _wait(client, cid, KILL_WAIT_S):
                        raise ServerError(
                            f"container {self.name!r} survived SIGKILL for {KILL_WAIT_S:g}s",
                            name=self.name,
                        )
            self._state_with(client)
            self._sync_log(client)
            with contextlib.suppress(NotFound):
                client.api.remove_container(cid, force=True, v=True)
            self._forget()

    def pause(self) -> None:
        """``docker pause``: every process of the container frozen."""
        with self.session(f"pause container {self.name!r}") as client:
            client.api.pause(self._current())

    def resume(self) -> None:
        with self.session(f"resume container {self.name!r}") as client:
            client.api.unpause(self._current())

    def wait(self, timeout: float) -> None:
        cid = self.container_id
        if cid is not None:
            with self.session(f"wait for container {self.name!r}") as client:
                _wait(client, cid, timeout)

    def exempts(self, resource: Resource) -> bool:
        return resource.kind == "container" and resource.key == self.container_id

    def summary(self) -> str:
        cid = f" {self.container_id[:12]}" if self.container_id else ""
        return f"image {self.image}{cid}"

    def refresh_log(self) -> None:
        """Copy into the log what the container wrote since the last copy; an engine gone
        away leaves the log as copied so far."""
        if self.container_id is None:
            return
        try:
            with self.session(f"read the log of container {self.name!r}") as client:
                self._sync_log(client)
        except (DockerUnavailable, DockerException, requests.RequestException):
            return

    # ----------------------------------------------------------------- internals

    def _state_with(self, client: DockerClient) -> bool:
        cid = self.container_id
        if cid is None:
            return False
        try:
            state = client.api.inspect_container(cid)["State"]
        except NotFound:
            self._vanished = True
            self._forget()
            return False
        if state.get("Running"):
            return True
        self._exit = _returncode(int(state.get("ExitCode", -1)))
        return False

    def _sync_log(self, client: DockerClient) -> None:
        with self._sync_lock:
            cid = self.container_id
            if cid is None:
                return
            try:
                data = client.api.logs(cid, stdout=True, stderr=True)
            except NotFound:
                return
            new = data[self._log_copied :]
            if new:
                self._log.append(new)
                self._log_copied = len(data)

    def _current(self) -> str:
        if self.container_id is None:
            raise ServerError(f"container {self.name!r} is not running", name=self.name)
        return self.container_id

    def _forget(self) -> None:
        cid, self.container_id = self.container_id, None
        if cid is not None:
            with _owned_lock:
                _owned.pop(cid, None)


def _require_free_port(address: Address | None, name: str) -> None:
    """With host networking a taken port would let a readiness check pass on someone
    else's listener: refuse before starting anything."""
    if address is None or address[1] == 0:
        return
    try:
        with socket.create_connection(address, timeout=PORT_PROBE_TIMEOUT_S):
            pass
    except OSError:
        return
    raise PortInUse(address, name=name)


def _signal(client: DockerClient, cid: str, signal_name: str) -> bool:
    """Send a signal to the container's first process; False if it is not running."""
    try:
        client.api.kill(cid, signal=signal_name)
    except APIError:  # exited meanwhile: 409 "is not running"
        return False
    return True


def _wait(client: DockerClient, cid: str, timeout: float) -> bool:
    """Block (on the engine, not a poll loop) until the container exits, at most ``timeout``."""
    try:
        # The SDK hands the timeout to requests, which takes a float (its stub says int).
        client.api.wait(cid, timeout=max(timeout, 0.01))  # type: ignore[arg-type]
    except requests.RequestException:  # the read timed out: still running
        return False
    except NotFound:
        return True
    return True


def _returncode(exit_code: int) -> int:
    """Docker reports a death by signal N as 128 + N; like ``subprocess``, we say -N."""
    return -(exit_code - 128) if 128 < exit_code <= 128 + 64 else exit_code


def _explain(exc: APIError) -> str:
    return str(exc.explanation or exc).strip()


def _host_source(source: str) -> str:
    """A host path made absolute (Docker reads a relative one as a volume name); a named
    volume as is."""
    return os.path.abspath(source) if source.startswith(".") or os.sep in source else source


def _image_name(image: str) -> str:
    """``ghcr.io/shopify/toxiproxy:2.12.0`` -> ``toxiproxy``."""
    last = image.split("@")[0].rsplit("/", 1)[-1]
    return last.split(":")[0] or image


def _container_name(server: str) -> str:
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in server).strip("-.") or "server"
    return f"chaosnet-{safe[:40]}-{uuid.uuid4().hex[:8]}"


def _checked_options(options: Mapping[str, Any], name: str) -> dict[str, Any]:
    reserved = sorted(_RESERVED_OPTIONS.intersection(options))
    if reserved:
        raise ValueError(
            f"container {name!r}: chaosnet sets {', '.join(reserved)} itself (containers use the "
            "host network and bind loopback; use command=, env=, entrypoint=, volumes=)"
        )
    known = set(RUN_CREATE_KWARGS) | set(RUN_HOST_CONFIG_KWARGS)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"container {name!r}: unknown docker run option(s): {', '.join(unknown)}")
    return dict(options)


@atexit.register
def _at_exit() -> None:
    """A container still ours at interpreter exit is removed, not left running."""
    with _owned_lock:
        leftovers = [cid for cid, pid in _owned.items() if pid == os.getpid()]
        _owned.clear()
    if not leftovers:
        return
    try:
        with docker_client("remove containers at exit") as client:
            for cid in leftovers:
                try:
                    client.api.remove_container(cid, force=True, v=True)
                except DockerException:
                    continue
    except DockerUnavailable:
        return
