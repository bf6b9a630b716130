"""``--junit FILE``: JUnit XML for CI dashboards, one test case per scenario.

A failed expectation is a ``<failure>``, an experiment that could not run is
an ``<error>``; both carry the failure text with the timeline, and the seed
is a property so a dashboard shows how to replay.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from chaosnet.scenario.report import failure_text, timeline_lines
from chaosnet.scenario.result import ScenarioResult

SUITE_NAME = "chaosnet"
# Characters XML 1.0 cannot carry at all, even escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("?", text)


def _case(result: ScenarioResult) -> ET.Element:
    case = ET.Element(
        "testcase",
        {
            "classname": _clean(result.path.with_suffix("").as_posix().replace("/", ".")),
            "name": _clean(result.name),
            "file": _clean(str(result.path)),
            "time": f"{result.duration:.3f}",
        },
    )
    properties = ET.SubElement(case, "properties")
    for name, value in (
        ("seed", str(result.seed)),
        ("backend", result.backend),
        ("faults", ", ".join(result.faults)),
        ("replay", result.replay_command()),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})
    if result.status == "failed":
        names = ", ".join(e.name for e in result.failures)
        failure = ET.SubElement(
            case,
            "failure",
            {"message": _clean(f"expectations failed: {names}"), "type": "ExpectationFailed"},
        )
        failure.text = _clean(failure_text(result))
    elif result.status == "error":
        first_line = (result.error or "error").splitlines()[0]
        error = ET.SubElement(
            case, "error", {"message": _clean(first_line), "type": "ScenarioError"}
        )
        error.text = _clean(failure_text(result))
    out = ET.SubElement(case, "system-out")
    out.text = _clean("\n".join(timeline_lines(result)))
    return case


def build(results: Sequence[ScenarioResult], *, seconds: float) -> ET.ElementTree[ET.Element]:
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": SUITE_NAME,
            "tests": str(len(results)),
            "failures": str(sum(1 for r in results if r.status == "failed")),
            "errors": str(sum(1 for r in results if r.status == "error")),
            "skipped": "0",
            "time": f"{seconds:.3f}",
        },
    )
    for result in results:
        suite.append(_case(result))
    return ET.ElementTree(suites)


def write(path: Path, results: Sequence[ScenarioResult], *, seconds: float) -> None:
    tree = build(results, seconds=seconds)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
