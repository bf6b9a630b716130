"""``reorder`` (chaosnet, datagrams): hold some datagrams back so later ones overtake.

With ``probability`` (one seeded draw per datagram) a datagram is held for
``delay`` ms; the others pass at once, so every datagram arriving during the hold
overtakes it. The flow log counts a held datagram as ``reordered`` when at least
one later datagram was passed on before it (a hold nothing overtook changed no
order). Removing the toxic sends what it holds at once, in arrival order.
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


class ReorderToxic(DatagramToxic):
    type_name = "reorder"
    summary = "reordered datagrams"
    effect = (
        "with `probability` a datagram is held `delay` while the others pass, so later ones "
        "overtake it"
    )
    attributes = (
        probability_attr(1.0, "chance that a datagram is held back"),
        Attr("delay", "int", 10, unit="ms", help="how long a held datagram waits"),
    )
    __slots__ = ("held", "passed")

    def __init__(self, spec: ToxicSpec, pipe: DatagramPipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.held = HeldDatagrams(pipe, self.emit)
        self.passed = 0  # datagrams passed on at once (the ones that may overtake)

    def on_data(self, data: bytes) -> None:
        if not self.chance(self.float_attr("probability")):
            self.passed += 1
            self.emit(data)
            return
        passed_before = self.passed
        self.held.hold(
            self.pipe.now() + ms(self.int_attr("delay")),
            data,
            lambda: self._released(passed_before),
        )

    def _released(self, passed_before: int) -> None:
        if self.passed > passed_before:
            self.count("reordered")

    def on_remove(self) -> None:
        self.held.release_all()

    def on_close(self) -> None:
        self.held.clear()
