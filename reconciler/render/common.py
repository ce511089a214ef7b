"""Small pieces every renderer shares: version lists, counted nouns (escaping: escape.py)."""

from __future__ import annotations

from collections.abc import Iterable


def versions(versions: Iterable[str]) -> str:
    shown = ", ".join(f"v{v}" for v in versions)
    return shown or "none"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
