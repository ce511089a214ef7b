"""The shipped JSON Schemas: valid Draft 2020-12, the same files editors see, and they agree with
an independent validator (check-jsonschema) on the example pins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from reconciler.pins.schema_validation import ENVIRONMENT_SCHEMA, PIN_SCHEMA, load_schema

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", [PIN_SCHEMA, ENVIRONMENT_SCHEMA])
def test_schema_is_documented_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]
    assert schema["title"]
    assert schema["description"]
    for key, prop in schema["properties"].items():
        assert prop.get("description"), f"{name}: {key} has no description"


@pytest.mark.parametrize("name", [PIN_SCHEMA, ENVIRONMENT_SCHEMA])
def test_repository_schemas_are_the_shipped_ones(name: str) -> None:
    shipped = load_schema(name)
    in_repo = json.loads((REPO / "schemas" / name).read_text())
    assert in_repo == shipped


def test_example_pins_carry_the_schema_comment() -> None:
    for pin in sorted((REPO / "environments").glob("*/*.yaml")):
        first = pin.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schemas/pin.schema.json", pin
        assert (pin.parent / "../../schemas/pin.schema.json").resolve().is_file()
    for settings in sorted((REPO / "environments").glob("*.yaml")):
        first = settings.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/environment.schema.json"


def test_check_jsonschema_agrees(tmp_path: Path) -> None:
    good = sorted(str(p) for p in (REPO / "environments").glob("*/*.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\nversion: 0\nextra: 1\n")
    command = [
        sys.executable,
        "-m",
        "check_jsonschema",
        "--schemafile",
        str(REPO / "schemas" / PIN_SCHEMA),
    ]
    assert subprocess.run([*command, *good], capture_output=True, timeout=120).returncode == 0
    assert subprocess.run([*command, str(bad)], capture_output=True, timeout=120).returncode == 1


def test_pin_and_environment_gates_are_the_same_definition() -> None:
    # Each schema stands alone (editors resolve no cross-file URNs), so the gates are repeated.
    assert (
        load_schema(PIN_SCHEMA)["$defs"]["gates"]
        == load_schema(ENVIRONMENT_SCHEMA)["$defs"]["gates"]
    )
