"""chaosnet's own proxy, in this process on a background thread."""

from __future__ import annotations

from chaosnet.errors import ChaosnetError
from chaosnet.proxy.embedded import EmbeddedServer


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, seed: int | None = None) -> None:
        self._server = EmbeddedServer(host="127.0.0.1", port=0, seed=seed)
        self._started = False

    @property
    def url(self) -> str:
        if not self._started:
            raise ChaosnetError("embedded control server is not started")
        return self._server.url

    @property
    def seed(self) -> int | None:
        return self._server.seed

    def start(self) -> None:
        self._server.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False

    def take_errors(self) -> list[BaseException]:
        return self._server.take_errors() if self._started else []

    def log_tail(self, lines: int = 40) -> str:
        return ""
