"""Pin files as text: new pins read back as written, edits keep everything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.pins import pinfile
from reconciler.pins.documents import parse_yaml


@given(
    st.one_of(
        st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
        # Spellings YAML 1.1 and 1.2 read differently (0E0, 0o17, 1_0, .5): quoted, never plain.
        st.from_regex(r"[0-9eE.+\-_xo:]{1,8}", fullmatch=True),
    )
)
def test_yaml_scalar_reads_back_as_the_same_string(text: str) -> None:
    line = f"model: {pinfile.yaml_scalar(text)}"
    assert "\n" not in line
    parsed = parse_yaml(line + "\n")
    assert parsed.data == {"model": text}
    assert parsed.problems == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("model: m\nversion: 1\nnote: x\n", "model: m\nversion: 1\n", id="last"),
        pytest.param(
            "model: m\nnote: >\n  a\n\n  b\nversion: 1\n", "model: m\nversion: 1\n", id="folded"
        ),
        pytest.param(
            "model: m\nnote: a\n\n# keep\nversion: 1\n",
            "model: m\n\n# keep\nversion: 1\n",
            id="blank-then-comment",
        ),
        pytest.param("model: m\nversion: 1\n", "model: m\nversion: 1\n", id="absent"),
        pytest.param("model: m\nnotes: 1\n", "model: m\nnotes: 1\n", id="other-key"),
    ],
)
def test_remove_key(before: str, after: str) -> None:
    assert pinfile.remove_key(before, "note") == after


def test_set_key_replaces_a_multi_line_value_whole() -> None:
    before = "model: m\nversion: 1  # why\nnote: |\n  old\n  text\ngates: {}\n"
    assert pinfile.set_key(before, "note", "new") == (
        "model: m\nversion: 1  # why\nnote: new\ngates: {}\n"
    )
