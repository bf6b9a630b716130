"""The JSON Schema shipped for editors, and the toxic models against the proxy's registry."""

from __future__ import annotations

import json
from pathlib import Path

from chaosnet.proxy.toxics import REGISTRY
from chaosnet.scenario.schema import SCHEMA_PATH, build_schema, render
from chaosnet.scenario.toxics import TOXICS_BY_TYPE, attribute_names

BUNDLED = Path(__file__).resolve().parents[2] / "scenarios"


def test_the_shipped_schema_is_generated_from_the_model() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        "chaosnet/scenario/schema.json is stale: run python -m chaosnet.scenario.schema"
    )


def test_the_schema_describes_every_toxic_and_forbids_unknown_keys() -> None:
    schema = build_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"proxies", "client", "expect"}
    toxics = schema["$defs"]["ProxySpec"]["properties"]["toxics"]["items"]
    mapping = toxics["discriminator"]["mapping"]
    assert set(mapping) == set(TOXICS_BY_TYPE)
    latency = schema["$defs"]["Latency"]
    assert latency["additionalProperties"] is False
    assert latency["required"] == ["type", "latency"]
    json.dumps(schema)  # plain JSON


def test_toxic_attributes_match_the_proxy_registry() -> None:
    """The scenario format and the embedded proxy must agree on every toxic they share."""
    for type_name, toxic in REGISTRY.items():
        assert type_name in TOXICS_BY_TYPE, f"scenario files cannot name the {type_name} toxic"
        declared = [attr.name for attr in toxic.attributes]
        assert sorted(attribute_names(type_name)) == sorted(declared), type_name


def test_bundled_scenarios_point_editors_at_the_schema() -> None:
    files = sorted(BUNDLED.glob("*.yaml"))
    assert files
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../chaosnet/scenario/schema.json", path
        assert (path.parent / "../chaosnet/scenario/schema.json").resolve() == SCHEMA_PATH
