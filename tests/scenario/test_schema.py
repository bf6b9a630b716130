"""The scenario models and the shipped JSON Schema, derived from the toxics' declarations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from chaosnet.control import TOXIPROXY_TOXIC_TYPES
from chaosnet.proxy.toxics import REGISTRY
from chaosnet.proxy.toxics.base import Attr, Toxic
from chaosnet.scenario.schema import SCHEMA_PATH, build_schema, render
from chaosnet.scenario.toxics import TOXICS_BY_TYPE, attribute_names, toxic_model
from tests.scenario.conftest import MINIMAL, WriteScenario, problems_of

BUNDLED = Path(__file__).resolve().parents[2] / "scenarios"
#: What the real Toxiproxy v2.12 implements (its toxics/ directory): a fact the
#: declarations' ``in_toxiproxy`` must agree with, so a backend is never asked wrongly.
TOXIPROXY_V2_12 = {
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "noop",
}


class Sample(Toxic):
    """A declaration with every kind of attribute, and a restricted stream."""

    type_name = "sample_decl"
    summary = "a sample"
    in_toxiproxy = False
    streams: ClassVar = ("upstream",)
    attributes = (
        Attr("wait", "int", 0, unit="ms", maximum=5000, help="a duration", required=True),
        Attr("size", "int", 8, minimum=1, unit="bytes", help="a size"),
        Attr("share", "float", 0.5, maximum=1, help="a fraction"),
        Attr("flag", "bool", False, help="a switch"),
        Attr("mode", "choice", "a", choices=("a", "b"), help="a choice"),
        Attr("width", "int", 4, values=(2, 4), help="one of a set"),
        Attr("at", "int_or_choice", "end", choices=("end",), maximum=99, help="either"),
    )


def test_the_shipped_schema_is_generated_from_the_model() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        "chaosnet/scenario/schema.json is stale: run python -m chaosnet.scenario.schema"
    )


def test_the_schema_describes_every_registered_toxic_and_forbids_unknown_keys() -> None:
    schema = build_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"proxies", "client", "expect"}
    toxics = schema["$defs"]["ProxySpec"]["properties"]["toxics"]["items"]
    assert set(toxics["discriminator"]["mapping"]) == set(REGISTRY)
    latency = schema["$defs"]["Latency"]
    assert latency["additionalProperties"] is False
    assert latency["required"] == ["type", "latency"]
    assert latency["description"] == REGISTRY["latency"].summary
    json.dumps(schema)  # plain JSON


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_each_model_has_exactly_the_declared_attributes(type_name: str) -> None:
    toxic = REGISTRY[type_name]
    model = TOXICS_BY_TYPE[type_name]
    assert attribute_names(type_name) == [attr.name for attr in toxic.attributes]
    for attr in toxic.attributes:
        field = model.model_fields[attr.name]
        assert field.is_required() == attr.required, attr.name
        if not attr.required:
            assert field.default == attr.default, attr.name
        assert field.description is not None
        assert field.description.startswith(attr.help), attr.name


def test_the_extensions_a_scenario_needs_come_from_the_declarations() -> None:
    assert {t for t, toxic in REGISTRY.items() if toxic.in_toxiproxy} == TOXIPROXY_V2_12
    assert TOXIPROXY_TOXIC_TYPES == TOXIPROXY_V2_12
    for type_name, model in TOXICS_BY_TYPE.items():
        toxic = model.model_validate({"type": type_name, **required_values(REGISTRY[type_name])})
        expected = [] if type_name in TOXIPROXY_V2_12 else [type_name]
        assert toxic.extensions_used() == expected, type_name


def required_values(toxic: type[Toxic]) -> dict[str, Any]:
    return {attr.name: max(1, int(attr.minimum)) for attr in toxic.attributes if attr.required}


def test_a_model_takes_what_the_declaration_allows() -> None:
    model = toxic_model(Sample)
    assert model.__name__ == "SampleDecl"
    toxic = model.model_validate(
        {"type": "sample_decl", "wait": "1.5s", "size": "2KiB", "share": 1, "at": 99}
    )
    assert toxic.attributes() == {
        "wait": 1500,
        "size": 2048,
        "share": 1.0,
        "flag": False,
        "mode": "a",
        "width": 4,
        "at": 99,
    }
    assert toxic.stream == "upstream"  # the only stream declared is the default
    assert model.model_validate({"type": "sample_decl", "wait": 0, "at": "end"}).at == "end"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({}, "wait", "Field required"),
        ({"wait": 5001}, "wait", "less than or equal to 5000"),
        ({"wait": "6s"}, "wait", "less than or equal to 5000"),
        ({"wait": 1, "size": 0}, "size", "greater than or equal to 1"),
        ({"wait": 1, "share": 1.5}, "share", "less than or equal to 1"),
        ({"wait": 1, "flag": "yes"}, "flag", "valid boolean"),
        ({"wait": 1, "mode": "c"}, "mode", "'a' or 'b'"),
        ({"wait": 1, "width": 3}, "width", "2 or 4"),
        ({"wait": 1, "at": "start"}, "at", "'end'"),
        ({"wait": 1, "stream": "downstream"}, "stream", "'upstream'"),
        ({"wait": 1, "colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_a_model_refuses_what_the_declaration_refuses(
    values: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        toxic_model(Sample).model_validate({"type": "sample_decl", **values})
    errors = caught.value.errors()
    assert any(error["loc"][0] == field and message in error["msg"] for error in errors), errors


@pytest.mark.parametrize(
    ("toxic", "message"),
    [
        (
            "{type: slicer, average_size: 7, size_variation: 7}",
            "size_variation: must be smaller than average_size (7), got 7",
        ),
        (
            "{type: truncate_frame, header_size: 1, at: header}",
            'at: "header" needs header_size >= 2 to cut inside it',
        ),
    ],
)
def test_a_scenario_file_gets_the_declarations_cross_attribute_check(
    write_scenario: WriteScenario, toxic: str, message: str
) -> None:
    """What the API would refuse at run time is refused when the file is loaded, in place."""
    proxy = f"  main:\n    server: echo\n    toxics: [{toxic}]"
    text = MINIMAL.replace("  main: {server: echo}", proxy)
    assert problems_of(write_scenario(text)) == [f"6:14: proxies.main.toxics[0]: {message}"]


def test_bundled_scenarios_point_editors_at_the_schema() -> None:
    files = sorted(BUNDLED.glob("*.yaml"))
    assert files
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../chaosnet/scenario/schema.json", path
        assert (path.parent / "../chaosnet/scenario/schema.json").resolve() == SCHEMA_PATH
