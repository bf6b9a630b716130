"""``ContainerServer``: a Docker container run as a real server, with ``ServerProcess``'s interface.

The same lifecycle and log calls as ``ServerProcess`` (``start``, ``stop``,
``kill``, ``restart``, ``pause``, ``resume``, ``address``, ``crashed``,
``check_alive``, ``log_text``, ``log_tail``, ``log_position``), so failure
reports and a scenario's timeline treat both alike.

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
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import RUN_CREATE_KWARGS, RUN_HOST_CONFIG_KWARGS

from chaosnet.leaks import Resource
from chaosnet.servers import ownership
from chaosnet.servers.docker_engine import DockerUnavailable, docker_client
from chaosnet.servers.errors import ServerCrashed, ServerError, ServerExitedEarly, ServerNotReady
from chaosnet.servers.lifecycle import start_again
from chaosnet.servers.process import (
    DEFAULT_READY_TIMEOUT_S,
    DEFAULT_STOP_GRACE_S,
    KILL_WAIT_S,
    LOG_TAIL_LINES,
    ArgvSpec,
    describe_exit,
    new_log_path,
    normalize_checks,
    validate_checks,
)
from chaosnet.servers.readiness import Address, Listening, ReadinessCheck, ReadinessContext

if TYPE_CHECKING:
    from docker import DockerClient

PORT_PROBE_TIMEOUT_S = 0.5
_POLL_START_S = 0.002
_POLL_MAX_S = 0.05
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
            f"cannot start container {name!r}: {address[0]}:{address[1]} is already taken "
            "(something else accepts connections there); no container was started",
            name=name,
        )


class ContainerServer:
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
        self.name = name or _image_name(image)
        self._command_spec = command
        self._command = self._command_for(address[1] if address else 0)
        self._address = address
        self._ready = normalize_checks(ready)
        validate_checks(self._ready, address, self.name)
        self._env = {str(k): str(v) for k, v in (env or {}).items()}
        self._entrypoint = list(entrypoint) if entrypoint is not None else None
        self._volumes = [
            f"{_host_source(host)}:{inside}" for host, inside in (volumes or {}).items()
        ]
        self._init = init
        self._options = _checked_options(options or {}, self.name)
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self._log_path = Path(log_path) if log_path is not None else None
        self._container_id: str | None = None
        self._pid = 0
        self._exit: int | None = None
        self._vanished = False
        self._started = False
        self._stop_requested = False
        self._paused = False
        self._log_offset = 0
        self._log_copied = 0
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()

    # ----------------------------------------------------------------- properties

    @property
    def address(self) -> Address:
        """(host, port) the server listens on; known once ready (or given)."""
        if self._address is None:
            raise ServerError(f"container {self.name!r} has no known address yet", name=self.name)
        return self._address

    @property
    def container_id(self) -> str | None:
        """The current container's id; None before a start and after a stop."""
        return self._container_id

    @property
    def pid(self) -> int:
        """The host pid of the container's first process (docker-init with ``init``)."""
        if not self._started:
            raise ServerError(f"container {self.name!r} was never started", name=self.name)
        return self._pid

    @property
    def argv(self) -> list[str]:
        """The command of the current (or last) container; empty for the image's default."""
        return list(self._command or [])

    @property
    def returncode(self) -> int | None:
        """The exit status once exited (negative: killed by that signal), else None."""
        self._refresh_state()
        return self._exit

    @property
    def running(self) -> bool:
        return self._refresh_state()

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    @property
    def crashed(self) -> bool:
        """It exited although nobody asked it to stop: the test that was running should fail."""
        return self._started and not self._stop_requested and not self._refresh_state()

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            self._log_path = new_log_path(self.name)
        return self._log_path

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> ContainerServer:
        """Create and start the container, wait until ready; raises a ServerError otherwise."""
        with self._lock:
            with docker_client(f"start container {self.name!r}") as client:
                if self._container_id is not None:
                    if self._state_with(client):
                        raise ServerError(
                            f"container {self.name!r} is already running", name=self.name
                        )
                    self._terminate(client, grace=0)  # a crashed one: keep its log, drop it
                self._command = self._command_for(self._address[1] if self._address else 0)
                _require_image(client, self.image, self.name)
                self._require_free_port()
                self._launch(client)
                try:
                    self._wait_ready(client)
                except BaseException:
                    self._stop_requested = True  # a failed start is reported, not a crash
                    self._terminate(client, grace=0)
                    raise
            return self

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM, SIGKILL after ``grace`` seconds, then remove the container; its exit status."""
        with self._lock:
            if self._container_id is None:
                return self._exit
            with docker_client(f"stop container {self.name!r}") as client:
                if self._state_with(client):  # stopping a dead server does not hide its crash
                    self._stop_requested = True
                self._terminate(client, self.stop_grace if grace is None else grace)
            self._mark(f"stopped (exit status {self._exit})")
            return self._exit

    def kill(self) -> int | None:
        """SIGKILL at once (a crash on purpose), then remove the container; its exit status."""
        return self.stop(grace=0)

    def restart(self, grace: float | None = None) -> ContainerServer:
        """Stop, then start a new container on the same address."""
        with self._lock:
            before = self._address
            self.stop(grace)
            start_again(
                self,
                before,
                kind="container",
                hint="pass the command as a function of the port to restart on the same address",
            )
            return self

    def pause(self) -> None:
        """Freeze every process of the container (``docker pause``): connections still queue
        in the backlog, nothing answers."""
        with self._lock:
            cid = self._require_running("pause")
            with docker_client(f"pause container {self.name!r}") as client:
                client.api.pause(cid)
            self._paused = True

    def resume(self) -> None:
        """Thaw the container after ``pause``."""
        with self._lock:
            cid = self._require_running("resume")
            with docker_client(f"resume container {self.name!r}") as client:
                client.api.unpause(cid)
            self._paused = False

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the container to exit by itself; its exit
        status, or None if it is still running."""
        if not self._started:
            raise ServerError(f"container {self.name!r} was never started", name=self.name)
        cid = self._container_id
        if cid is None:
            return self._exit
        with docker_client(f"wait for container {self.name!r}") as client:
            _wait(client, cid, timeout)
            return None if self._state_with(client) else self._exit

    def check_alive(self) -> None:
        """Raise ServerCrashed if the container stopped without being asked to."""
        if not self.crashed:
            return
        if self._vanished:
            what = "was removed outside chaosnet"
        else:
            what = describe_exit(self._exit) if self._exit is not None else "stopped"
        raise ServerCrashed(
            f"container {self.name!r} (image {self.image}) {what} unexpectedly",
            name=self.name,
            returncode=self._exit if self._exit is not None else -1,
            log_tail=self.log_tail(),
        )

    # ----------------------------------------------------------------- logs

    def log_position(self) -> int:
        """The log's current size: pass it to ``log_text(since=...)`` later to get what a
        session-long server wrote during one test only.
        """
        self._refresh_log()
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        """The container's stdout and stderr, with our start/stop lines, from byte ``since``."""
        self._refresh_log()
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
        """For ``chaosnet.leaks.long_lived.add(server)``: its container is not a leak."""
        return resource.kind == "container" and resource.key == self._container_id

    # ----------------------------------------------------------------- context manager

    def __enter__(self) -> ContainerServer:
        if self._container_id is None:
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
        cid = f" {self._container_id[:12]}" if self._container_id else " (no container)"
        return f"<ContainerServer {self.name!r} {self.image}{cid}{where}>"

    # ----------------------------------------------------------------- internals

    def _command_for(self, port: int) -> list[str] | None:
        spec = self._command_spec
        if spec is None:
            return None
        return [str(a) for a in (spec(port) if callable(spec) else spec)]

    def _describe_command(self) -> str:
        if self._command is None:
            shown = "(the image's CMD)"
        else:
            shown = shlex.join(self._command) or "(none)"
        if self._entrypoint is not None:
            shown = f"{shown} (entrypoint: {shlex.join(self._entrypoint)})"
        return f"image {self.image}, command: {shown}"

    def _require_free_port(self) -> None:
        """With host networking a taken port would let a readiness check pass on someone
        else's listener: refuse before starting anything."""
        if self._address is None or self._address[1] == 0:
            return
        try:
            with socket.create_connection(self._address, timeout=PORT_PROBE_TIMEOUT_S):
                pass
        except OSError:
            return
        raise PortInUse(self._address, name=self.name)

    def _launch(self, client: DockerClient) -> None:
        self._mark(f"starting container: {self._describe_command()}")
        ownership.note_created()
        try:
            container = client.containers.create(
                self.image,
                command=self._command,
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
                f"cannot create container {self.name!r} ({self._describe_command()}): "
                f"{_explain(exc)}",
                name=self.name,
            ) from None
        cid = str(container.id)
        with _owned_lock:
            _owned[cid] = os.getpid()
        self._container_id, self._exit, self._vanished = cid, None, False
        self._started, self._stop_requested, self._paused = True, False, False
        self._log_copied, self._log_offset = 0, self.log_path.stat().st_size
        try:
            client.api.start(cid)
        except APIError as exc:  # e.g. the command does not exist in the image
            self._stop_requested = True
            self._terminate(client, grace=0)
            code = self._exit if self._exit is not None else -1
            raise ServerExitedEarly(
                f"container {self.name!r} could not start ({self._describe_command()}): "
                f"{_explain(exc)}",
                name=self.name,
                returncode=code,
                log_tail=self._tail_now(client),
            ) from None
        self._pid = int(client.api.inspect_container(cid)["State"].get("Pid") or 0)

    def _wait_ready(self, client: DockerClient) -> None:
        ctx = ReadinessContext(
            self.log_path,
            self._log_offset,
            self._address,
            self._pid,
            refresh_log=lambda: self._sync_log(client),
        )
        if any(isinstance(check, Listening) for check in self._ready):
            self._require_visible_processes(client)
        deadline = time.monotonic() + self.ready_timeout
        delay = _POLL_START_S
        for check in self._ready:
            while True:
                self._raise_if_exited(client, check.describe())
                if check.poll(ctx):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServerNotReady(
                        f"container {self.name!r} was not ready within {self.ready_timeout:g}s: "
                        f"still waiting for {check.describe()}; {self._describe_command()}",
                        name=self.name,
                        timeout=self.ready_timeout,
                        log_tail=self._tail_now(client),
                    )
                time.sleep(min(delay, left))
                delay = min(delay * 2, _POLL_MAX_S)
        self._raise_if_exited(client, "its readiness checks to stay true")
        self._address = ctx.address

    def _raise_if_exited(self, client: DockerClient, waiting_for: str) -> None:
        if self._state_with(client):
            return
        code = self._exit if self._exit is not None else -1
        raise ServerExitedEarly(
            f"container {self.name!r} {describe_exit(code)} before it was ready "
            f"(waiting for {waiting_for}); {self._describe_command()}",
            name=self.name,
            returncode=code,
            log_tail=self._tail_now(client),
        )

    def _require_visible_processes(self, client: DockerClient) -> None:
        """``Listening`` reads the container's sockets through its processes on this host."""
        try:
            os.listdir(f"/proc/{self._pid}/fd")
            return
        except PermissionError:
            why = f"no permission to inspect its process (pid {self._pid}; run as root or use "
            why += "rootless Docker)"
        except FileNotFoundError:
            if not self._state_with(client):
                return  # it exited: the readiness loop reports that, with the log
            why = f"its process (pid {self._pid}) is not visible here (a Docker VM?)"
        raise ServerError(
            f"cannot learn which port container {self.name!r} listens on: {why}; give it a "
            "fixed address, or a LogLine check capturing (?P<port>...) instead of Listening",
            name=self.name,
        )

    def _state_with(self, client: DockerClient) -> bool:
        """Whether the current container runs; records its exit status when it does not."""
        cid = self._container_id
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

    def _refresh_state(self) -> bool:
        if self._container_id is None:
            return False
        try:
            with docker_client(f"inspect container {self.name!r}") as client:
                return self._state_with(client)
        except DockerUnavailable:
            return False

    def _terminate(self, client: DockerClient, grace: float) -> None:
        """TERM (thawing a paused container first), KILL what is left, then remove it."""
        cid = self._container_id
        if cid is None:
            return
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

    def _forget(self) -> None:
        cid, self._container_id = self._container_id, None
        self._paused = False
        if cid is not None:
            with _owned_lock:
                _owned.pop(cid, None)

    def _require_running(self, action: str) -> str:
        cid = self._container_id
        if cid is None or not self.running:
            raise ServerError(
                f"cannot {action} container {self.name!r}: not running", name=self.name
            )
        return cid

    def _sync_log(self, client: DockerClient) -> None:
        """Append to our file what the container wrote since the last copy."""
        with self._log_lock:
            cid = self._container_id
            if cid is None:
                return
            try:
                data = client.api.logs(cid, stdout=True, stderr=True)
            except NotFound:
                return
            new = data[self._log_copied :]
            if new:
                with self.log_path.open("ab") as log:
                    log.write(new)
                self._log_copied = len(data)

    def _refresh_log(self) -> None:
        if self._container_id is None:
            return
        try:
            with docker_client(f"read the log of container {self.name!r}") as client:
                self._sync_log(client)
        except (DockerUnavailable, DockerException, requests.RequestException):
            return  # the engine went away: report what we copied so far

    def _tail_now(self, client: DockerClient) -> str:
        self._sync_log(client)
        try:
            text = self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])

    def _mark(self, event: str) -> None:
        """A line of our own in the log, so a restart or a stop reads clearly in a report."""
        stamp = time.strftime("%H:%M:%S")
        with self._log_lock, self.log_path.open("ab") as log:
            log.write(f"[chaosnet {stamp}] {self.name}: {event}\n".encode())


def _require_image(client: DockerClient, image: str, name: str) -> None:
    try:
        client.images.get(image)
    except ImageNotFound:
        raise ImageMissing(image, name=name) from None


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
