"""The JSON Schemas that ship inside the package, compiled once, and their errors in plain words."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from reconciler.errors import Problem
from reconciler.pins.documents import Document, JsonPath

PIN_SCHEMA = "pin.schema.json"
ENVIRONMENT_SCHEMA = "environment.schema.json"
DEFAULTS_SCHEMA = "defaults.schema.json"


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("reconciler").joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problems(document: Document, schema_name: str) -> list[Problem]:
    """Every schema violation in `document`, one Problem each, at the line of the offending key."""
    schema = load_schema(schema_name)
    problems: list[Problem] = []
    for error in validator(schema_name).iter_errors(document.data):
        path: JsonPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = sorted(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed)):
                problems.append(
                    Problem(
                        document.display,
                        document.line_of((*path, key)),
                        _dotted((*path, key)),
                        f"unknown key (allowed: {', '.join(allowed)})",
                    )
                )
            continue
        if error.validator == "required":
            missing = _missing_key(error)
            problems.append(
                Problem(
                    document.display,
                    document.line_of(path),
                    _dotted((*path, missing)) if missing else _dotted(path) or None,
                    "required key is missing",
                )
            )
            continue
        problems.append(
            Problem(
                document.display,
                document.line_of(path),
                _dotted(path) or None,
                _describe(error, schema),
            )
        )
    return problems


def _dotted(path: JsonPath) -> str:
    return ".".join(str(part) for part in path)


def _missing_key(error: ValidationError) -> str | None:
    required = error.validator_value
    if isinstance(required, list) and isinstance(error.instance, dict):
        for key in required:
            if key not in error.instance:
                return str(key)
    return None


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "object": "a mapping of keys to values",
    "array": "a list",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _describe(error: ValidationError, root_schema: dict[str, Any]) -> str:
    value = error.instance
    shown = _show(value)
    if error.validator == "type":
        expected: Any = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        if not error.absolute_path:
            return f"the file must hold {wanted}, got {shown}"
        return f"must be {wanted}, got {shown}"
    if error.validator == "enum":
        allowed: Any = error.validator_value
        choices = ", ".join("null" if c is None else str(c) for c in allowed)
        return f"must be one of {choices}; got {shown}"
    if error.validator == "not":
        return f"{shown} is reserved by MLflow"
    if error.validator == "pattern" and tuple(error.absolute_path) == ("model",):
        found = _model_name_problem(str(value))
        if found:
            return f"{shown} {found}"
    # `oneOf` (version), `pattern`, `minimum`, lengths: the schema's own description says what
    # a valid value looks like, which beats jsonschema's regex dump.
    description = _property_description(error, root_schema)
    if description:
        return f"{shown} is not valid: {description}"
    return f"{shown} is not valid: {error.message}"


def _model_name_problem(name: str) -> str | None:
    """What is wrong with a pin's model name, in words (the schema's pattern refuses leading
    and trailing whitespace, `/` and `:`); None when it is something else."""
    for char in "/:":
        if char in name:
            return f"holds {char!r}, which MLflow refuses in model names"
    starts, ends = name[:1].isspace(), name[-1:].isspace()
    if not (starts or ends):
        return None
    where = "starts and ends" if starts and ends else "starts" if starts else "ends"
    return (
        f"{where} with whitespace, which a pin's model name cannot (nor its file name): rename "
        "the model in MLflow to manage it"
    )


def _property_description(error: ValidationError, root_schema: dict[str, Any]) -> str | None:
    """The description of the deepest property on the error's path that has one (so
    `serving.timeout` explains a duration, not what `serving:` is for)."""
    found = None
    node: Any = root_schema
    for part in error.absolute_path:
        if not isinstance(node, dict):
            break
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node = root_schema.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
        properties = node.get("properties", {})
        node = properties.get(str(part), node.get("additionalProperties"))
        description = node.get("description") if isinstance(node, dict) else None
        if isinstance(description, str):
            found = description
    return None if found is None else found.removeprefix("Optional. ")


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
