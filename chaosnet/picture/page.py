"""One self-contained HTML page for a run: a section and a chart per picture, nothing fetched.

The page holds, inline: the Vega bundle (see :mod:`chaosnet.picture.vega`), a
short style sheet, and one JSON document (``<script type="application/json"
id="chaosnet-report">``) with every picture's data and chart spec. A few lines
of script hand each spec its data and draw it; the text around the charts
(verdicts, seed, replay command, errors) is plain HTML, readable without script.
Once every chart is drawn, ``<body>`` gets ``data-rendered`` = the number drawn.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chaosnet
from chaosnet.errors import ChaosnetError
from chaosnet.picture import vega
from chaosnet.picture.chart import axis_end, picture_spec
from chaosnet.picture.model import Picture, Verdict

FORMAT_VERSION = 1
DATA_ID = "chaosnet-report"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       padding: 0 1em; color: #212121; }
h1 { font-size: 1.35em; margin-bottom: .2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .3em; border-top: 1px solid #ddd; padding-top: .8em; }
.status { font-weight: bold; padding: 0 .4em; border-radius: 3px; color: white; }
.passed { background: #43a047; } .failed, .error { background: #c62828; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1em; margin: .4em 0; }
dl.facts dt { color: #616161; } dl.facts dd { margin: 0; }
code { background: #f5f5f5; padding: .1em .3em; border-radius: 3px; }
table.verdicts { border-collapse: collapse; margin: .6em 0; }
table.verdicts td, table.verdicts th { border: 1px solid #ddd; padding: .2em .5em;
       vertical-align: top; text-align: left; }
td.held { color: #2e7d32; font-weight: bold; } td.broken { color: #c62828; font-weight: bold; }
pre { white-space: pre-wrap; margin: 0; font-size: 12px; }
.error-text { color: #c62828; }
.notes { color: #616161; font-size: 12px; }
.chart { margin: .5em 0; min-height: 40px; }
"""

SCRIPT = """
(function () {
  const report = JSON.parse(document.getElementById("%(data_id)s").textContent);
  const drawn = report.pictures.map(function (picture, i) {
    const spec = Object.assign({}, report.specs[i], {datasets: picture.data});
    return vegaEmbed("#chart-" + i, spec, {renderer: "svg", actions: false})
      .catch(function (error) {
        document.getElementById("chart-" + i).textContent = "chart failed: " + error;
        throw error;
      });
  });
  Promise.allSettled(drawn).then(function (results) {
    const ok = results.filter(function (r) { return r.status === "fulfilled"; }).length;
    document.body.setAttribute("data-rendered", String(ok));
  });
})();
"""


def document(
    pictures: Sequence[Picture], *, title: str, facts: dict[str, str] | None = None
) -> dict[str, Any]:
    """What the page embeds: every picture's data and its chart spec."""
    return {
        "format": FORMAT_VERSION,
        "chaosnet": chaosnet.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "title": title,
        "facts": dict(facts or {}),
        "pictures": [p.to_json() for p in pictures],
        "specs": [picture_spec(p) for p in pictures],
    }


def render(pictures: Sequence[Picture], *, title: str, facts: dict[str, str] | None = None) -> str:
    """The whole page as text."""
    data = document(pictures, title=title, facts=facts)
    bundle = vega.javascript_bundle()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{STYLE}</style>",
        f"<script>{_inline_script(bundle)}</script>",
        "</head><body>",
        f"<h1>{_e(title)}</h1>",
        _facts(facts or {}),
    ]
    parts += [_section(i, p) for i, p in enumerate(pictures)]
    parts += [
        f'<script type="application/json" id="{DATA_ID}">{_inline_json(data)}</script>',
        f"<script>{SCRIPT % {'data_id': DATA_ID}}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write(
    path: Path, pictures: Sequence[Picture], *, title: str, facts: dict[str, str] | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(pictures, title=title, facts=facts), encoding="utf-8")
    return path


def png_spec(pictures: Sequence[Picture]) -> dict[str, Any]:
    """Every picture's chart stacked in one spec, each under its title and verdict."""
    charts = []
    datasets: dict[str, Any] = {}
    for i, picture in enumerate(pictures):
        prefix = f"p{i}_"
        spec = picture_spec(picture, prefix)
        config = spec.pop("config")
        spec["title"] = {"text": _headline(picture), "subtitle": picture.replay, "fontSize": 14}
        charts.append(spec)
        datasets.update({prefix + k: v for k, v in picture.to_json()["data"].items()})
    resolve = {"scale": {"color": "independent", "shape": "independent"}}
    return {
        "vconcat": charts,
        "spacing": 30,
        "datasets": datasets,
        "config": config,
        "resolve": resolve,
    }


def write_png(path: Path, pictures: Sequence[Picture], *, scale: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(vega.to_png(png_spec(pictures), scale=scale))
    return path


def report_path(folder: Path, test_id: str, kind: str) -> Path:
    """Where a test's picture goes: ``tests/a.py::test_b[x]`` -> ``tests-a.py--test_b-x.html``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_id).strip("-")[:150]
    return folder / f"{name}.{kind}"


# -- the text around the charts -----------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _inline_json(data: Any) -> str:
    """JSON that cannot end its <script> early: every "<" written as \\u003c."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


_SCRIPT_END = re.compile(r"</script|<!--", re.IGNORECASE)


def _inline_script(code: str) -> str:
    """Code inlined as it is: rewriting it could break it, so it must not end its tag."""
    if _SCRIPT_END.search(code):
        raise ChaosnetError("the Vega bundle cannot be inlined: it contains '</script' or '<!--'")
    return code


def _headline(picture: Picture) -> str:
    return f"{picture.kind} {picture.title}: {picture.status.upper()}"


def _facts(facts: dict[str, str], *, code: Sequence[str] = ()) -> str:
    """A definition list; the values named in ``code`` as code (a command to copy)."""
    if not facts:
        return ""
    rows = "".join(
        f"<dt>{_e(k)}</dt><dd>{f'<code>{_e(v)}</code>' if k in code else _e(v)}</dd>"
        for k, v in facts.items()
    )
    return f'<dl class="facts">{rows}</dl>'


def _section(index: int, picture: Picture) -> str:
    status = picture.status
    parts = [
        f'<section class="picture" id="picture-{index}">',
        f"<h2>{_e(picture.kind)} {_e(picture.title)} "
        f'<span class="status {_e(status)}">{_e(status.upper())}</span></h2>',
        _facts({**picture.facts, "replay": picture.replay}, code=("replay",)),
    ]
    if picture.error:
        parts.append(f'<pre class="error-text">error: {_e(picture.error)}</pre>')
    parts.append(f'<div class="chart" id="chart-{index}"></div>')
    if picture.verdicts:
        parts.append(_verdicts(picture.verdicts))
    parts += [f'<p class="notes">{_e(note)}</p>' for note in picture.notes]
    span = axis_end(picture) - picture.start
    parts.append(f'<p class="notes">time axis: {span:.3f}s from {picture.start:.3f}s</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _verdicts(verdicts: Sequence[Verdict]) -> str:
    rows = ["<tr><th>expectation</th><th>verdict</th><th>expected</th><th>seen</th></tr>"]
    for v in verdicts:
        verdict = "held" if v.passed else "FAILED"
        if v.failed_at is not None:
            verdict += f" at {v.failed_at:.3f}s"
        rows.append(
            f'<tr class="verdict" data-name="{_e(v.name)}">'
            f"<td>{_e(v.name)}</td>"
            f'<td class="{"held" if v.passed else "broken"}">{_e(verdict)}</td>'
            f"<td>{_e(v.expected)}</td><td><pre>{_e(v.detail)}</pre></td></tr>"
        )
    return f'<table class="verdicts">{"".join(rows)}</table>'
