"""``limit_time`` (chaosnet): cut the connection ``duration`` ms after it opened.

The clock starts when the proxy accepted the connection; added to an older live
connection, the cut happens at once if that time has passed. ``then``: ``"close"``
(FIN both ways) or ``"reset"`` (RST both ways). Data flows unchanged until then.
The cut starts at this toxic's place in its direction's chain, so toxics after it
(a latency, say) delay it like data; ``stream`` otherwise does not matter.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.base import Attr, Pipe, Receiver, Timed, ToxicSpec, ms


class LimitTimeToxic(Timed):
    type_name = "limit_time"
    in_toxiproxy = False
    summary = "cut after a time"
    effect = (
        "the connection is closed (`then: close`) or reset (`reset`) `duration` after it opened"
    )
    attributes = (
        Attr("duration", "int", 0, unit="ms", help="connection lifetime", required=True),
        Attr("then", "choice", "close", choices=("close", "reset"), help="how it is cut"),
    )
    __slots__ = ()

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self._arm()

    def _arm(self) -> None:
        due = self.pipe.opened_at + ms(self.attr("duration"))
        self.cut_at(due, "rst" if self.attr("then") == "reset" else "fin")

    def on_update(self) -> None:
        if not self.ended:
            self._arm()

    def on_remove(self) -> None:
        self.disarm()
