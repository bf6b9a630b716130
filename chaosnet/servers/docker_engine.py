"""The Docker engine: a short-lived SDK client per operation, and clear errors when it is missing.

chaosnet opens a client for each batch of calls and closes it after, so between
calls a container costs this process no open socket (the leak check sees none),
and nothing stale survives a daemon restart. The API version is negotiated once
per engine address and reused, so a client costs one connect, not a round trip.

Nothing here pulls an image: a missing image is the user's to provide
(``chaosnet.servers.container.ImageMissing`` says how).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from chaosnet.errors import ChaosnetError

if TYPE_CHECKING:
    from docker import DockerClient

API_TIMEOUT_S = 30
DEFAULT_ENGINE = "unix:///var/run/docker.sock"
_versions: dict[tuple[str | None, str | None], str] = {}
_versions_lock = threading.Lock()


class DockerUnavailable(ChaosnetError):
    """No Docker engine answers (daemon not running, wrong DOCKER_HOST), or no SDK."""


def engine_address() -> str:
    """Where the engine is looked for, for messages: DOCKER_HOST, a CLI context, or the socket."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    if os.environ.get("DOCKER_CONTEXT"):
        return f"the Docker context {os.environ['DOCKER_CONTEXT']!r}"
    return DEFAULT_ENGINE


def local_engine_absent() -> bool:
    """True when no engine can be configured at all (default socket missing, no DOCKER_HOST):
    callers that only tidy up (the reaper) then skip importing the SDK.
    """
    if os.environ.get("DOCKER_HOST") or os.environ.get("DOCKER_CONTEXT"):
        return False
    if os.path.exists(DEFAULT_ENGINE.removeprefix("unix://")):
        return False
    config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"), "config.json")
    try:
        return "currentContext" not in config.read_text()
    except OSError:
        return True


@contextmanager
def docker_client(purpose: str = "use Docker") -> Iterator[DockerClient]:
    """A connected client, closed on exit; ``DockerUnavailable`` names what is missing.

    ``purpose`` completes "cannot ..." in the error, e.g. "start container 'redis'".
    """
    try:
        import docker
        from docker.errors import DockerException
        from requests import exceptions as http
    except ImportError:
        raise DockerUnavailable(
            f"cannot {purpose}: the Python package 'docker' is not installed (pip install docker)"
        ) from None
    key = (os.environ.get("DOCKER_HOST"), os.environ.get("DOCKER_CONTEXT"))
    with _versions_lock:
        version = _versions.get(key)
    try:
        client = docker.from_env(version=version, timeout=API_TIMEOUT_S)
    except DockerException as exc:
        raise _unavailable(purpose, exc) from None
    if version is None:
        with _versions_lock:
            _versions[key] = client.api.api_version
    try:
        yield client
    except (http.ConnectionError, http.Timeout) as exc:  # the engine went away or hung mid-way
        raise _unavailable(purpose, exc) from None
    finally:
        client.close()


def engine_problem() -> str | None:
    """None when an engine answers, else why not (for a skip reason or a report header)."""
    try:
        with docker_client("run Docker containers") as client:
            client.ping()
    except DockerUnavailable as exc:
        return str(exc)
    except Exception as exc:  # the SDK raises requests' errors for a broken connection
        return f"cannot reach a Docker engine at {engine_address()}: {_reason(exc)}"
    return None


def _unavailable(purpose: str, exc: BaseException) -> DockerUnavailable:
    return DockerUnavailable(
        f"cannot {purpose}: no Docker engine answers at {engine_address()}: "
        f"{_socket_problem() or _reason(exc)} (is the Docker daemon running? "
        "is DOCKER_HOST right?)"
    )


def _socket_problem() -> str | None:
    """What is wrong with a local engine's socket, said plainly (the SDK's text is not)."""
    address = engine_address()
    if not address.startswith("unix://"):
        return None
    path = address.removeprefix("unix://")
    if not os.path.exists(path):
        return f"{path} does not exist"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"no permission to use {path} (join the docker group, or use rootless Docker)"
    return None


def _reason(exc: BaseException) -> str:
    """The innermost useful text of an SDK error (they nest requests and urllib3 errors)."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
