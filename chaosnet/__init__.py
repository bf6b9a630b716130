"""chaosnet: fault-injection test harness for network client code.

What a user needs is importable from here; each name loads its module on first
use, so ``import chaosnet`` (and ``import chaosnet.retry``) pulls in no
third-party module. The primitives (``retry``, ``framing``, ``connection``,
``datagram``, ``address``) import only the standard library; the rest is the harness.

Public: this package's names, ``chaosnet.servers``, ``chaosnet.scenario``'s
documented API, the pytest plugin and the CLI. Internal (no stability promise):
the proxy engine (``chaosnet.proxy.*`` except ``EmbeddedServer``), ``testrun``,
``settings``, ``backends``, ``lazy``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaosnet.lazy import keep_old_module_names, lazy_exports
from chaosnet.version import __version__ as __version__

# The names for type checkers, where each lives at run time, and __all__: a test pins
# the three together.
if TYPE_CHECKING:
    from chaosnet.address import (
        Address,
        format_address,
    )
    from chaosnet.chaos import (
        Chaos,
        Proxy,
        ProxyHandle,
        ToxicHandle,
    )
    from chaosnet.connection import (
        AsyncFramedClient,
        ConnectionClosed,
        FramedClient,
        RequestMayHaveBeenDelivered,
        connect,
    )
    from chaosnet.control import (
        ControlClient,
        ControlError,
        UnsupportedByBackend,
    )
    from chaosnet.datagram import (
        AsyncDatagramClient,
        DatagramClient,
        DatagramTooLarge,
        MalformedReply,
        NoReply,
    )
    from chaosnet.delivery import (
        DeliveryError,
        DeliveryLedger,
        assert_delivery,
        check_delivery,
    )
    from chaosnet.errors import ChaosnetError
    from chaosnet.framing import (
        FrameDecoder,
        FrameError,
        FrameTooLarge,
        IncompleteFrame,
        encode_frame,
        read_frame,
        recv_frame,
        send_frame,
        write_frame,
    )
    from chaosnet.kv import (
        AsyncKVClient,
        KVClient,
    )
    from chaosnet.leaks import (
        LeakCheck,
        LeakError,
    )
    from chaosnet.proxy.embedded import EmbeddedServer
    from chaosnet.retry import (
        RetryDetails,
        RetryError,
        RetryPolicy,
        UnsafeToRetry,
        is_transient,
        no_waits,
    )
    from chaosnet.servers import (
        ContainerServer,
        HttpOk,
        Listening,
        LogLine,
        PortAccepts,
        ReadinessCheck,
        RealServer,
        ServerCrashed,
        ServerError,
        ServerExitedEarly,
        ServerNotReady,
        ServerProcess,
        builtin_server,
        start_builtin,
    )

_HOMES = {
    "chaosnet.address": (
        "Address",
        "format_address",
    ),
    "chaosnet.retry": (
        "RetryDetails",
        "RetryError",
        "RetryPolicy",
        "UnsafeToRetry",
        "is_transient",
        "no_waits",
    ),
    "chaosnet.framing": (
        "FrameDecoder",
        "FrameError",
        "FrameTooLarge",
        "IncompleteFrame",
        "encode_frame",
        "read_frame",
        "recv_frame",
        "send_frame",
        "write_frame",
    ),
    "chaosnet.connection": (
        "AsyncFramedClient",
        "ConnectionClosed",
        "FramedClient",
        "RequestMayHaveBeenDelivered",
        "connect",
    ),
    "chaosnet.datagram": (
        "AsyncDatagramClient",
        "DatagramClient",
        "DatagramTooLarge",
        "MalformedReply",
        "NoReply",
    ),
    "chaosnet.kv": (
        "AsyncKVClient",
        "KVClient",
    ),
    "chaosnet.errors": ("ChaosnetError",),
    "chaosnet.chaos": (
        "Chaos",
        "Proxy",
        "ProxyHandle",
        "ToxicHandle",
    ),
    "chaosnet.control": (
        "ControlClient",
        "ControlError",
        "UnsupportedByBackend",
    ),
    "chaosnet.proxy.embedded": ("EmbeddedServer",),
    "chaosnet.servers": (
        "ContainerServer",
        "HttpOk",
        "Listening",
        "LogLine",
        "PortAccepts",
        "ReadinessCheck",
        "RealServer",
        "ServerCrashed",
        "ServerError",
        "ServerExitedEarly",
        "ServerNotReady",
        "ServerProcess",
        "builtin_server",
        "start_builtin",
    ),
    "chaosnet.leaks": (
        "LeakCheck",
        "LeakError",
    ),
    "chaosnet.delivery": (
        "DeliveryError",
        "DeliveryLedger",
        "assert_delivery",
        "check_delivery",
    ),
}
__all__ = [
    "Address",
    "AsyncDatagramClient",
    "AsyncFramedClient",
    "AsyncKVClient",
    "Chaos",
    "ChaosnetError",
    "ConnectionClosed",
    "ContainerServer",
    "ControlClient",
    "ControlError",
    "DatagramClient",
    "DatagramTooLarge",
    "DeliveryError",
    "DeliveryLedger",
    "EmbeddedServer",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "FramedClient",
    "HttpOk",
    "IncompleteFrame",
    "KVClient",
    "LeakCheck",
    "LeakError",
    "Listening",
    "LogLine",
    "MalformedReply",
    "NoReply",
    "PortAccepts",
    "Proxy",
    "ProxyHandle",
    "ReadinessCheck",
    "RealServer",
    "RequestMayHaveBeenDelivered",
    "RetryDetails",
    "RetryError",
    "RetryPolicy",
    "ServerCrashed",
    "ServerError",
    "ServerExitedEarly",
    "ServerNotReady",
    "ServerProcess",
    "ToxicHandle",
    "UnsafeToRetry",
    "UnsupportedByBackend",
    "assert_delivery",
    "builtin_server",
    "check_delivery",
    "connect",
    "encode_frame",
    "format_address",
    "is_transient",
    "no_waits",
    "read_frame",
    "recv_frame",
    "send_frame",
    "start_builtin",
    "write_frame",
]
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())

#: Modules renamed in 0.2, importable under the old name for one release (docs/ARCHITECTURE.md).
MOVED_MODULES = {"chaosnet.controller": "chaosnet.chaos"}
keep_old_module_names(MOVED_MODULES)
