"""Reading a report page back as a browser and a user would: its markup, its data, its pixels."""

from __future__ import annotations

import json
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chaosnet.picture.page import DATA_ID

VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source"}


class Page(HTMLParser):
    """Checks that every element is closed in order; keeps URLs, scripts and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.urls: list[str] = []  # every src/href/action attribute value
        self.scripts: dict[str, str] = {}  # id (or position) -> text
        self.text: list[str] = []
        self._script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action")]
        if tag == "link":
            self.problems.append(f"a <link> element: {values}")
        if tag not in VOID:
            self.open.append(tag)
        if tag == "script":
            self._script = values.get("id") or f"script-{len(self.scripts)}"
            self.scripts[self._script] = ""

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts[self._script] += data
        else:
            self.text.append(data)


def read_page(path: Path) -> tuple[Page, dict[str, Any]]:
    """The parsed page and the JSON document it embeds; asserts it is well-formed."""
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.problems == []
    assert page.open == []
    return page, json.loads(page.scripts[DATA_ID])


def external_urls(page: Page) -> list[str]:
    """Attribute URLs that would reach another host (or any scheme but a fragment/data)."""
    return [u for u in page.urls if urlsplit(u).scheme or urlsplit(u).netloc]


def png_colours(data: bytes) -> dict[tuple[int, ...], int]:
    """How many pixels of each colour an 8-bit RGB or RGBA PNG has (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8
    assert colour_type in (2, 6), colour_type
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    counts: dict[tuple[int, ...], int] = {}
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        for x in range(0, stride, channels):
            pixel = tuple(line[x : x + 3])
            counts[pixel] = counts.get(pixel, 0) + 1
        previous = line
    return counts


def _unfilter(kind: int, line: bytearray, up: bytearray, bpp: int) -> None:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        above = up[i]
        corner = up[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + above) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + above) // 2) & 0xFF
        elif kind == 4:
            p = left + above - corner
            pa, pb, pc = abs(p - left), abs(p - above), abs(p - corner)
            best = left if pa <= pb and pa <= pc else above if pb <= pc else corner
            line[i] = (line[i] + best) & 0xFF
