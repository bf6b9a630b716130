"""A Toxiproxy-compatible server someone else runs: we only check it answers."""

from __future__ import annotations

from chaosnet.control import ControlClient


class UrlBackend:
    name = "url"

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> None:
        ControlClient(self._url, backend=self._url, timeout=5.0).version()

    def stop(self) -> None:
        """Not ours to stop."""

    def take_errors(self) -> list[BaseException]:
        return []

    def log_tail(self, lines: int = 40) -> str:
        return ""
