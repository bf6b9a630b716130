"""``stall_message`` (chaosnet): hold the targeted message and everything after it.

A message toxic (it needs a proxy with a protocol). At the first byte of a
targeted message the toxic starts holding: that message and every later byte of
its direction wait -- bytes outside the targeted messages too, since a stream
keeps its order. ``duration`` ms later (0: until the toxic is removed) ``then``
happens: ``release`` passes everything held, in order, and the stream goes on
(the next targeted message stalls again); ``close`` or ``reset`` ends the
connection (FIN or RST both ways) and what was held is dropped. Removing the
toxic during a stall does ``then`` at once. An update re-times a stall that is
running from its start.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from chaosnet.proxy.framers import PROTOCOLS
from chaosnet.proxy.framers.base import Part
from chaosnet.proxy.toxics.base import Attr, End, Pipe, Receiver, Timed, cancel, ms

if TYPE_CHECKING:
    from chaosnet.proxy.toxics.base import ToxicSpec


class StallMessageToxic(Timed):
    type_name = "stall_message"
    in_toxiproxy = False
    protocols = PROTOCOLS
    summary = "holds the targeted message and all after it, then releases, closes or resets"
    effect = (
        "nothing of the targeted message (nor anything after it in that direction) arrives for "
        "`duration` ms (0: until removed), then it all arrives in order (`release`), or FIN / RST: "
        "the client's read timeout fires on exactly that message"
    )
    attributes = (
        Attr("duration", "int", 0, unit="ms", help="how long to hold; 0 = until removed"),
        Attr(
            "then",
            "choice",
            "release",
            choices=("release", "close", "reset"),
            help="what ends the stall",
        ),
    )
    __slots__ = ("held", "since", "stalled_message")

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.held: deque[bytes | End] | None = None  # None: not stalling
        self.since = 0.0
        self.stalled_message = -1

    def on_part(self, data: bytes, part: Part) -> None:
        if self.held is None and part.message != self.stalled_message:
            self._stall(part.message)
        if self.held is not None:
            self.held.append(data)
        else:
            self.emit(data)

    def _stall(self, message: int) -> None:
        self.held = deque()
        self.stalled_message = message
        self.since = self.pipe.now()
        self._arm()

    def _arm(self) -> None:
        duration = self.int_attr("duration")
        if duration > 0:
            self.arm(self.since + ms(duration), self._finish)
        else:
            self.disarm()

    def _finish(self) -> None:
        self.timer = None
        held, self.held = self.held, None
        if held is None:
            return
        then = self.attr("then")
        if then == "release":
            for item in held:
                if isinstance(item, End):
                    self.emit_end(item)
                else:
                    self.emit(item)
            return
        for item in held:
            if not isinstance(item, End):
                self.drop(item)
        self.cut("rst" if then == "reset" else "fin")

    def on_end(self, end: End) -> None:
        if self.held is not None:
            self.held.append(end)
        else:
            self.emit_end(end)

    def on_update(self) -> None:
        if self.held is not None:
            self._arm()

    def on_remove(self) -> None:
        cancel(self.timer)
        self._finish()

    def on_close(self) -> None:
        self.disarm()
        self.held = None
