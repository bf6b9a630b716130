"""``noop``: passes everything through unchanged (useful to test the plumbing)."""

from __future__ import annotations

from chaosnet.proxy.toxics.base import Toxic


class NoopToxic(Toxic):
    type_name = "noop"
    summary = "nothing (tests the plumbing)"
    effect = "nothing"
    __slots__ = ()
