"""A control server that is a real server chaosnet runs: the Toxiproxy binary or its image.

``ServedBackend`` holds the server's lifecycle for the ``toxiproxy`` and ``docker``
backends: the URL once it listens, a failed start as one ``ChaosnetError``, a
crash surfaced in the test that was running, its log for the failure report,
and a leak-check exemption for its process or container.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from chaosnet.address import format_address
from chaosnet.errors import ChaosnetError
from chaosnet.leaks import Resource
from chaosnet.servers.errors import ServerError
from chaosnet.servers.lifecycle import ManagedServer

S = TypeVar("S", bound=ManagedServer)


class ServedBackend(ABC, Generic[S]):
    """Subclasses build the server (``new_server``) and say how to name it in messages."""

    name: str

    def __init__(self) -> None:
        self._server: S | None = None

    @property
    def server(self) -> S | None:
        """The running server, once started (for logs and leak-check exemptions)."""
        return self._server

    @property
    def url(self) -> str:
        if self._server is None:
            raise ChaosnetError(f"{self.name} backend is not started")
        return f"http://{format_address(*self._server.address)}"

    @abstractmethod
    def new_server(self) -> S:
        """The server to start (configured, not started)."""

    def start_failed(self, error: ServerError) -> ChaosnetError:
        """What a failed start raises (its message names the backend)."""
        return ChaosnetError(f"{self.name} backend did not start: {error}")

    def crash_title(self) -> str:
        return f"{self.name} backend's server crashed"

    def start(self) -> None:
        server = self.new_server()
        try:
            server.start()
        except ServerError as exc:
            raise self.start_failed(exc) from None
        self._server = server

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def take_errors(self) -> list[BaseException]:
        """A server that died under a test fails that test, with its log."""
        if self._server is not None and self._server.crashed:
            return [ChaosnetError(f"{self.crash_title()}:\n{self._server.log_tail()}")]
        return []

    def log_tail(self, lines: int = 40) -> str:
        return self._server.log_tail(lines) if self._server is not None else ""

    def exempts(self, resource: Resource) -> bool:
        """For ``chaosnet.leaks.long_lived.add(backend)``: its server is not a leak."""
        return self._server is not None and self._server.exempts(resource)
