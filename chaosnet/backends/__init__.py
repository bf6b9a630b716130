"""Where the control server comes from: one Toxiproxy-compatible URL, several origins.

Everything the plugin and the runner do to a proxy goes through the control
API, so switching backend is switching a URL:

- ``embedded``: chaosnet's own proxy, in-process on a background thread (default);
- ``toxiproxy``: the real ``toxiproxy-server`` binary, started as a subprocess;
- ``docker``: Toxiproxy in a local Docker image;
- ``http://host:port``: any running Toxiproxy-compatible server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from chaosnet.errors import ChaosnetError

if TYPE_CHECKING:
    from chaosnet.settings import Settings

BACKEND_CHOICES = ("embedded", "toxiproxy", "docker", "http://HOST:PORT")


class Backend(Protocol):
    """A started control server. ``name`` appears in reports and error messages."""

    name: str

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def take_errors(self) -> list[BaseException]:
        """Errors raised inside the server since the last call (embedded only)."""
        ...

    def log_tail(self, lines: int = 40) -> str: ...


def open_backend(
    spec: str,
    *,
    seed: int | None = None,
    toxiproxy_bin: Path | None = None,
    docker_image: str | None = None,
) -> Backend:
    """Build (not start) the backend named by ``spec``; a bad spec is a usage error."""
    if spec == "embedded":
        from chaosnet.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(seed=seed)
    if spec == "toxiproxy":
        from chaosnet.backends.toxiproxy import ToxiproxyBackend

        return ToxiproxyBackend(binary=toxiproxy_bin)
    if spec == "docker":
        from chaosnet.backends.docker import DockerBackend

        return DockerBackend(image=docker_image)
    if spec.startswith("http://"):
        from chaosnet.backends.url import UrlBackend

        return UrlBackend(spec)
    raise ChaosnetError(f"unknown backend {spec!r}: expected one of {', '.join(BACKEND_CHOICES)}")


def backend_from(settings: Settings, *, seed: int | None = None) -> Backend:
    """The backend ``settings`` name, built (not started) with their options; ``seed``
    replaces theirs (a scenario run's own seed)."""
    return open_backend(
        settings.backend,
        seed=settings.seed if seed is None else seed,
        toxiproxy_bin=settings.toxiproxy_bin,
        docker_image=settings.docker_image,
    )
