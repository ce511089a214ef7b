"""Pin files as text, the way a person writes them: a new pin (what `promote` and `import`
create), and edits that change one key and keep every comment, blank line and key order.
Pure text in, text out."""

from __future__ import annotations

import re
from collections.abc import Sequence

import yaml

# Where the schema stands relative to environments/<env>/<model>.yaml when the repository has a
# top-level schemas/ folder (this one does; a team's promotion repository usually does not).
SCHEMA_PATH = "schemas/pin.schema.json"
SCHEMA_COMMENT = f"# yaml-language-server: $schema=../../{SCHEMA_PATH}"
_KEY_LINE = r"^(?P<key>{key}:[ \t]*)(?P<value>[^#\r\n]*?)(?P<rest>[ \t]*(#[^\r\n]*)?)$"


def new_pin(
    model: str,
    version: str,
    *,
    run_id: str | None = None,
    confidence: float | None = None,
    note: str | None = None,
    comments: Sequence[str] = (),
    schema_comment: bool = True,
    source: str | None = None,
) -> str:
    """A new pin file: the schema comment (when the schema exists at `SCHEMA_PATH`, so editors
    find it), `comments`, then `model`, `version` and the optional keys."""
    lines = [SCHEMA_COMMENT] if schema_comment else []
    lines += [f"# {comment}" for comment in comments]
    lines += [f"model: {yaml_scalar(model)}", f"version: {version}"]
    if source is not None:
        lines.append(f"from: {source}")  # the version is that environment's (a copy here)
    if run_id is not None:
        lines.append(f"run_id: {yaml_scalar(run_id)}")
    if confidence is not None:
        lines.append(f"confidence: {confidence:g}")
    if note is not None:
        lines.append(f"note: {yaml_scalar(note)}")
    return "\n".join(lines) + "\n"


def line_ending(raw: bytes) -> str:
    """The line ending a pin file uses, from its bytes: CRLF when its first line ends so (a pin
    written on Windows), else LF. Edits are made on LF text and written back with it, so a
    promotion's diff is the lines it changed, not every line."""
    first = raw.find(b"\n")
    return "\r\n" if first > 0 and raw[first - 1 : first] == b"\r" else "\n"


def yaml_scalar(text: str) -> str:
    """`text` as a one-line YAML scalar that reads back as exactly this string: plain when that
    is safe, else quoted. Names such as `*x`, `[x`, `yes`, `010`, `a: b` or ` x` need quotes
    (an alias, a list, a boolean, an octal number, a mapping, a lost space)."""
    dumped = yaml.safe_dump({"k": text}, allow_unicode=True, width=1 << 30)
    if "\n" not in dumped.rstrip("\n") and _reads_back(dumped, text):
        return dumped.rstrip("\n").removeprefix("k: ")
    # Line breaks, or characters a loader folds (U+2028): escaped in double quotes, one line.
    dumped = yaml.safe_dump({"k": text}, width=1 << 30, default_style='"')
    return dumped.strip().split(": ", 1)[1]


def _reads_back(dumped: str, text: str) -> bool:
    """Whether our own strict reader (documents) reads `dumped` back as `text` with no complaint
    (a plain `0E0` is a string to PyYAML but a number to YAML 1.2 editors: refused there)."""
    from reconciler.pins.documents import parse_yaml

    try:
        parsed = parse_yaml(dumped)
    except Exception:  # a character the reader refuses raw (a control character)
        return False
    return bool(parsed.data == {"k": text} and not parsed.problems)


def set_key(text: str, key: str, value: str) -> str:
    """`text` with the top-level `key:` set to `value` (its trailing comment kept), or the key
    added after the `version:` line (at the end if there is none)."""
    pattern = re.compile(_KEY_LINE.format(key=re.escape(key)), re.MULTILINE)
    found = pattern.search(text)
    if found and not _continuation(text, found.end()):
        return pattern.sub(lambda m: f"{m['key']}{value}{m['rest']}", text, count=1)
    if found:  # a multi-line value (block scalar, folded quotes): replace it whole
        text = remove_key(text, key)
    line = f"{key}: {value}"
    version = re.compile(_KEY_LINE.format(key="version"), re.MULTILINE).search(text)
    if version is None:
        return text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    end = version.end()
    return f"{text[:end]}\n{line}{text[end:]}"


def is_flow_style(text: str) -> bool:
    """Whether the pin is one flow mapping (`{model: m, version: 2}`): its keys are not lines,
    so the edits here cannot keep it as written."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return False  # validation says what is wrong with it
    return isinstance(node, yaml.MappingNode) and bool(node.flow_style)


def has_key(text: str, key: str) -> bool:
    return re.search(_KEY_LINE.format(key=re.escape(key)), text, re.MULTILINE) is not None


def remove_key(text: str, key: str) -> str:
    """`text` without the top-level `key:` and its value's continuation lines (a multi-line
    note); comments and other keys stay."""
    lines = text.splitlines(keepends=True)
    start = next(
        (i for i, line in enumerate(lines) if re.match(rf"{re.escape(key)}:(\s|$)", line)), None
    )
    if start is None:
        return text
    end = start + 1
    while end < len(lines):
        if lines[end][:1] in (" ", "\t"):
            end += 1
            continue
        # A blank line belongs to the value only when the value goes on after it.
        if not lines[end].strip():
            ahead = end
            while ahead < len(lines) and not lines[ahead].strip():
                ahead += 1
            if ahead < len(lines) and lines[ahead][:1] in (" ", "\t"):
                end = ahead
                continue
        break
    kept = "".join(lines[:start] + lines[end:])
    if end >= len(lines):  # it was the last key: no blank lines left dangling at the end
        kept = kept.rstrip() + "\n" if kept.strip() else ""
    return kept


def _continuation(text: str, end: int) -> bool:
    """Whether the value of the key line ending at `end` goes on on the next lines."""
    rest = text[end:].lstrip("\r\n").split("\n", 1)[0] if end < len(text) else ""
    line = text[:end].rsplit("\n", 1)[-1]
    value = line.split(":", 1)[1].split("#", 1)[0].strip() if ":" in line else ""
    opens = value[:1] in ("|", ">") or (value[:1] in ('"', "'") and not _closed(value))
    return opens or rest[:1] in (" ", "\t")


def _closed(value: str) -> bool:
    quote = value[0]
    return len(value) > 1 and value.endswith(quote)
