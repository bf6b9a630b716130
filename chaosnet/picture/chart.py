"""A picture as a Vega-Lite chart: fault rows, request latencies, connections per proxy.

Panels, stacked on one shared time axis (seconds since the workload started):

1. **faults**: one row per proxy and server; each fault a shaded band, each toxic
   update a diamond;
2. **requests**: one mark per request at its start, latency (ms, log scale) up,
   colour and shape by outcome; binned first-try requests as a median dot with a
   fastest-to-slowest bar; the fault bands shaded behind;
3. **connections through each proxy**: one line per connection from its accept to
   its close, coloured by how it ended, with a dot at the end; that proxy's fault
   bands behind.

Every panel carries a dashed red rule where an expectation failed. Data is
referenced by name (``{prefix}requests`` ...), so the page attaches each
picture's data once and the PNG can stack several pictures in one spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chaosnet.picture.model import ENDINGS, OUTCOMES, Picture

Spec = dict[str, Any]

WIDTH = 900
LANE_HEIGHT = 24
REQUESTS_HEIGHT = 200
CONNECTION_PX = 5  # per connection, between the bounds below
CONNECTIONS_MIN, CONNECTIONS_MAX = 50, 220
FAILED_RED = "#c62828"
OUTCOME_COLOURS = ("#43a047", "#fb8c00", FAILED_RED)
OUTCOME_SHAPES = ("circle", "diamond", "cross")
ENDING_COLOURS = ("#43a047", FAILED_RED, "#8e24aa", "#616161", "#1e88e5")
BAND_KINDS = ("toxic", "disabled", "killed", "stopped", "paused", "restart", "step failed")
ORDINAL_CONNECTIONS = 12  # up to this many, each connection its own labelled row
ORDINAL_ROW_PX = 16
BAND_COLOURS = ("#8e24aa", "#616161", FAILED_RED, "#6d4c41", "#00838f", "#f9a825", "#000000")
AXIS_TITLE = "seconds since the workload started"
MIN_SPAN_S = 0.01  # a run that never got going still gets an axis


def axis_end(picture: Picture) -> float:
    """Where the time axis ends: the workload's end, or later if a band or line did."""
    ends = [picture.end, *(b.end for b in picture.bands)]
    ends += [c.closed for c in picture.connections if c.closed is not None]
    ends += [r.start + r.latency for r in picture.requests]
    return max(max(ends), picture.start + MIN_SPAN_S)


@dataclass(frozen=True)
class _Frame:
    """What every panel of one picture shares: its data names and its time axis."""

    prefix: str
    start: float
    end: float
    kinds: tuple[str, ...]  # the kinds of fault the picture has

    def data(self, name: str) -> Spec:
        return {"name": f"{self.prefix}{name}"}

    def x(self, field: str) -> Spec:
        scale = {"domain": [self.start, self.end], "nice": False, "zero": False}
        axis = {"title": None, "format": "~g"}
        return {"field": field, "type": "quantitative", "scale": scale, "axis": axis}


def picture_spec(picture: Picture, prefix: str = "") -> Spec:
    """The chart of one picture, its data named ``{prefix}bands`` and so on."""
    kinds = tuple(dict.fromkeys(b.kind for b in picture.bands))
    frame = _Frame(prefix, picture.start, axis_end(picture), kinds)
    panels: list[Spec] = []
    drawn = bool(picture.requests or picture.bins)
    if picture.rows:
        panels.append(_faults(picture.rows, frame, labelled=not drawn))
    if drawn:
        panels.append(_requests(frame, binned=bool(picture.bins)))
    for proxy in dict.fromkeys(c.proxy for c in picture.connections):
        count = sum(1 for c in picture.connections if c.proxy == proxy)
        panels.append(_connections(proxy, count, frame))
    if panels:
        last = panels[-1]["layer"][0]["encoding"]["x"]
        last["axis"] = {"title": AXIS_TITLE}
    return {
        "vconcat": panels,
        "spacing": 14,
        "resolve": {
            "scale": {"x": "shared", "color": "independent", "shape": "independent"},
            "legend": {"color": "independent", "shape": "independent"},
        },
        "config": {
            "view": {"stroke": None},
            "font": "sans-serif",
            "legend": {"orient": "right", "labelFontSize": 11, "titleFontSize": 11},
            "axis": {"labelFontSize": 11, "titleFontSize": 11},
            "title": {"anchor": "start", "fontSize": 12, "fontWeight": "bold"},
        },
    }


def _seconds(field: str, title: str) -> Spec:
    return {"field": field, "type": "quantitative", "format": ".3f", "title": title}


def _text(field: str, title: str) -> Spec:
    return {"field": field, "type": "nominal", "title": title}


def _band_fill(kinds: Sequence[str], legend: bool) -> Spec:
    """Each kind of fault its own colour, always the same; the legend lists the kinds
    this picture has."""
    shown = [k for k in BAND_KINDS if k in kinds]
    return {
        "field": "kind",
        "type": "nominal",
        "title": "fault",
        "scale": {"domain": list(BAND_KINDS), "range": list(BAND_COLOURS)},
        "legend": {"values": shown} if legend and shown else None,
    }


def _bands_until(end: float) -> Spec:
    """A fault still in place at the end runs to the axis' end."""
    return {"calculate": f"datum.lifted ? datum.end : {end!r}", "as": "until"}


def _band_tooltip() -> list[Spec]:
    return [
        _text("row", "on"),
        _text("label", "fault"),
        _seconds("start", "from (s)"),
        _seconds("end", "until (s)"),
        _text("lifted", "lifted"),
        _text("detail", "step"),
    ]


def _background_bands(frame: _Frame, row: str | None = None) -> Spec:
    """The fault bands shaded across a whole panel (of one row's, when given)."""
    transform: list[Spec] = [_bands_until(frame.end)]
    if row is not None:
        transform.insert(0, {"filter": {"field": "row", "equal": row}})
    return {
        "data": frame.data("bands"),
        "transform": transform,
        "mark": {"type": "rect", "opacity": 0.13},
        "encoding": {
            "x": frame.x("start"),
            "x2": {"field": "until"},
            "fill": _band_fill(frame.kinds, legend=False),
            "tooltip": _band_tooltip(),
        },
    }


def _failed_rules(frame: _Frame, *, labelled: bool) -> list[Spec]:
    """A dashed red rule where each failed expectation broke, labelled in one panel (the
    requests', whose top is mostly empty, else the faults')."""
    base: Spec = {
        "data": frame.data("verdicts"),
        "transform": [{"filter": "datum.failed_at != null"}],
    }
    tooltip = [_text("name", "expectation"), _seconds("failed_at", "failed at (s)")]
    layers = [
        {
            **base,
            "mark": {"type": "rule", "color": FAILED_RED, "strokeDash": [5, 3], "strokeWidth": 2},
            "encoding": {
                "x": frame.x("failed_at"),
                "tooltip": [*tooltip, _text("detail", "what was seen")],
            },
        }
    ]
    if labelled:
        layers.append(
            {
                **base,
                "mark": {
                    "type": "text",
                    "color": FAILED_RED,
                    "align": "left",
                    "baseline": "top",
                    "dx": 3,
                    "y": 1,
                    "fontWeight": "bold",
                },
                "transform": [
                    *base["transform"],
                    {"calculate": "datum.name + ' failed'", "as": "label"},
                ],
                "encoding": {
                    "x": frame.x("failed_at"),
                    "text": {"field": "label"},
                    "tooltip": tooltip,
                },
            }
        )
    return layers


def _faults(rows: list[str], frame: _Frame, *, labelled: bool) -> Spec:
    y = {
        "field": "row",
        "type": "nominal",
        "scale": {"domain": rows},
        "axis": {"title": None, "labelLimit": 200},
    }
    return {
        "title": "faults on each proxy and server",
        "width": WIDTH,
        "height": LANE_HEIGHT * len(rows),
        "layer": [
            {
                "data": frame.data("bands"),
                "transform": [_bands_until(frame.end)],
                "mark": {"type": "rect", "opacity": 0.8, "cornerRadius": 2},
                "encoding": {
                    "x": frame.x("start"),
                    "x2": {"field": "until"},
                    "y": y,
                    "fill": _band_fill(frame.kinds, legend=True),
                    "tooltip": _band_tooltip(),
                },
            },
            {
                "data": frame.data("bands"),
                "mark": {"type": "text", "align": "left", "dx": 4, "color": "white"},
                "encoding": {"x": frame.x("start"), "y": y, "text": {"field": "label"}},
            },
            {
                "data": frame.data("moments"),
                "mark": {"type": "point", "shape": "diamond", "filled": True, "color": "black"},
                "encoding": {
                    "x": frame.x("at"),
                    "y": y,
                    "tooltip": [
                        _text("label", "what"),
                        _seconds("at", "at (s)"),
                        _text("detail", ""),
                    ],
                },
            },
            *_failed_rules(frame, labelled=labelled),
        ],
    }


def _requests(frame: _Frame, *, binned: bool) -> Spec:
    y_title = "request latency (ms, log)"
    y = {"field": "ms", "type": "quantitative", "scale": {"type": "log"}, "title": y_title}
    outcome = {
        "field": "outcome",
        "type": "nominal",
        "title": "request",
        "scale": {"domain": list(OUTCOMES), "range": list(OUTCOME_COLOURS)},
    }
    shape = {**outcome, "scale": {"domain": list(OUTCOMES), "range": list(OUTCOME_SHAPES)}}
    bins_transform = [
        {"calculate": "(datum.start + datum.end) / 2", "as": "mid"},
        {"calculate": "max(datum.low * 1000, 0.01)", "as": "ms_low"},
        {"calculate": "max(datum.high * 1000, 0.01)", "as": "ms"},
        {"calculate": "max(datum.median * 1000, 0.01)", "as": "ms_median"},
    ]
    bin_tooltip = [
        {"field": "count", "type": "quantitative", "title": "first-try requests"},
        _seconds("start", "from (s)"),
        _seconds("end", "until (s)"),
        {"field": "ms_low", "type": "quantitative", "format": ".2f", "title": "fastest (ms)"},
        {"field": "ms_median", "type": "quantitative", "format": ".2f", "title": "median (ms)"},
        {"field": "ms", "type": "quantitative", "format": ".2f", "title": "slowest (ms)"},
    ]
    bin_layers = [
        {
            "data": frame.data("bins"),
            "transform": bins_transform,
            "mark": {"type": "rule", "color": OUTCOME_COLOURS[0], "opacity": 0.6},
            "encoding": {
                "x": frame.x("mid"),
                "y": {**y, "field": "ms_low"},
                "y2": {"field": "ms"},
                "tooltip": bin_tooltip,
            },
        },
        {
            "data": frame.data("bins"),
            "transform": bins_transform,
            "mark": {"type": "point", "filled": True, "size": 14, "color": OUTCOME_COLOURS[0]},
            "encoding": {
                "x": frame.x("mid"),
                "y": {**y, "field": "ms_median"},
                "tooltip": bin_tooltip,
            },
        },
    ]
    return {
        "title": "requests: latency at their start time",
        "width": WIDTH,
        "height": REQUESTS_HEIGHT,
        "layer": [
            _background_bands(frame),
            *(bin_layers if binned else []),
            {
                "data": frame.data("requests"),
                "transform": [{"calculate": "max(datum.latency * 1000, 0.01)", "as": "ms"}],
                "mark": {"type": "point", "filled": True, "size": 36, "opacity": 0.85},
                "encoding": {
                    "x": frame.x("start"),
                    "y": y,
                    "color": outcome,
                    "shape": shape,
                    "tooltip": [
                        {"field": "index", "type": "quantitative", "title": "request"},
                        _text("outcome", "outcome"),
                        _seconds("start", "started (s)"),
                        {"field": "ms", "type": "quantitative", "format": ".2f", "title": "ms"},
                        {"field": "attempts", "type": "quantitative", "title": "attempts"},
                        _text("endpoint", "last endpoint"),
                        _text("error", "error"),
                        _text("tries", "attempts that failed"),
                    ],
                },
            },
            *_failed_rules(frame, labelled=True),
        ],
    }


def _connections(proxy: str, count: int, frame: _Frame) -> Spec:
    height = max(CONNECTIONS_MIN, min(CONNECTIONS_MAX, CONNECTION_PX * count))
    if count <= ORDINAL_CONNECTIONS:
        height = max(CONNECTIONS_MIN // 2, ORDINAL_ROW_PX * count)
    transform = [
        {"filter": {"field": "proxy", "equal": proxy}},
        {"calculate": f"datum.closed == null ? {frame.end!r} : datum.closed", "as": "until"},
    ]
    y: Spec = {"field": "id", "title": "connection #"}
    if count <= ORDINAL_CONNECTIONS:
        y["type"] = "ordinal"
    else:
        y["type"] = "quantitative"
        y["scale"] = {"reverse": True, "zero": False, "nice": False}
        y["axis"] = {"format": "d"}
    ending = {
        "field": "ending",
        "type": "nominal",
        "title": "connection ended",
        "scale": {"domain": list(ENDINGS), "range": list(ENDING_COLOURS)},
    }
    tooltip = [
        {"field": "id", "type": "quantitative", "title": "connection"},
        _text("client", "client"),
        _seconds("opened", "opened (s)"),
        _seconds("closed", "closed (s)"),
        _text("closed_by", "closed by"),
        _text("toxics", "toxics"),
        {"field": "bytes_up", "type": "quantitative", "title": "bytes to server"},
        {"field": "bytes_down", "type": "quantitative", "title": "bytes to client"},
    ]
    return {
        "title": f"connections through proxy {proxy}",
        "width": WIDTH,
        "height": height,
        "layer": [
            _background_bands(frame, row=f"proxy {proxy}"),
            {
                "data": frame.data("connections"),
                "transform": transform,
                "mark": {"type": "rule", "strokeWidth": 2 if count < 100 else 1},
                "encoding": {
                    "x": frame.x("opened"),
                    "x2": {"field": "until"},
                    "y": y,
                    "color": ending,
                    "tooltip": tooltip,
                },
            },
            {
                "data": frame.data("connections"),
                "transform": transform,
                "mark": {"type": "point", "filled": True, "size": 22},
                "encoding": {
                    "x": frame.x("until"),
                    "y": y,
                    "color": ending,
                    "tooltip": tooltip,
                },
            },
            *_failed_rules(frame, labelled=False),
        ],
    }
