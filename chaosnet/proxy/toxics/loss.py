"""``loss`` (chaosnet, datagrams): drop each datagram with ``probability``.

Independent losses by default: every datagram is dropped with ``probability``,
one seeded draw each. With ``burst_length`` >= 1 the losses come in bursts, from
a two-state Gilbert-Elliott model: in the *good* state datagrams pass, in the
*bad* state they are lost. After each datagram a bad state stays bad with
``1 - 1/burst_length`` (so a burst of consecutive losses lasts ``burst_length``
datagrams on average, geometrically distributed), and a good state turns bad
with ``q = probability / (burst_length * (1 - probability))``, which makes the
long-run share of lost datagrams ``probability``. Each flow and direction starts
in the good state. ``q`` must be at most 1, so ``probability`` is at most
``burst_length / (burst_length + 1)`` in bursty mode (or exactly 1: lose all).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from chaosnet.proxy.toxics.base import Attr, FieldError
from chaosnet.proxy.toxics.datagrams import DatagramPipe, DatagramToxic, probability_attr

if TYPE_CHECKING:
    from chaosnet.proxy.toxics.base import Receiver, ToxicSpec

MAX_BURST = 1_000_000


class LossToxic(DatagramToxic):
    type_name = "loss"
    summary = "datagram loss, independent or in bursts (Gilbert-Elliott)"
    effect = (
        "each datagram dropped with `probability`; with `burst_length` ≥ 1 the losses come in "
        "bursts of that mean length (two-state Gilbert-Elliott, long-run loss `probability`)"
    )
    attributes = (
        probability_attr(1.0, "long-run share of datagrams dropped", required=True),
        Attr(
            "burst_length",
            "float",
            0.0,
            maximum=MAX_BURST,
            unit="datagrams",
            help="mean length of a loss burst; 0 = independent losses",
        ),
    )
    __slots__ = ("bad",)

    @classmethod
    def check(cls, values: Mapping[str, object]) -> None:
        burst, probability = values["burst_length"], values["probability"]
        assert isinstance(burst, float)
        assert isinstance(probability, float)
        if 0 < burst < 1:
            raise FieldError(
                f"attributes.burst_length: must be 0 (independent) or at least 1, got {burst:g}"
            )
        if burst >= 1 and probability < 1 and probability > burst / (burst + 1):
            raise FieldError(
                f"attributes.probability: at most burst_length/(burst_length+1) = "
                f"{burst / (burst + 1):.4g} with burst_length {burst:g}, got {probability:g}"
            )

    def __init__(self, spec: ToxicSpec, pipe: DatagramPipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.bad = False

    def on_data(self, data: bytes) -> None:
        if self._lost():
            self.drop_counted(data)
        else:
            self.emit(data)

    def _lost(self) -> bool:
        probability = self.float_attr("probability")
        burst = self.float_attr("burst_length")
        if burst < 1 or probability <= 0 or probability >= 1:
            return self.chance(probability)
        lost = self.bad
        draw = self.pipe.rng(self.spec).random()
        if lost:
            self.bad = draw >= 1 / burst
        else:
            self.bad = draw < probability / (burst * (1 - probability))
        return lost
