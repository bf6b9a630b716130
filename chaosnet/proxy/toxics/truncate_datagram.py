"""``truncate_datagram`` (chaosnet, datagrams): keep only the first ``size`` bytes.

With ``probability`` (one seeded draw per datagram), a datagram longer than
``size`` bytes is cut to its first ``size`` bytes (``size`` 0 sends an empty
datagram) and counted as ``truncated``; shorter ones pass unchanged, as does
every datagram the draw spares. The receiver gets one shorter datagram, never
an error: what the application makes of it is what the test is about.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.base import Attr
from chaosnet.proxy.toxics.datagrams import DatagramToxic, probability_attr

MAX_DATAGRAM = 65_535


class TruncateDatagramToxic(DatagramToxic):
    type_name = "truncate_datagram"
    summary = "truncated datagrams"
    effect = (
        "with `probability`, a datagram longer than `size` is cut to its first `size` bytes; "
        "shorter ones pass"
    )
    attributes = (
        Attr(
            "size", "int", 0, maximum=MAX_DATAGRAM, unit="bytes", help="bytes kept", required=True
        ),
        probability_attr(1.0, "chance that a datagram longer than size is cut"),
    )
    __slots__ = ()

    def on_data(self, data: bytes) -> None:
        size = self.int_attr("size")
        if len(data) <= size or not self.chance(self.float_attr("probability")):
            self.emit(data)
            return
        self.count("truncated")
        self.pipe.dropped(len(data) - size)
        self.emit(data[:size])
