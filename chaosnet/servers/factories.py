"""Servers a pytest fixture hands out: factories that start them and stop them all at the end.

``server_process`` and ``docker_server`` are factories (``ServerFactory``,
``ContainerFactory``): each server they start logs to its own file under the
test's ``tmp_path`` and is stopped (a container removed) at teardown, and the
test's report shows what each wrote. ``session_server`` runs one builtin
server for a whole session, exempt from every test's leak check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from chaosnet import leaks
from chaosnet.servers.builtin import start_builtin
from chaosnet.servers.lifecycle import DEFAULT_READY_TIMEOUT_S, RealServer
from chaosnet.servers.process import ServerProcess
from chaosnet.servers.readiness import ReadinessCheck

if TYPE_CHECKING:
    from chaosnet.servers.container import ContainerServer

S = TypeVar("S", ServerProcess, "ContainerServer")
CONTAINER_READY_TIMEOUT_S = 30.0  # a container takes longer than a process to come up


class ServerGroup(Protocol):
    """A factory fixture: the servers it started so far."""

    @property
    def servers(self) -> Sequence[RealServer]: ...


class StartedServers(Generic[S]):
    """Servers a factory started: each logs to its own file, all stop at the end."""

    def __init__(self, log_dir: Path, kind: str) -> None:
        self._log_dir = log_dir
        self._kind = kind
        self._servers: list[S] = []

    @property
    def servers(self) -> Sequence[S]:
        return list(self._servers)

    def _log_path(self) -> Path:
        return self._log_dir / f"{self._kind}{len(self._servers) + 1}.log"

    def _start(self, server: S) -> S:
        self._servers.append(server)  # before start: a failed start still shows its log
        return server.start()

    def stop_all(self) -> None:
        for server in reversed(self._servers):
            server.stop()


class ServerFactory(StartedServers[ServerProcess]):
    """The ``server_process`` fixture: start any argv as a real server, stop all at the end."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__(log_dir, "server")

    def __call__(
        self,
        argv: Sequence[str] | Callable[[int], Sequence[str]],
        *,
        name: str | None = None,
        address: tuple[str, int] | None = None,
        ready: ReadinessCheck | Sequence[ReadinessCheck] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
    ) -> ServerProcess:
        return self._start(
            ServerProcess(
                argv,
                name=name,
                address=address,
                ready=ready,
                env=env,
                cwd=cwd,
                ready_timeout=ready_timeout,
                log_path=self._log_path(),
            )
        )


class ContainerFactory(StartedServers["ContainerServer"]):
    """The ``docker_server`` fixture: start an image as a real server, remove all at the end."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__(log_dir, "container")

    def __call__(
        self,
        image: str,
        command: Sequence[str] | Callable[[int], Sequence[str]] | None = None,
        *,
        name: str | None = None,
        address: tuple[str, int] | None = None,
        ready: ReadinessCheck | Sequence[ReadinessCheck] | None = None,
        env: Mapping[str, str] | None = None,
        entrypoint: Sequence[str] | None = None,
        volumes: Mapping[str, str] | None = None,
        ready_timeout: float = CONTAINER_READY_TIMEOUT_S,
        options: Mapping[str, Any] | None = None,
    ) -> ContainerServer:
        from chaosnet.servers.container import ContainerServer  # the Docker SDK costs ~100 ms

        return self._start(
            ContainerServer(
                image,
                command,
                name=name,
                address=address,
                ready=ready,
                env=env,
                entrypoint=entrypoint,
                volumes=volumes,
                ready_timeout=ready_timeout,
                log_path=self._log_path(),
                options=options,
            )
        )


@contextmanager
def session_server(kind: str, log_dir: Path) -> Iterator[ServerProcess]:
    """A builtin server for the whole session: not a leak of the test that starts it."""
    server = start_builtin(kind, log_path=log_dir / f"{kind}.log")
    leaks.long_lived.add(server)
    try:
        yield server
    finally:
        server.stop()
        leaks.long_lived.discard(server)
