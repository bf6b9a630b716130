"""``noop``: passes everything through unchanged (useful to test the plumbing)."""

from __future__ import annotations

from typing import ClassVar

from chaosnet.proxy.toxics.base import Toxic, Transport


class NoopToxic(Toxic):
    type_name = "noop"
    summary = "nothing (tests the plumbing)"
    effect = "nothing"
    transports: ClassVar[tuple[Transport, ...]] = ("tcp", "udp")
    datagram_effect = "nothing"
    __slots__ = ()
