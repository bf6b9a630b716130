"""The docs' toxic tables, generated from the toxics' declarations.

``README.md`` (the fault overview) and ``docs/proxy.md`` (every attribute) each
hold a table per transport (TCP, then UDP: the toxics that act on datagrams, with
what a datagram client sees) between the lines ``<!-- toxics:<table> begin -->``
and ``<!-- toxics:<table> end -->``. ``python -m chaosnet.proxy.toxics.docs``
rewrites both from ``REGISTRY``; a test fails while a checked-in table differs
from what this module generates, so the docs cannot drift from the code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from chaosnet.proxy.toxics import REGISTRY
from chaosnet.proxy.toxics.base import STREAMS, Attr, FieldError, Toxic, Transport, or_list

REGENERATE = "python -m chaosnet.proxy.toxics.docs"
REPOSITORY = Path(__file__).resolve().parents[3]
_PHASES = {"stream": "data", "listen": "listener", "accept": "accept"}


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _yes(toxic: type[Toxic]) -> str:
    return "yes" if toxic.in_toxiproxy else "no"


def on(transport: Transport) -> list[type[Toxic]]:
    """The toxics that work on proxies of ``transport``, in the registry's order."""
    return [toxic for toxic in REGISTRY.values() if transport in toxic.transports]


def overview() -> list[str]:
    """README.md: the fault, the toxic with its attributes and units, Toxiproxy or not."""
    lines = ["| fault | toxic (attributes) | Toxiproxy has it |", "|---|---|---|"]
    for toxic in on("tcp"):
        lines.append(_row([toxic.summary, _how(toxic), _yes(toxic)]))
    return lines


def overview_udp() -> list[str]:
    """README.md's UDP section: Toxiproxy has no datagram proxy, so none of it."""
    lines = ["| fault (datagrams) | toxic (attributes) | Toxiproxy has it |", "|---|---|---|"]
    for toxic in on("udp"):
        lines.append(_row([toxic.datagram_summary or toxic.summary, _how(toxic), "no"]))
    return lines


def _how(toxic: type[Toxic]) -> str:
    names = ", ".join(f"`{a.name}` {a.unit}".strip() for a in toxic.attributes)
    return f"`{toxic.type_name}`" + (f" ({names})" if names else "")


def reference() -> list[str]:
    """docs/proxy.md: what a client sees, each attribute, where the toxic acts."""
    lines = [
        "| toxic | what a client sees | attributes | acts on | Toxiproxy has it |",
        "|---|---|---|---|---|",
    ]
    for toxic in on("tcp"):
        cells = [f"`{toxic.type_name}`", toxic.effect, _attributes(toxic), acts_on(toxic)]
        lines.append(_row([*cells, _yes(toxic)]))
    return lines


def reference_udp() -> list[str]:
    """docs/proxy.md: what a datagram client sees, per toxic that acts on datagrams."""
    lines = [
        "| toxic | what a datagram client sees | attributes | Toxiproxy has it |",
        "|---|---|---|---|",
    ]
    for toxic in on("udp"):
        effect = toxic.datagram_effect or toxic.effect
        lines.append(_row([f"`{toxic.type_name}`", effect, _attributes(toxic), "no"]))
    return lines


def _attributes(toxic: type[Toxic]) -> str:
    return "; ".join(describe(attr) for attr in toxic.attributes) or "—"


def describe(attr: Attr) -> str:
    """``name``* (kind or unit, bounds; default): help -- * required in scenario files."""
    if attr.kind == "bool":
        kind = "true/false"
    elif attr.choices:
        kind = "/".join(f"`{choice}`" for choice in attr.choices)
        if attr.kind == "int_or_choice":
            kind += f" or {attr.unit or 'a number'}"
    elif attr.values:
        kind = or_list(attr.values) + (f" {attr.unit}" if attr.unit else "")
    elif attr.kind == "float":
        kind = f"{attr.minimum:g}..{attr.maximum:g}"
    elif attr.kind == "text":
        kind = "text"
    elif attr.kind == "headers":
        kind = "object of header: value"
    else:
        kind = attr.unit or "integer"
        if attr.minimum:
            kind += f", ≥ {attr.minimum:g}"
    star = "*" if attr.required else ""
    return f"`{attr.name}`{star} ({kind}{_default(attr)}): {attr.help}"


def _default(attr: Attr) -> str:
    """``; default X``, or nothing where the default is not a valid value (slicer's size)."""
    try:
        attr.coerce(attr.default)
    except FieldError:
        return ""
    default = attr.default
    return f"; default {str(default).lower() if isinstance(default, bool) else default}"


def acts_on(toxic: type[Toxic]) -> str:
    where = f"{'/'.join(toxic.transports)} {_PHASES[toxic.phase]}"
    if toxic.streams != STREAMS:
        where += f", {' and '.join(toxic.streams)} only"
    if toxic.protocols:
        where += f", protocol {' or '.join(toxic.protocols)}"
    return where


#: Each generated table: the file it lives in, its marker name, its renderer.
TABLES: tuple[tuple[str, str, Callable[[], list[str]]], ...] = (
    ("README.md", "overview", overview),
    ("README.md", "overview-udp", overview_udp),
    ("docs/proxy.md", "reference", reference),
    ("docs/proxy.md", "reference-udp", reference_udp),
)
#: Which toxics each table lists: those of this transport.
TABLE_TRANSPORTS: dict[str, Transport] = {
    "overview": "tcp",
    "overview-udp": "udp",
    "reference": "tcp",
    "reference-udp": "udp",
}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- toxics:{name} begin -->", f"<!-- toxics:{name} end -->"


class MarkersMissing(ValueError):
    """A doc lacks the lines that delimit its generated table."""


def regenerate(text: str, name: str, table: list[str]) -> str:
    """``text`` with the lines between ``name``'s markers replaced by ``table``."""
    begin, end = markers(name)
    lines = text.split("\n")
    if begin not in lines or end not in lines or lines.index(begin) > lines.index(end):
        raise MarkersMissing(f"no {begin} ... {end} lines")
    return "\n".join([*lines[: lines.index(begin) + 1], *table, *lines[lines.index(end) :]])


def stale(root: Path = REPOSITORY) -> list[str]:
    """A message for each doc under ``root`` whose table differs from the generated one."""
    problems = []
    for path, name, render in TABLES:
        text = (root / path).read_text(encoding="utf-8")
        try:
            if regenerate(text, name, render()) != text:
                problems.append(f"{path}: the {name} toxic table is stale: run {REGENERATE}")
        except MarkersMissing as exc:
            problems.append(f"{path}: {exc} around the {name} toxic table")
    return problems


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0]) if argv else REPOSITORY
    for path, name, render in TABLES:
        target = root / path
        try:
            text = target.read_text(encoding="utf-8")
            target.write_text(regenerate(text, name, render()), encoding="utf-8")
        except (OSError, MarkersMissing) as exc:
            print(f"{REGENERATE}: {target}: {exc}", file=sys.stderr)
            return 1
        print(f"wrote the {name} toxic table of {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
