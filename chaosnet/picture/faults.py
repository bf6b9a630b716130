"""Fault bands from a run's changes: a fault opens on a row and is closed by what lifts it.

A scenario's timeline and a test's proxy calls are both turned into
:class:`Change` records; :func:`bands` pairs each fault with the change that
lifted it (a toxic added, then removed; a proxy disabled, then enabled; a server
killed, stopped or paused, then started, restarted or resumed). A band runs from
the moment its step started to the moment its lifting step started; a fault
never lifted runs to the end of the axis. A server (re)start is a band of its own,
from its step's start until the server was ready, so "down" and "coming back"
read apart. A toxic update is a moment; a step that failed, a band as long as it
took.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from chaosnet.picture.model import Band, Moment

Effect = Literal["open", "close", "instant", "update"]


@dataclass(frozen=True)
class Change:
    """One thing done to a proxy or a server."""

    at: float  # when it started
    done: float  # when it had taken effect
    row: str
    key: str  # what it opens or closes: "toxic latency_downstream", "disabled", "down"
    effect: Effect
    kind: str
    label: str
    detail: str = ""


def bands(changes: Iterable[Change], end: float) -> tuple[list[Band], list[Moment]]:
    """Pair opening and closing changes per (row, key); what stays open ends at ``end``."""
    opened: dict[tuple[str, str], Change] = {}
    found: list[Band] = []
    moments: list[Moment] = []
    for change in sorted(changes, key=lambda c: c.at):
        slot = (change.row, change.key)
        if change.effect == "open":
            opened.setdefault(slot, change)  # a second "disable" does not restart the band
        elif change.effect == "close":
            start = opened.pop(slot, None)
            if start is not None:
                found.append(_band(start, change.at, lifted=True))
            if change.kind == "restart":  # the server is down until it is ready again
                found.append(_band(change, change.done, lifted=True))
        elif change.effect == "instant":
            found.append(_band(change, change.done, lifted=True))
        else:
            moments.append(Moment(change.row, change.at, change.label, change.detail))
    found += [_band(start, max(end, start.done), lifted=False) for start in opened.values()]
    found.sort(key=lambda b: (b.start, b.row))
    return found, moments


def _band(start: Change, end: float, *, lifted: bool) -> Band:
    return Band(
        row=start.row,
        kind=start.kind,
        label=start.label,
        start=round(start.at, 6),
        end=round(end, 6),
        lifted=lifted,
        detail=start.detail,
    )
