"""Versions mean what they say (issue 8 §3), and no YAML 1.1 spelling changes a pin's meaning.

PyYAML reads YAML 1.1: `010` is 8, `0x10` is 16, `1_000` is 1000, `yes`/`on` are true. Editors and
most other tools read YAML 1.2, where those are 10, 16, a string and strings. A pin must mean the
same to the reviewer, the editor and the tool, so such spellings are refused at their line.
"""

from __future__ import annotations

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli

PIN = "environments/production/m.yaml"


def errors(stderr: str) -> list[str]:
    return [line.removeprefix("error: ") for line in stderr.splitlines()][:-1]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        pytest.param(
            "010",
            "'010' is not a model version: write 10 without leading zeros "
            "(unquoted, YAML 1.1 reads 010 as octal: 8)",
            id="octal",
        ),
        pytest.param(
            '"010"',
            "'010' is not a model version: write 10 without leading zeros "
            "(unquoted, YAML 1.1 reads 010 as octal: 8)",
            id="quoted-octal",
        ),
        pytest.param(
            "0x10",
            "'0x10' is not a model version: write the version as plain digits, e.g. 15",
            id="hex",
        ),
        pytest.param(
            "1_000",
            "'1_000' is not a model version: write the version as plain digits, e.g. 15",
            id="underscore",
        ),
        pytest.param(
            "1.0",
            "'1.0' is not a model version: write the version as plain digits, e.g. 15",
            id="float",
        ),
        pytest.param(
            "+3",
            "'+3' is not a model version: write the version as plain digits, e.g. 15",
            id="sign",
        ),
        pytest.param(
            "-3",
            "'-3' is not a model version: write the version as plain digits, e.g. 15",
            id="negative",
        ),
        pytest.param("0", "'0' is not a model version: versions start at 1", id="zero"),
        pytest.param(
            "2147483648",
            "'2147483648' is not a model version: the largest version MLflow can store is "
            "2147483647",
            id="too-big",
        ),
        pytest.param(
            "99999999999999999999",
            "'99999999999999999999' is not a model version: the largest version MLflow can store "
            "is 2147483647",
            id="huge",
        ),
        pytest.param(
            "1:30",
            "'1:30' is not a model version: write the version as plain digits, e.g. 15",
            id="sexagesimal",
        ),
        pytest.param(
            "true",
            "'true' is not a model version: write the version as plain digits, e.g. 15",
            id="bool",
        ),
        pytest.param(
            "~", "'~' is not a model version: write the version as plain digits, e.g. 15", id="null"
        ),
        pytest.param(
            "'v2'",
            "'v2' is not a model version: write the version as plain digits, e.g. 15",
            id="v-prefix",
        ),
    ],
)
def test_version_spellings_are_refused_at_their_line(
    repo: Repo, run: RunCli, fake: FakeRegistry, written: str, message: str
) -> None:
    fake.create_version("m")
    repo.write(PIN, f"model: m\nversion: {written}\n")
    for command in ("validate", "plan"):
        result = run(command)
        assert result.exit_code == 1, result.stdout
        assert errors(result.stderr) == [f"{PIN}:2: version: {message}"], result.stderr
        assert "Traceback" not in result.stderr
    assert fake.writes == []


def test_octal_looking_version_is_never_applied_as_another(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    for _ in range(10):
        fake.create_version("m")
    repo.write(PIN, "model: m\nversion: 010\n")
    repo.commit("pin m 010")
    result = run("apply")
    assert result.exit_code == 1
    assert fake.read(["m"]).models["m"].in_stage(PRODUCTION) == []
    assert fake.writes == []


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("15", id="bare"),
        pytest.param('"15"', id="double"),
        pytest.param("'15'", id="single"),
    ],
)
def test_plain_and_quoted_digits_are_versions(repo: Repo, run: RunCli, written: str) -> None:
    repo.write(PIN, f"model: m\nversion: {written}\n")
    result = run("validate")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        pytest.param(
            "environments/production.yaml",
            "prune: yes\n",
            "environments/production.yaml:1: prune: yes is true in YAML 1.1 but the string 'yes' "
            "in YAML 1.2 (editors): write true or false, or quote it",
            id="prune-yes",
        ),
        pytest.param(
            "environments/production.yaml",
            "prune: on\n",
            "environments/production.yaml:1: prune: on is true in YAML 1.1 but the string 'on' "
            "in YAML 1.2 (editors): write true or false, or quote it",
            id="prune-on",
        ),
        pytest.param(
            "environments/production.yaml",
            "alias: no\n",
            "environments/production.yaml:1: alias: no is false in YAML 1.1 but the string 'no' "
            "in YAML 1.2 (editors): write true or false, or quote it",
            id="alias-no",
        ),
        pytest.param(
            "environments/production.yaml",
            "max_retire: 010\n",
            "environments/production.yaml:1: max_retire: 010 is the number 8 in YAML 1.1 but the "
            "number 10 in YAML 1.2 (editors): write the number plainly, or quote it",
            id="octal-limit",
        ),
        pytest.param(
            "environments/production.yaml",
            "gates:\n  metrics:\n    accuracy: {min: 1e-1}\n",
            "environments/production.yaml:3: gates.metrics.accuracy.min: 1e-1 is the string "
            "'1e-1' in YAML 1.1 but the number 0.1 in YAML 1.2 (editors): write the number "
            "plainly, or quote it",
            id="exponent-without-dot",
        ),
        pytest.param(
            "environments/production.yaml",
            "gates:\n  tags: {smoke_test: off}\n",
            "environments/production.yaml:2: gates.tags.smoke_test: off is false in YAML 1.1 but "
            "the string 'off' in YAML 1.2 (editors): write true or false, or quote it",
            id="tag-value-off",
        ),
        pytest.param(
            "environments/production/m.yaml",
            "model: m\nversion: 1\nnote: yes\n",
            "environments/production/m.yaml:3: note: yes is true in YAML 1.1 but the string 'yes' "
            "in YAML 1.2 (editors): write true or false, or quote it",
            id="pin-note-yes",
        ),
        pytest.param(
            "environments/production.yaml",
            "stage:\n",
            "environments/production.yaml:1: stage: no value: write null if you mean none, or the "
            "value",
            id="stage-empty",
        ),
    ],
)
def test_yaml_1_1_only_meanings_are_refused(
    repo: Repo, run: RunCli, file: str, text: str, expected: str
) -> None:
    if file != PIN:
        repo.pin("production", "m", 1)
    repo.write(file, text)
    result = run("validate")
    assert result.exit_code == 1
    assert errors(result.stderr) == [expected], result.stderr


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("stage: null\nalias: champion\n", id="null"),
        pytest.param("stage: ~\nalias: champion\n", id="tilde"),
        pytest.param("prune: true\n", id="true"),
        pytest.param("prune: False\n", id="False"),
        pytest.param("alias: 'no'\n", id="quoted-no"),
        pytest.param("gates:\n  tags: {smoke_test: 'on'}\n", id="quoted-on"),
        pytest.param("gates:\n  metrics:\n    accuracy: {min: 0.1, max: 1.0e+0}\n", id="floats"),
    ],
)
def test_spellings_both_yaml_versions_agree_on_are_accepted(
    repo: Repo, run: RunCli, text: str
) -> None:
    repo.pin("production", "m", 1)
    repo.write("environments/production.yaml", text)
    result = run("validate")
    assert result.exit_code == 0, result.stderr


def test_alias_only_production_by_tilde(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("m")
    repo.pin("production", "m", 1)
    repo.write("environments/production.yaml", "stage: ~\nalias: champion\n")
    result = run("plan")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        "production (@champion)",
        "  ~ m: none → v1 (@champion → v1 (new))",
    ]
