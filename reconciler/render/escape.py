"""Names and values from outside (model names, notes, tags, error texts) made safe for the
format they are shown in, so that no value can end its line, cell or code span, or pass for
output of ours. MLflow accepts model names holding newlines, backticks, `|`, `<` and `>`, and
anyone who can write to the registry can name one; the plan comment is what reviewers approve.

One rule per format, used by every renderer and by the CLI's own lines:
* text: one value, one line: characters that are not printable (control characters, ANSI
  escapes, line separators, bidi overrides such as U+202E, zero-width ones) are shown as
  Python-style escapes (`\\n`, `\\x1b`, `\\u202e`), the rule `errors.Problem` uses too;
* markdown: names in code spans nothing inside can close; prose with every character that
  markdown or HTML reads escaped; table cells with their `|` escaped. All of it on one line,
  so no value can start a heading, a list or a `<details>` block;
* GitHub workflow commands: `%`, CR and LF percent-encoded, and `:` and `,` in properties.
"""

from __future__ import annotations

import re

# Markdown that a value could start inline: emphasis, code, links and images, strikethrough,
# tables, math ($), headings and HTML. `<`, `>` and `&` become entities (HTML's own rule, and
# an entity in the value stays literal), the rest a backslash (CommonMark escapes any ASCII
# punctuation that way). Block markers (`-`, `+`, `1.`) are harmless: a value never starts a
# line. Underscores inside a word (`latency_ms`) cannot emphasise, so they stay as written.
_MARKDOWN_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]#|~$]|_+")
_BACKTICK_RUN = re.compile(r"`+")


def text(value: str) -> str:
    """`value` on one line as a terminal shows it: every character that is not printable is
    shown escaped (a newline as `\\n`, ESC as `\\x1b`, U+202E as `\\u202e`). Idempotent: the
    escapes are printable. A backslash stays as it is, so `a\\nb` written with a backslash
    reads the same: the JSON formats carry the exact value."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


def lines(rendered: list[str]) -> str:
    """A text report: its lines joined, each shown by `text` (whatever a value holds, an entry
    stays one line)."""
    return "\n".join(text(line) for line in rendered)


def md_code(value: str) -> str:
    """`value` as a markdown code span that nothing inside can close: fenced by one backtick
    more than its longest run of backticks, padded when it starts or ends with one (CommonMark
    strips one space on each side). Inside a table, pass the cell through `md_cell`."""
    shown = text(value)
    fence = "`" * (max((len(run) for run in _BACKTICK_RUN.findall(shown)), default=0) + 1)
    padded = shown.startswith(("`", " ")) or shown.endswith(("`", " "))
    pad = " " if padded and shown.strip(" ") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def md_text(value: str) -> str:
    """`value` as markdown prose that renders as exactly these characters: no emphasis, link,
    code span, HTML tag, heading or table from a value. For inline positions (a value never
    starts a line of ours)."""
    shown = text(value)

    def escaped(found: re.Match[str]) -> str:
        start, end = found.span()
        run = found.group()
        if run[0] == "_" and _in_word(shown, start - 1) and _in_word(shown, end):
            return run
        return "".join(f"\\{c}" for c in run)

    marked = _MARKDOWN_SPECIAL.sub(escaped, shown)
    return "".join(_MARKDOWN_ENTITIES.get(c, c) for c in marked)


def _in_word(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index].isalnum()


def md_cell(markdown: str) -> str:
    """Markdown (ours, its values already escaped) as one GitHub table cell: every `|` escaped,
    inside code spans too (GitHub splits the row before it reads code spans, and drops one
    backslash before each `|`), our own line breaks as `<br>`."""
    return markdown.replace("|", "\\|").replace("\n", "<br>")


def workflow_data(value: str) -> str:
    """A GitHub workflow command's message (after `::`): `%`, CR and LF percent-encoded."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(value: str) -> str:
    """A workflow command's property value (`file=`, `title=`): as data, and `:`, `,` too."""
    return workflow_data(value).replace(":", "%3A").replace(",", "%2C")
