"""Strict YAML documents with line numbers.

PyYAML's `safe_load` keeps the last of duplicate keys, expands anchors and aliases (a reviewer
then reads one thing and the tool applies another) and forgets where each value stood. Pin files
are tiny and reviewed by humans, so we compose the node tree ourselves and refuse all of that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import Problem

MAX_FILE_BYTES = 64 * 1024
# libyaml's loader when PyYAML was built with it (the wheels are): ~10x faster on many files.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Scalar:
    """A scalar as written: its text (quotes removed) and whether it was plain (unquoted, so
    YAML typed it by its spelling)."""

    text: str
    plain: bool


@dataclass(frozen=True)
class Parsed:
    data: Any
    lines: dict[JsonPath, int]
    problems: list[_ParseError]  # duplicate keys, YAML 1.1 spellings (the first key is kept)
    scalars: dict[JsonPath, Scalar]


@dataclass(frozen=True)
class Document:
    """A parsed YAML file: its data and the line each value (by JSON path) starts on."""

    path: Path
    display: str
    data: Any
    lines: Mapping[JsonPath, int] = field(default_factory=dict)
    # Duplicate keys and YAML 1.1 spellings (see `spelling_problem`): reported, not fatal.
    duplicates: tuple[Problem, ...] = ()
    # Every scalar as written, by JSON path: `version` is read from its text, not YAML's typing.
    scalars: Mapping[JsonPath, Scalar] = field(default_factory=dict)

    def line_of(self, path: JsonPath) -> int:
        """The line of `path`, or of its nearest ancestor that exists (the whole file: line 1)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


class _ParseError(Exception):
    def __init__(self, line: int | None, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.field = field


def read_document(path: Path, display: str, root: Path) -> Document | Problem:
    """Read one YAML file under `root`, or say (with file and line) why it cannot be used.

    Duplicate keys do not stop the read: they are kept in `Document.duplicates` so the schema
    check still runs and every problem of the file is reported at once.
    """
    try:
        # The file, or a folder above it (an environment folder, environments/ itself), may
        # be a link: git stores only the link, and what is behind it is in no commit.
        if not path.resolve().is_relative_to(root.resolve()):
            return Problem(display, None, None, "symlink points outside the repository")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Problem(
                display, None, None, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}"
            )
        raw = path.read_bytes()
    except OSError as error:
        return Problem(display, None, None, f"cannot read file: {error.strerror or error}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        return Problem(display, line, None, "file is not valid UTF-8")
    try:
        parsed = parse_yaml(text)
    except _ParseError as error:
        return Problem(display, error.line, error.field, error.message)
    return Document(
        path=path,
        display=display,
        data=parsed.data,
        lines=parsed.lines,
        duplicates=tuple(Problem(display, d.line, d.field, d.message) for d in parsed.problems),
        scalars=parsed.scalars,
    )


def parse_yaml(text: str) -> Parsed:
    """Parse exactly one YAML document: its data, a JSON-path → line map, duplicate keys (the
    first occurrence is kept) and YAML 1.1 spellings, and every scalar as written."""
    text = text.removeprefix("\ufeff")
    loader = _Loader(text)
    try:
        _refuse_anchors(text)
        node = loader.get_single_node()
        if node is None:
            raise _ParseError(1, "file is empty")
        parsed = Parsed(None, {}, [], {})
        data = _build(loader, node, (), parsed)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = None if mark is None else int(mark.line) + 1
        what = ", ".join(part for part in (error.context, error.problem) if part)
        raise _ParseError(line, f"invalid YAML: {what}") from None
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        raise _ParseError(line, f"invalid YAML: {error.reason} {error.character!r}") from None
    except yaml.YAMLError as error:
        raise _ParseError(None, f"invalid YAML: {' '.join(str(error).split())}") from None
    finally:
        loader.dispose()
    return Parsed(data, parsed.lines, parsed.problems, parsed.scalars)


def _refuse_anchors(text: str) -> None:
    for event in yaml.parse(text, Loader=_Loader):
        line = None if event.start_mark is None else int(event.start_mark.line) + 1
        if isinstance(event, yaml.AliasEvent):
            raise _ParseError(line, "YAML aliases (*name) are not allowed: write the value out")
        if getattr(event, "anchor", None) is not None:
            raise _ParseError(line, "YAML anchors (&name) are not allowed: write the value out")


def _build(loader: Any, node: yaml.Node, path: JsonPath, parsed: Parsed) -> Any:
    lines = parsed.lines
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _ParseError(
                    key_node.start_mark.line + 1, "YAML merge keys (<<) are not allowed"
                )
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _ParseError(key_node.start_mark.line + 1, f"key {key!r} is not a string")
            if key in result:
                first = lines[(*path, key)]
                parsed.problems.append(
                    _ParseError(
                        key_node.start_mark.line + 1,
                        f"duplicate key (first set on line {first})",
                        field=_dotted((*path, key)),
                    )
                )
                continue
            result[key] = _build(loader, value_node, (*path, key), parsed)
            # Errors about a key point at the key's own line, not its value's.
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), parsed) for i, item in enumerate(node.value)]
    value = loader.construct_object(node, deep=True)
    plain = not getattr(node, "style", None)  # None (pure-Python loader) or "" (libyaml)
    parsed.scalars[path] = Scalar(str(node.value), plain)
    if plain and path:
        message = spelling_problem(str(node.value), value)
        if message is not None:
            parsed.problems.append(_ParseError(lines[path], message, field=_dotted(path)))
    return value


def _dotted(path: JsonPath) -> str:
    return ".".join(str(part) for part in path)


# YAML 1.2's core schema (what editors and most other tools read) for plain scalars; PyYAML reads
# YAML 1.1. A value the two read differently means one thing to the reviewer and another here.
_NULL_12 = re.compile(r"null|Null|NULL|~|")
_BOOL_12 = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_INT_12 = re.compile(r"[-+]?[0-9]+")
_FLOAT_12 = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _yaml_1_2(text: str) -> object:
    if _NULL_12.fullmatch(text):
        return None
    if text in _BOOL_12:
        return _BOOL_12[text]
    if _INT_12.fullmatch(text):
        return int(text)
    if re.fullmatch(r"0o[0-7]+", text):
        return int(text[2:], 8)
    if re.fullmatch(r"0x[0-9a-fA-F]+", text):
        return int(text[2:], 16)
    if _FLOAT_12.fullmatch(text):
        return float(text)
    if re.fullmatch(r"[-+]?\.(inf|Inf|INF)", text):
        return float("-inf") if text.startswith("-") else float("inf")
    if text in (".nan", ".NaN", ".NAN"):
        return float("nan")
    return text


def spelling_problem(text: str, value: object) -> str | None:
    """Why a plain scalar cannot be used as written, or None: YAML 1.1 (PyYAML, this tool) and
    YAML 1.2 (editors, most tools) read it differently (`yes`, `010`, `1_000`, `1e-1`, dates), or
    it is empty (null by accident)."""
    if text == "":
        return "no value: write null if you mean none, or the value"
    if isinstance(value, float) and not math.isfinite(value):
        # A NaN bound passes every comparison; no pin or setting means infinity either.
        return f"{text} is not a finite number: write a number"
    other = _yaml_1_2(text)
    if _same(value, other):
        return None
    if isinstance(value, bool) or isinstance(other, bool):
        fix = "write true or false, or quote it"
    elif isinstance(value, int | float) or isinstance(other, int | float):
        fix = "write the number plainly, or quote it"
    else:
        fix = "quote it"
    meanings = f"{_meaning(value)} in YAML 1.1 but {_meaning(other)} in YAML 1.2 (editors)"
    return f"{text} is {meanings}: {fix}"


def _same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # both NaN
    return a == b


def _meaning(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value:g}" if isinstance(value, float) else f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"the {type(value).__name__} {value}"
