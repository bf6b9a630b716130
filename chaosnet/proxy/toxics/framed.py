"""The framing attributes shared by frame-aware toxics, and their scanner.

Frame-aware toxics locate frames with ``chaosnet.framing.FrameScanner`` -- the same
parser the client primitives and builtin servers use, fed the bytes as they pass
(it holds at most one header). Lengths are taken at face value, up to what the
header can express: on a stream that is not framed, garbage headers simply
declare frames that end where they say (often never), and the toxic acts at those
positions or not at all; it never fails.
"""

from __future__ import annotations

from typing import Literal

from chaosnet.framing import HEADER_SIZES, FrameScanner
from chaosnet.proxy.toxics.base import Attr

FRAMING_ATTRIBUTES = (
    Attr(
        "header_size",
        "int",
        4,
        values=HEADER_SIZES,
        unit="bytes",
        help="length header size",
    ),
    Attr(
        "byte_order",
        "choice",
        "big",
        choices=("big", "little"),
        help="byte order of the length header",
    ),
)


def scanner_for(header_size: object, byte_order: object) -> FrameScanner:
    assert isinstance(header_size, int)
    order: Literal["big", "little"] = "little" if byte_order == "little" else "big"
    return FrameScanner((1 << (8 * header_size)) - 1, header_size=header_size, byte_order=order)
