"""The JSON Schema of scenario files, generated from the model and shipped as ``schema.json``.

Editors validate and complete scenario files with it, e.g. with the YAML
language server, by a first line::

    # yaml-language-server: $schema=<path or URL of chaosnet/scenario/schema.json>

Regenerate after changing the model: ``python -m chaosnet.scenario.schema``
(a test fails while the shipped file is stale).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from chaosnet.scenario.model import Scenario

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def build_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "chaosnet scenario",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def render() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
