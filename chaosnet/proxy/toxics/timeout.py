"""``timeout``: stop all data; close the connection ``timeout`` ms later (0 = never).

Every byte is dropped while the toxic applies. With ``timeout`` > 0 the connection
is closed (FIN both ways) that long after the toxic started applying to it (at
accept, or when the toxic was added to a live connection; an update restarts the
count). With 0 it stays open and silent until the toxic is removed -- and removing
it then closes the connection, as in Toxiproxy, because the data it swallowed is
gone for good.
"""

from __future__ import annotations

from typing import ClassVar

from chaosnet.proxy.toxics.base import (
    Attr,
    Pipe,
    Receiver,
    Timed,
    ToxicSpec,
    Transport,
    cancel,
    ms,
)
from chaosnet.proxy.toxics.datagrams import DatagramToxic


class TimeoutToxic(Timed):
    type_name = "timeout"
    summary = "black hole, then close"
    effect = (
        "no data at all; closed (FIN both ways) `timeout` after it started applying; 0 = silent "
        "until the toxic is removed, which then closes it"
    )
    attributes = (Attr("timeout", "int", 0, unit="ms", help="close after this long; 0 = never"),)
    transports: ClassVar[tuple[Transport, ...]] = ("tcp", "udp")
    datagram_summary = "black hole"
    datagram_effect = (
        "every datagram dropped while it applies; with `timeout` > 0 the flow is closed that "
        "long after it started applying; removing it lets datagrams through at once"
    )
    __slots__ = ()

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self._arm()

    def _arm(self) -> None:
        timeout = self.int_attr("timeout")
        if timeout > 0:
            self.cut_at(self.pipe.now() + ms(timeout), "fin")
        else:
            self.disarm()

    def on_data(self, data: bytes) -> None:
        self.drop(data)

    def on_update(self) -> None:
        if not self.ended:
            self._arm()

    def on_remove(self) -> None:
        cancel(self.timer)
        self.cut("fin")


class DatagramTimeout(DatagramToxic, TimeoutToxic, datagrams_of=TimeoutToxic):
    """``timeout`` on a datagram proxy: a black hole.

    Every datagram is dropped (counted as ``dropped``) while the toxic applies.
    With ``timeout`` > 0 the flow is closed that long after the toxic started
    applying to it (an update restarts the count; its socket towards the upstream
    goes, and the client's next datagram opens a new flow). Removing the toxic
    lets datagrams through again: there is no connection to close.
    """

    __slots__ = ()

    def on_data(self, data: bytes) -> None:
        self.drop_counted(data)

    def on_remove(self) -> None:
        cancel(self.timer)
