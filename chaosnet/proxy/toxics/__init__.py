"""Toxic types, one per module, and the registry everything else derives from.

Adding a toxic: write one module with a :class:`~chaosnet.proxy.toxics.base.Toxic`
subclass (its class attributes are its whole declaration), then add it to
``_TYPES`` below; regenerate the derived files (``python -m chaosnet.proxy.toxics.docs``,
``python -m chaosnet.scenario.schema``). See "Adding a toxic" in docs/proxy.md.
Connect-phase toxics (``phase`` "listen" or "accept") are declarations only: the
listener and the proxy act on them.

Toxic modules import only the standard library and chaosnet's primitives: the
control client (:mod:`chaosnet.control`) imports this registry.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.bandwidth import BandwidthToxic
from chaosnet.proxy.toxics.base import Toxic
from chaosnet.proxy.toxics.corrupt import CorruptToxic
from chaosnet.proxy.toxics.duplicate import DuplicateToxic
from chaosnet.proxy.toxics.inject_reply import InjectReplyToxic
from chaosnet.proxy.toxics.latency import LatencyToxic
from chaosnet.proxy.toxics.limit_data import LimitDataToxic
from chaosnet.proxy.toxics.limit_time import LimitTimeToxic
from chaosnet.proxy.toxics.loss import LossToxic
from chaosnet.proxy.toxics.noop import NoopToxic
from chaosnet.proxy.toxics.refuse_new import RefuseNewToxic
from chaosnet.proxy.toxics.reorder import ReorderToxic
from chaosnet.proxy.toxics.reset_on_accept import ResetOnAcceptToxic
from chaosnet.proxy.toxics.reset_peer import ResetPeerToxic
from chaosnet.proxy.toxics.slicer import SlicerToxic
from chaosnet.proxy.toxics.slow_close import SlowCloseToxic
from chaosnet.proxy.toxics.stall_accept import StallAcceptToxic
from chaosnet.proxy.toxics.stall_message import StallMessageToxic
from chaosnet.proxy.toxics.timeout import TimeoutToxic
from chaosnet.proxy.toxics.truncate_datagram import TruncateDatagramToxic
from chaosnet.proxy.toxics.truncate_frame import TruncateFrameToxic
from chaosnet.proxy.toxics.truncate_message import TruncateMessageToxic

#: In the order the docs and the schema show them: Toxiproxy's, then chaosnet's.
_TYPES: tuple[type[Toxic], ...] = (
    LatencyToxic,
    BandwidthToxic,
    SlowCloseToxic,
    TimeoutToxic,
    ResetPeerToxic,
    SlicerToxic,
    LimitDataToxic,
    NoopToxic,
    TruncateFrameToxic,
    LimitTimeToxic,
    CorruptToxic,
    RefuseNewToxic,
    StallAcceptToxic,
    ResetOnAcceptToxic,
    LossToxic,
    DuplicateToxic,
    ReorderToxic,
    TruncateDatagramToxic,
    TruncateMessageToxic,
    StallMessageToxic,
    InjectReplyToxic,
)

REGISTRY: dict[str, type[Toxic]] = {cls.type_name: cls for cls in _TYPES}

#: Toxic types that the real Toxiproxy has, and those it does not (chaosnet extensions).
TOXIPROXY_TYPES: tuple[str, ...] = tuple(cls.type_name for cls in _TYPES if cls.in_toxiproxy)
EXTENSION_TYPES: tuple[str, ...] = tuple(cls.type_name for cls in _TYPES if not cls.in_toxiproxy)

__all__ = ["EXTENSION_TYPES", "REGISTRY", "TOXIPROXY_TYPES", "Toxic"]
