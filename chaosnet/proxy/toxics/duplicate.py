"""``duplicate`` (chaosnet, datagrams): send ``copies`` extra copies of a datagram.

Each datagram is passed on, and with ``probability`` (one seeded draw per
datagram) followed by ``copies`` identical copies: at once with ``spacing`` 0,
otherwise copy ``k`` (1, 2, ...) ``k * spacing`` ms after the original. Datagrams
arriving meanwhile are not held back. The flow log counts every extra copy as
``duplicated``. Removing the toxic sends the copies still waiting at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaosnet.proxy.toxics.base import Attr, ms
from chaosnet.proxy.toxics.datagrams import (
    DatagramPipe,
    DatagramToxic,
    HeldDatagrams,
    probability_attr,
)

if TYPE_CHECKING:
    from chaosnet.proxy.toxics.base import Receiver, ToxicSpec

MAX_COPIES = 100


class DuplicateToxic(DatagramToxic):
    type_name = "duplicate"
    summary = "duplicated datagrams"
    effect = (
        "each datagram passed on, and with `probability` followed by `copies` identical copies, "
        "back to back or `spacing` apart"
    )
    attributes = (
        probability_attr(1.0, "chance that a datagram is duplicated"),
        Attr("copies", "int", 1, minimum=1, maximum=MAX_COPIES, help="extra copies sent"),
        Attr("spacing", "int", 0, unit="ms", help="time between copies; 0 = back to back"),
    )
    __slots__ = ("held",)

    def __init__(self, spec: ToxicSpec, pipe: DatagramPipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.held = HeldDatagrams(pipe, self.emit)

    def on_data(self, data: bytes) -> None:
        self.emit(data)
        if not self.chance(self.float_attr("probability")):
            return
        copies, spacing = self.int_attr("copies"), ms(self.int_attr("spacing"))
        self.dpipe.hold(len(data) * copies)
        now = self.pipe.now()
        for k in range(1, copies + 1):
            self.count("duplicated")
            if spacing <= 0:
                self.emit(data)
            else:
                self.held.hold(now + k * spacing, data)

    def on_remove(self) -> None:
        self.held.release_all()

    def on_close(self) -> None:
        self.held.clear()
