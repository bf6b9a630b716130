"""Toxiproxy in a local Docker image, as the control server.

The container shares the host's network (``ContainerServer``), so the proxies
Toxiproxy opens listen on the host's loopback and reach servers there. Its API
binds 127.0.0.1 on port 0, and the port it got is read from its process's
listening socket (``Listening``), as for the binary backend: no port is ever
picked in advance. The image is never pulled: a missing one is an error that
gives the ``docker pull`` command, never a silent fall back to another backend.
"""

from __future__ import annotations

from chaosnet.backends.served import ServedBackend
from chaosnet.errors import ChaosnetError
from chaosnet.servers.container import ContainerServer, ImageMissing
from chaosnet.servers.errors import ServerError
from chaosnet.servers.readiness import HttpOk, Listening
from chaosnet.settings import DEFAULT_DOCKER_IMAGE

START_TIMEOUT_S = 15.0
#: Arguments for the image's entrypoint (``/toxiproxy`` in the upstream image).
TOXIPROXY_ARGS = ("-host=127.0.0.1", "-port=0")


class DockerBackend(ServedBackend[ContainerServer]):
    name = "docker"

    def __init__(self, image: str | None = None) -> None:
        super().__init__()
        self.image = image or DEFAULT_DOCKER_IMAGE

    def new_server(self) -> ContainerServer:
        return ContainerServer(
            self.image,
            list(TOXIPROXY_ARGS),
            name="toxiproxy",
            ready=[Listening(), HttpOk("/version")],
            ready_timeout=START_TIMEOUT_S,
        )

    def start_failed(self, error: ServerError) -> ChaosnetError:
        if isinstance(error, ImageMissing):
            return error  # its message already says what to do
        return ChaosnetError(
            f"docker backend (Toxiproxy image {self.image}) did not start: {error}"
        )

    def crash_title(self) -> str:
        return f"Toxiproxy container ({self.image}) stopped unexpectedly"
