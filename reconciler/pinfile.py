"""Editing a pin file the way a person would: change the `version:` line (and `confidence:`),
keep every comment, blank line and key order. Pure text in, text out."""

from __future__ import annotations

import re

SCHEMA_COMMENT = "# yaml-language-server: $schema=../../schemas/pin.schema.json"
_KEY_LINE = r"^(?P<key>{key}:[ \t]*)(?P<value>[^#\r\n]*?)(?P<rest>[ \t]*(#[^\r\n]*)?)$"


def new_pin(model: str, version: str, confidence: float | None = None) -> str:
    lines = [SCHEMA_COMMENT, f"model: {model}", f"version: {version}"]
    if confidence is not None:
        lines.append(f"confidence: {confidence:g}")
    return "\n".join(lines) + "\n"


def set_key(text: str, key: str, value: str) -> str:
    """`text` with the top-level `key:` set to `value` (its trailing comment kept), or the key
    added after the `version:` line (at the end if there is none)."""
    pattern = re.compile(_KEY_LINE.format(key=re.escape(key)), re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(lambda m: f"{m['key']}{value}{m['rest']}", text, count=1)
    line = f"{key}: {value}"
    version = re.compile(_KEY_LINE.format(key="version"), re.MULTILINE).search(text)
    if version is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    end = version.end()
    return f"{text[:end]}\n{line}{text[end:]}"
