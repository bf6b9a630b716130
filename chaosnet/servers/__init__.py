"""Real servers for tests: the builtin ones (echo, framed_echo, kv) and any command.

Every server is a separate process (or container) on a real socket, with one
lifecycle (``ManagedServer``: readiness checks, logs, stop/kill/restart/pause/resume,
no orphan left behind) and a driver that runs it: ``ServerProcess`` for any
command, ``ContainerServer`` for a Docker image. See docs/servers.md.

The names below load on first use: ``python -m chaosnet.servers`` imports this
package before it runs a server, and the server needs none of the harness side
(psutil, the leak check), which would add ~30 ms to every start and restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaosnet.lazy import lazy_exports

if TYPE_CHECKING:
    from chaosnet.address import Address
    from chaosnet.servers.builtin import BUILTIN_KINDS, builtin_server, start_builtin
    from chaosnet.servers.container import ContainerServer, ImageMissing, PortInUse
    from chaosnet.servers.errors import (
        ServerCrashed,
        ServerError,
        ServerExitedEarly,
        ServerNotReady,
    )
    from chaosnet.servers.factories import ContainerFactory, ServerFactory
    from chaosnet.servers.lifecycle import ArgvSpec, ManagedServer, RealServer
    from chaosnet.servers.logs import ServerLog
    from chaosnet.servers.ownership import reap_orphans
    from chaosnet.servers.process import ServerProcess
    from chaosnet.servers.readiness import (
        Command,
        HttpOk,
        Listening,
        LogLine,
        PortAccepts,
        Probe,
        ReadinessCheck,
        ReadinessContext,
    )

_HOMES = {
    "chaosnet.servers.builtin": ("BUILTIN_KINDS", "builtin_server", "start_builtin"),
    "chaosnet.servers.container": ("ContainerServer", "ImageMissing", "PortInUse"),
    "chaosnet.servers.factories": ("ContainerFactory", "ServerFactory"),
    "chaosnet.servers.lifecycle": ("ArgvSpec", "ManagedServer", "RealServer"),
    "chaosnet.servers.logs": ("ServerLog",),
    "chaosnet.servers.ownership": ("reap_orphans",),
    "chaosnet.servers.errors": (
        "ServerCrashed",
        "ServerError",
        "ServerExitedEarly",
        "ServerNotReady",
    ),
    "chaosnet.servers.process": ("ServerProcess",),
    "chaosnet.address": ("Address",),
    "chaosnet.servers.readiness": (
        "Command",
        "HttpOk",
        "Listening",
        "LogLine",
        "PortAccepts",
        "Probe",
        "ReadinessCheck",
        "ReadinessContext",
    ),
}

__all__ = [
    "BUILTIN_KINDS",
    "Address",
    "ArgvSpec",
    "Command",
    "ContainerFactory",
    "ContainerServer",
    "HttpOk",
    "ImageMissing",
    "Listening",
    "LogLine",
    "ManagedServer",
    "PortAccepts",
    "PortInUse",
    "Probe",
    "ReadinessCheck",
    "ReadinessContext",
    "RealServer",
    "ServerCrashed",
    "ServerError",
    "ServerExitedEarly",
    "ServerFactory",
    "ServerLog",
    "ServerNotReady",
    "ServerProcess",
    "builtin_server",
    "reap_orphans",
    "start_builtin",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
