"""Hypothesis fuzzing of the pin loader and validator through the CLI: random bytes, random YAML,
and schema-valid documents that are wrong. Never a traceback; exit 0 or 1; every error names the
file; nothing is written to the registry unless the pin is right."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, make_runner

PIN = "environments/production/m.yaml"
FUZZ_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def run_both(content: bytes) -> tuple[list[tuple[int, str, str]], FakeRegistry]:
    registry = FakeRegistry()
    registry.create_version("m")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Repo(Path(tmp) / "repo")
        path = repo.root / PIN
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        run = make_runner(repo.root, registry)
        outcomes = []
        for command in ("validate", "plan", "apply"):
            result = run(command)  # an exception here fails the test: no traceback allowed
            outcomes.append((result.exit_code, result.stdout, result.stderr))
    return outcomes, registry


def assert_well_behaved(outcomes: list[tuple[int, str, str]], registry: FakeRegistry) -> None:
    validate_code = outcomes[0][0]
    for code, _stdout, stderr in outcomes:
        assert code in (0, 1)
        assert "Traceback" not in stderr
        if code == 1:
            lines = stderr.splitlines()
            assert lines, "an error without a message"
            for line in lines[:-1]:
                assert line.startswith(f"error: {PIN}"), line
    if validate_code == 1:
        assert outcomes[2][0] == 1
        assert registry.writes == []


@FUZZ_SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(content: bytes) -> None:
    assert_well_behaved(*run_both(content))


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)


@FUZZ_SETTINGS
@given(json_values)
def test_random_yaml(value: object) -> None:
    assert_well_behaved(*run_both(yaml.safe_dump(value).encode()))


@FUZZ_SETTINGS
@given(
    st.fixed_dictionaries(
        {
            "model": st.sampled_from(["m", "n", "M", "m "]) | st.text(min_size=1, max_size=12),
            "version": st.integers(min_value=1, max_value=10**15)
            | st.from_regex(r"\A[1-9][0-9]{0,5}\Z"),
        },
        optional={
            "run_id": st.from_regex(r"\A[0-9a-zA-Z_-]{1,64}\Z"),
            "note": st.text(max_size=50),
        },
    )
)
def test_schema_valid_but_wrong(document: dict[str, object]) -> None:
    outcomes, registry = run_both(yaml.safe_dump(document, allow_unicode=True).encode())
    assert_well_behaved(outcomes, registry)
    right = (
        document["model"] == "m" and str(document["version"]) == "1" and "run_id" not in document
    )
    if not right:
        assert registry.writes == []
    else:
        assert outcomes[2][0] == 0
