"""Which process owns a container: the labels chaosnet puts on each, and what follows from them.

Every container chaosnet starts carries

- ``chaosnet.run``: the run's id (``CHAOSNET_RUN_ID`` when set, so xdist workers share it);
- ``chaosnet.owner``: ``host/boot-id/pid/start-time`` of the process that started it;
- ``chaosnet.server``: the server's name, for humans reading ``docker ps``.

A process that dies by SIGKILL cannot remove its containers, and the engine has
no "die with the client" switch. So ``reap_orphans`` (the pytest plugin and
``chaosnet run`` call it at start) removes every labelled container whose owner
is gone: its pid no longer exists on this host, or exists with another start
time (a reused pid), or the host has rebooted since. Containers of live owners
(a parallel run, a sibling xdist worker) and of other hosts sharing a remote
engine are left alone.

``ContainerProbe`` shows the leak check the containers this process owns; it
costs nothing until this process has created one.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from chaosnet import leaks
from chaosnet.servers.docker_engine import DockerUnavailable, docker_client, local_engine_absent

RUN_LABEL = "chaosnet.run"
OWNER_LABEL = "chaosnet.owner"
SERVER_LABEL = "chaosnet.server"
RUN_ID_ENV = "CHAOSNET_RUN_ID"

_state_lock = threading.Lock()
_run_id: str | None = None
_owner: tuple[int, Owner] | None = None
_created_here = False
_probe_registered = False


@dataclass(frozen=True)
class Owner:
    """A process, identified across pid reuse and reboots."""

    host: str
    boot: str
    pid: int
    started: str

    @classmethod
    def current(cls) -> Owner:
        """This process (recomputed after a fork: the child is another owner)."""
        global _owner
        pid = os.getpid()
        with _state_lock:
            if _owner is None or _owner[0] != pid:
                _owner = (pid, cls(socket.gethostname(), _boot_id(), pid, _start_time(pid)))
            return _owner[1]

    @classmethod
    def parse(cls, token: str) -> Owner | None:
        parts = token.split("/")
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])

    @property
    def token(self) -> str:
        return f"{self.host}/{self.boot}/{self.pid}/{self.started}"

    def alive(self) -> bool | None:
        """Whether the owner still runs; None when it ran on another host (we cannot tell)."""
        here = Owner.current()
        if self.host != here.host:
            return None
        if self.boot != here.boot:
            return False
        try:
            return _start_time(self.pid) == self.started
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:  # exists, but not ours to inspect
            return True


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot:
            return boot.read().strip()
    except OSError:
        return f"boot-{psutil.boot_time():.0f}"


def _start_time(pid: int) -> str:
    return f"{psutil.Process(pid).create_time():.2f}"


def run_id() -> str:
    """This run's id: ``CHAOSNET_RUN_ID`` if set, else one made up for this process."""
    global _run_id
    with _state_lock:
        if _run_id is None:
            _run_id = os.environ.get(RUN_ID_ENV) or uuid.uuid4().hex[:12]
        return _run_id


def labels_for(server: str) -> dict[str, str]:
    """The labels of a container this process is about to create."""
    return {RUN_LABEL: run_id(), OWNER_LABEL: Owner.current().token, SERVER_LABEL: server}


def note_created() -> None:
    """Called before creating a container: from now on the leak probe asks the engine."""
    global _created_here
    _created_here = True


def created_any() -> bool:
    """Whether this process ever created a container (if not, it owns none)."""
    return _created_here


def labelled_containers(*, mine_only: bool = True) -> list[dict[str, Any]]:
    """Containers carrying chaosnet's labels (this process's, or everyone's), any state,
    as the engine lists them (``Id``, ``Names``, ``Image``, ``State``, ``Labels``...).
    """
    label = f"{OWNER_LABEL}={Owner.current().token}" if mine_only else OWNER_LABEL
    with docker_client("list chaosnet's containers") as client:
        found: list[dict[str, Any]] = client.api.containers(all=True, filters={"label": label})
    return found


def reap_orphans() -> list[str]:
    """Remove labelled containers whose owning process is gone; their names.

    Silent and cheap when there is no engine: no leftover can exist where no
    container can run. Safe to call from many processes at once.
    """
    if local_engine_absent():
        return []
    from docker.errors import DockerException

    removed: list[str] = []
    try:
        with docker_client("remove containers left by dead chaosnet runs") as client:
            listed = client.api.containers(all=True, filters={"label": OWNER_LABEL})
            for container in listed:
                owner = Owner.parse(container.get("Labels", {}).get(OWNER_LABEL, ""))
                if owner is None or owner.alive() is not False:
                    continue
                try:
                    client.api.remove_container(container["Id"], force=True, v=True)
                except DockerException:  # already gone: another run reaped it first
                    continue
                removed.append(_container_name(container))
    except DockerUnavailable:
        return removed
    return removed


def _container_name(container: Mapping[str, Any]) -> str:
    names = container.get("Names") or []
    return str(names[0]).lstrip("/") if names else str(container["Id"])[:12]


class ContainerProbe:
    """Leak-check probe: the containers (any state) this process owns."""

    def snapshot(self) -> Mapping[Hashable, leaks.Resource]:
        if not _created_here:
            return {}
        try:
            found = labelled_containers()
        except DockerUnavailable:
            return {}
        return {c["Id"]: leaks.Resource("container", c["Id"], obj=_summary(c)) for c in found}

    def describe(self, resource: leaks.Resource) -> leaks.Leak:
        summary = resource.obj if isinstance(resource.obj, str) else str(resource.key)[:12]
        return leaks.Leak(
            "container",
            f"container {summary}",
            ("stop it (server.stop(), or use it as a context manager) to remove it",),
        )


def _summary(container: Mapping[str, Any]) -> str:
    server = container.get("Labels", {}).get(SERVER_LABEL, "?")
    image, state = container.get("Image", "?"), container.get("State", "?")
    return f"{_container_name(container)} (server {server!r}, image {image}, {state})"


def register_leak_probe() -> None:
    """Make every future ``LeakCheck`` report containers this process left (idempotent)."""
    global _probe_registered
    with _state_lock:
        if not _probe_registered:
            leaks.register_probe(ContainerProbe)
            _probe_registered = True
