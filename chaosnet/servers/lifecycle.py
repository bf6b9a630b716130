"""``RealServer``: what every real server chaosnet manages offers, a process or a container.

``ServerProcess`` and ``ContainerServer`` both satisfy it, so the pytest plugin's
failure reports and a scenario's timeline (stop, kill, pause, restart) hold a
``RealServer`` and never ask which kind it is.
"""

from __future__ import annotations

from typing import Protocol, Self

from chaosnet.leaks import Resource
from chaosnet.servers.errors import ServerError, ServerExitedEarly
from chaosnet.servers.readiness import Address

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


def start_again(server: RealServer, before: Address | None, *, kind: str, hint: str) -> None:
    """Start a stopped server again where it was (``before``): a start that loses a brief
    race for its own port is retried; one that comes back elsewhere is stopped and reported.
    """
    for attempt in range(1, RESTART_ATTEMPTS + 1):
        try:
            server.start()
            break
        except ServerExitedEarly:  # e.g. our port briefly held by a closing socket
            if attempt == RESTART_ATTEMPTS:
                raise
    if before is not None and server.address != before:
        moved = server.address
        server.stop(grace=0)
        raise ServerError(
            f"{kind} {server.name!r} came back on {moved} instead of {before}: {hint}",
            name=server.name,
        )
