"""``truncate_message`` (chaosnet): cut the targeted message short, then close, reset or hang.

A message toxic: it needs a proxy with a protocol and acts on the messages its
targeting selects (every message without ``skip_messages``/``max_messages``).
Of a targeted message only a prefix passes:

- ``at: "head"``: cut inside the head -- after half the length header
  (``length_prefix``, needs ``header_size`` >= 2), after the first byte of the
  status or request line (``http1``) or of the type line (``resp``); ``line`` has no
  head, so it is refused there;
- ``at: "body"``: cut inside the first body element -- after half of it when its
  size is declared ahead (a Content-Length body, the first chunk, a bulk string, a
  frame's payload), after its first byte when not (a line, a body read to EOF); a
  message without body bytes is cut right after it;
- ``at: N``: after the message's first N bytes (0: before its first byte; past
  its end: right after it).

Then ``then``: ``close`` (FIN both ways), ``reset`` (RST both ways) or ``hang``
(nothing more is sent on this direction and the sockets stay open while its peers
keep them open: a FIN still passes, as through ``truncate_frame``'s hang, so a
connection both peers have closed is closed by the proxy too; removing the toxic
then closes the connection, the stream being broken mid-message).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from chaosnet.proxy.framers import PROTOCOLS
from chaosnet.proxy.framers.base import BODY, HEAD, Part
from chaosnet.proxy.toxics.base import FieldError, Pipe, Receiver
from chaosnet.proxy.toxics.truncate_frame import THEN_AFTER_CUT, Truncating, cut_position

if TYPE_CHECKING:
    from chaosnet.proxy.framers import Protocol as WireProtocol
    from chaosnet.proxy.toxics.base import ToxicSpec


class TruncateMessageToxic(Truncating):
    type_name = "truncate_message"
    in_toxiproxy = False
    protocols = PROTOCOLS
    summary = "cuts the targeted message inside its head or body, then closes, resets or hangs"
    effect = (
        "the messages before pass whole; the targeted one is cut inside its head (`at: head`), "
        "inside its first body element (`body`: half of it when its size is declared) or after "
        "N bytes; then FIN, RST or `hang` -- the client's parser sees a truncated reply "
        "(`IncompleteRead`, httpx `RemoteProtocolError`, redis-py `ConnectionError`)"
    )
    attributes = (cut_position("head", "message"), THEN_AFTER_CUT)
    __slots__ = ("body_seen", "cut_at")

    @classmethod
    def check_protocol(cls, protocol: WireProtocol, values: Mapping[str, object]) -> None:
        if values["at"] != "head":
            return
        if not protocol.has_head:
            raise FieldError(
                f'attributes.at: "head" means nothing on {protocol.name}: a line has no head'
            )
        if protocol.name == "length_prefix" and protocol.options["header_size"] < 2:
            raise FieldError('attributes.at: "head" needs header_size >= 2 to cut inside it')

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.cut_at: int | None = None  # offset in the current message where it is cut
        self.body_seen = False

    def on_part(self, data: bytes, part: Part) -> None:
        if self.done:
            self.drop(data)
            return
        if part.offset == 0:
            self.cut_at, self.body_seen = self._fixed_cut(), False
        if self.cut_at is None:
            self.cut_at = self._found_cut(part)
        end = part.offset + len(data)
        cut = self.cut_at
        if part.last and (cut is None or cut > end):
            cut = end  # no body to cut inside, or an offset past the end: right after it
        if cut is not None and cut <= end:
            self.cut_after(data, max(0, cut - part.offset))
            return
        self.emit(data)

    def _fixed_cut(self) -> int | None:
        at = self.attr("at")
        return at if isinstance(at, int) else None

    def _found_cut(self, part: Part) -> int | None:
        """Where a head or body cut falls, once the part it falls in shows up."""
        at = self.attr("at")
        if at == "head" and part.kind == HEAD:
            return part.part_size // 2 if part.part_size else 1
        if at == "body" and part.kind == BODY and not self.body_seen and part.part_offset == 0:
            self.body_seen = True
            half = part.part_size // 2 if part.part_size is not None else 1
            return part.offset + half
        return None
