"""``reset_peer``: reset the connection (TCP RST both ways) ``timeout`` ms after data.

As in Toxiproxy, the countdown starts when the first chunk (or the end of the
stream) reaches the toxic on its direction; that chunk and everything after it
are dropped, and when the countdown ends both sockets are closed with
``SO_LINGER`` 0, so each peer sees ``ECONNRESET``. Only connections the toxic
applies to are reset: ``toxicity: 0`` resets nothing (Toxiproxy #603 turns every
close into a reset). Removing the toxic during the countdown resets at once
instead of blocking the API.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.base import Attr, End, Pipe, Receiver, Timed, ToxicSpec, cancel, ms


class ResetPeerToxic(Timed):
    type_name = "reset_peer"
    summary = "TCP reset"
    effect = (
        "TCP RST both ways `timeout` after the first data (or end) reached it; that data is dropped"
    )
    attributes = (
        Attr("timeout", "int", 0, unit="ms", help="delay from the first data to the reset"),
    )
    __slots__ = ("triggered_at",)

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.triggered_at: float | None = None

    def on_data(self, data: bytes) -> None:
        self.drop(data)
        self._trigger()

    def on_end(self, end: End) -> None:
        self._trigger()

    def _trigger(self) -> None:
        if self.triggered_at is None and not self.ended:
            self.triggered_at = self.pipe.now()
            self._arm()

    def _arm(self) -> None:
        assert self.triggered_at is not None
        due = self.triggered_at + ms(self.attr("timeout"))
        if due <= self.pipe.now():
            self.disarm()
            self.cut("rst")
        else:
            self.cut_at(due, "rst")

    def on_update(self) -> None:
        if self.triggered_at is not None and not self.ended:
            self._arm()

    def on_remove(self) -> None:
        cancel(self.timer)
        if self.triggered_at is not None:
            self.cut("rst")
