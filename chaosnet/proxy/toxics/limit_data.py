"""``limit_data``: pass exactly ``bytes`` bytes, then close the connection (FIN).

Counted per connection and direction, and kept across updates. The close happens
as soon as the limit is reached; with ``bytes: 0`` it happens when the first data
arrives, as in Toxiproxy.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.base import MAX_BYTES, Attr, Pipe, Receiver, Toxic, ToxicSpec


class LimitDataToxic(Toxic):
    type_name = "limit_data"
    summary = "cut after N bytes"
    effect = "exactly `bytes` bytes pass, then the connection is closed (FIN)"
    attributes = (
        Attr(
            "bytes",
            "int",
            0,
            maximum=MAX_BYTES,
            unit="bytes",
            help="bytes let through",
            required=True,
        ),
    )
    __slots__ = ("passed",)

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.passed = 0

    def on_data(self, data: bytes) -> None:
        if self.ended:
            self.drop(data)
            return
        room = self.int_attr("bytes") - self.passed
        if room > 0:
            part = data if len(data) <= room else data[:room]
            self.passed += len(part)
            self.emit(part)
            if len(part) < len(data):
                self.pipe.dropped(len(data) - len(part))
        else:
            self.drop(data)
        if self.passed >= self.int_attr("bytes"):
            self.cut("fin")
