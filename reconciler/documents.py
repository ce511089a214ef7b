"""Strict YAML documents with line numbers.

PyYAML's `safe_load` keeps the last of duplicate keys, expands anchors and aliases (a reviewer
then reads one thing and the tool applies another) and forgets where each value stood. Pin files
are tiny and reviewed by humans, so we compose the node tree ourselves and refuse all of that.
"""

from __future__ import annotations

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
class Document:
    """A parsed YAML file: its data and the line each value (by JSON path) starts on."""

    path: Path
    display: str
    data: Any
    lines: Mapping[JsonPath, int] = field(default_factory=dict)
    duplicates: tuple[Problem, ...] = ()

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
        if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
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
        data, lines, duplicates = parse_yaml(text)
    except _ParseError as error:
        return Problem(display, error.line, error.field, error.message)
    return Document(
        path=path,
        display=display,
        data=data,
        lines=lines,
        duplicates=tuple(Problem(display, d.line, d.field, d.message) for d in duplicates),
    )


def parse_yaml(text: str) -> tuple[Any, dict[JsonPath, int], list[_ParseError]]:
    """Parse exactly one YAML document: its data, a JSON-path → line map, and duplicate keys
    (the first occurrence is kept)."""
    text = text.removeprefix("\ufeff")
    loader = _Loader(text)
    try:
        _refuse_anchors(text)
        node = loader.get_single_node()
        if node is None:
            raise _ParseError(1, "file is empty")
        lines: dict[JsonPath, int] = {}
        duplicates: list[_ParseError] = []
        data = _build(loader, node, (), lines, duplicates)
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
    return data, lines, duplicates


def _refuse_anchors(text: str) -> None:
    for event in yaml.parse(text, Loader=_Loader):
        line = None if event.start_mark is None else int(event.start_mark.line) + 1
        if isinstance(event, yaml.AliasEvent):
            raise _ParseError(line, "YAML aliases (*name) are not allowed: write the value out")
        if getattr(event, "anchor", None) is not None:
            raise _ParseError(line, "YAML anchors (&name) are not allowed: write the value out")


def _build(
    loader: Any,
    node: yaml.Node,
    path: JsonPath,
    lines: dict[JsonPath, int],
    duplicates: list[_ParseError],
) -> Any:
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
                duplicates.append(
                    _ParseError(
                        key_node.start_mark.line + 1,
                        f"duplicate key (first set on line {first})",
                        field=".".join(str(p) for p in (*path, key)),
                    )
                )
                continue
            result[key] = _build(loader, value_node, (*path, key), lines, duplicates)
            # Errors about a key point at the key's own line, not its value's.
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*path, i), lines, duplicates) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
