"""``slow_close``: hold the end of the stream for ``delay`` ms before passing it on.

Data flows unchanged; when the source closes (or an earlier toxic cuts), the close
reaches the destination ``delay`` ms later. Removing the toxic passes a held close
on at once.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.base import Attr, End, Pipe, Receiver, Timed, ToxicSpec, cancel, ms


class SlowCloseToxic(Timed):
    type_name = "slow_close"
    summary = "delayed close"
    effect = "the close (FIN) arrives `delay` after the peer closed"
    attributes = (
        Attr("delay", "int", 0, unit="ms", help="how long the close is held", required=True),
    )
    __slots__ = ("held",)

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.held: End | None = None

    def on_end(self, end: End) -> None:
        self.held = end
        self.arm(self.pipe.now() + ms(self.attr("delay")), self._release)

    def _release(self) -> None:
        self.timer = None
        if self.held is not None:
            end, self.held = self.held, None
            self.emit_end(end)

    def on_remove(self) -> None:
        cancel(self.timer)
        self._release()

    def on_close(self) -> None:
        self.disarm()
        self.held = None
