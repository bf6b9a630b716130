"""Toxiproxy in a local Docker image, as the control server.

The container shares the host's network (``ContainerServer``), so the proxies
Toxiproxy opens listen on the host's loopback and reach servers there. Its API
binds 127.0.0.1 on port 0, and the port it got is read from its process's
listening socket (``Listening``), as for the binary backend: no port is ever
picked in advance. The image is never pulled: a missing one is an error that
gives the ``docker pull`` command, never a silent fall back to another backend.
"""

from __future__ import annotations

from chaosnet.errors import ChaosnetError
from chaosnet.leaks import Resource
from chaosnet.servers.container import ContainerServer, ImageMissing
from chaosnet.servers.docker_engine import DockerUnavailable
from chaosnet.servers.errors import ServerError
from chaosnet.servers.readiness import HttpOk, Listening
from chaosnet.settings import DEFAULT_DOCKER_IMAGE

START_TIMEOUT_S = 15.0
#: Arguments for the image's entrypoint (``/toxiproxy`` in the upstream image).
TOXIPROXY_ARGS = ("-host=127.0.0.1", "-port=0")


class DockerBackend:
    name = "docker"

    def __init__(self, image: str | None = None) -> None:
        self.image = image or DEFAULT_DOCKER_IMAGE
        self._server: ContainerServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise ChaosnetError("docker backend is not started")
        host, port = self._server.address
        return f"http://{host}:{port}"

    @property
    def server(self) -> ContainerServer | None:
        """The Toxiproxy container, once started (for logs and leak-check exemptions)."""
        return self._server

    def start(self) -> None:
        server = ContainerServer(
            self.image,
            list(TOXIPROXY_ARGS),
            name="toxiproxy",
            ready=[Listening(), HttpOk("/version")],
            ready_timeout=START_TIMEOUT_S,
        )
        try:
            server.start()
        except (ImageMissing, DockerUnavailable):
            raise  # their messages already say what to do
        except ServerError as exc:
            raise ChaosnetError(
                f"docker backend (Toxiproxy image {self.image}) did not start: {exc}"
            ) from None
        self._server = server

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def take_errors(self) -> list[BaseException]:
        if self._server is not None and self._server.crashed:
            return [
                ChaosnetError(
                    f"Toxiproxy container ({self.image}) stopped unexpectedly:\n"
                    f"{self._server.log_tail()}"
                )
            ]
        return []

    def log_tail(self, lines: int = 40) -> str:
        return self._server.log_tail(lines) if self._server is not None else ""

    def exempts(self, resource: Resource) -> bool:
        """For ``chaosnet.leaks.long_lived.add(backend)``: its container is not a leak."""
        return self._server is not None and self._server.exempts(resource)
