"""Markdown as GitHub renders it (cmark-gfm, GitHub's own parser, with its table extension), read
back as the structure a reviewer sees: headings, `<details>` blocks, table rows and code spans.
Raw HTML is let through (as GitHub lets `<details>`, `<summary>` and `<br>` through), so a tag a
value smuggled in shows up here as a tag."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


@dataclass
class Rendered:
    headings: list[tuple[str, str]] = field(default_factory=list)  # (tag, text)
    tags: dict[str, int] = field(default_factory=dict)  # opening tags by name
    tables: list[list[int]] = field(default_factory=list)  # per table, cells per row
    codes: list[str] = field(default_factory=list)  # the text of each code span
    text: str = ""  # every text node, as shown


class _Reader(HTMLParser):
    def __init__(self, into: Rendered) -> None:
        super().__init__(convert_charrefs=True)
        self.into = into
        self.heading: str | None = None
        self.code: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.into.tags[tag] = self.into.tags.get(tag, 0) + 1
        if tag == "table":
            self.into.tables.append([])
        elif tag == "tr":
            self.into.tables[-1].append(0)
        elif tag in ("td", "th"):
            self.into.tables[-1][-1] += 1
        elif tag in HEADINGS:
            self.heading = tag
            self.into.headings.append((tag, ""))
        elif tag == "code":
            self.code = []

    def handle_endtag(self, tag: str) -> None:
        if tag in HEADINGS:
            self.heading = None
        elif tag == "code" and self.code is not None:
            self.into.codes.append("".join(self.code))
            self.code = None

    def handle_data(self, data: str) -> None:
        self.into.text += data
        if self.code is not None:
            self.code.append(data)
        if self.heading is not None:
            tag, text = self.into.headings[-1]
            self.into.headings[-1] = (tag, text + data)


def render(markdown: str) -> Rendered:
    """`markdown` as GitHub would show it."""
    page = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    found = Rendered()
    _Reader(found).feed(page)
    return found
