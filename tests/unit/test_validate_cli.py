"""`reconciler validate` through the CLI: every kind of bad input, with file, line and field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Repo, RunCli


def errors(stderr: str) -> list[str]:
    return [line.removeprefix("error: ") for line in stderr.splitlines()][:-1]


def test_valid_repository(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "churn-model", 6)
    repo.pin("staging", "churn-model", '"15"', run_id="2f5656f8aa", note="better recall")
    result = run("validate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok: 2 pin(s) in 2 environment(s) are valid\n"
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "model: m\nversion: 1\ncolour: red\n",
            "3: colour: unknown key (allowed: confidence, from, gates, model, note, run_id, serving, version)",
        ),
        ("model: m\n", "1: version: required key is missing"),
        ("model: m\nversion: 0\n", "2: version: '0' is not a model version: versions start at 1"),
        ("model: m\nversion: -3\n", "2: version: '-3' is not a model version"),
        ("model: m\nversion: 1.5\n", "2: version: '1.5' is not a model version"),
        ("model: m\nversion: 'v2'\n", "2: version: 'v2' is not a model version"),
        ("model: m\nversion: true\n", "2: version: 'true' is not a model version"),
        ("model: m\nversion: [1]\n", "2: version: [1] is not valid"),
        ("model: 12\nversion: 1\n", "1: model: must be a string, got 12"),
        ("model: m\nversion: 1\nrun_id: [a]\n", "3: run_id: must be a string, got ['a']"),
        ("model: m\nversion: 1\nversion: 2\n", "3: version: duplicate key (first set on line 2)"),
        ("model: &n m\nversion: 1\n", "1: YAML anchors (&name) are not allowed"),
        ("base: &b {model: m}\n<<: *b\nversion: 1\n", "1: YAML anchors (&name) are not allowed"),
        ("model: m\nversion: [1\n", "3: invalid YAML"),
        ("- model: m\n", "1: the file must hold a mapping of keys to values, got [{'model': 'm'}]"),
        ("", "1: file is empty"),
        ("model: m\nversion: 1\n---\nmodel: m\n", "3: invalid YAML: expected a single document"),
    ],
)
def test_bad_pin(repo: Repo, run: RunCli, text: str, expected: str) -> None:
    repo.write("environments/production/m.yaml", text)
    result = run("validate")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = errors(result.stderr)
    assert any(line.startswith(f"environments/production/m.yaml:{expected}") for line in lines), (
        lines
    )
    assert "Traceback" not in result.stderr


def test_all_problems_reported_in_one_run(repo: Repo, run: RunCli) -> None:
    repo.write("environments/production/a.yaml", "model: a\nversion: 1\nextra: 1\nversion: 2\n")
    repo.write("environments/staging/b.yaml", "model: wrong\nversion: 0\n")
    result = run("validate")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        "environments/production/a.yaml:3: extra: unknown key (allowed: confidence, from, gates, model, note, run_id, serving, version)",
        "environments/production/a.yaml:4: version: duplicate key (first set on line 2)",
        "environments/staging/b.yaml:1: model: 'wrong' must match the file name ('b'): one file per model",
        "environments/staging/b.yaml:2: version: '0' is not a model version: versions start at 1",
    ]
    assert (
        result.stderr.splitlines()[-1]
        == "error: 4 problem(s) found; nothing was changed in the registry."
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # The problem in words, not the schema's description of a valid name (issue 15 §9).
        ("a:b", "'a:b' holds ':', which MLflow refuses in model names"),
        ("..x", "'..x' is not a name MLflow accepts"),
        (" padded", "' padded' starts with whitespace, which a pin's model name cannot"),
        pytest.param(
            "a\\b",
            "'a\\\\b' cannot be named in MLflow's search filters (a backslash or a control character)",
            id="backslash",
        ),
        pytest.param(
            "tab\tname",
            "'tab\\tname' cannot be named in MLflow's search filters (a backslash or a control character)",
            id="tab",
        ),
    ],
)
def test_names_mlflow_rejects(repo: Repo, run: RunCli, name: str, message: str) -> None:
    repo.write(f"environments/production/{name}.yaml", f"model: '{name}'\nversion: 1\n")
    result = run("validate")
    assert result.exit_code == 1
    shown = name.replace("\t", "\\t")  # one problem, one line: control characters escaped
    assert f"environments/production/{shown}.yaml:1: model: {message}" in result.stderr


def test_same_model_twice_in_one_environment(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "m", 1)
    repo.write("environments/production/m.yml", "model: m\nversion: 2\n")
    result = run("validate")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        "environments/production/m.yml:1: model: 'm' is pinned twice in environment 'production' "
        "(also in environments/production/m.yaml)"
    ]


def test_non_utf8(repo: Repo, run: RunCli) -> None:
    path = repo.root / "environments/production/m.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"model: m\nversion: 1\nnote: caf\xe9\n")
    result = run("validate")
    assert errors(result.stderr) == ["environments/production/m.yaml:3: file is not valid UTF-8"]


def test_oversized_file(repo: Repo, run: RunCli) -> None:
    repo.write("environments/production/m.yaml", "model: m\nversion: 1\n" + "#" * 70_000 + "\n")
    result = run("validate")
    assert result.exit_code == 1
    assert (
        "environments/production/m.yaml: file is 70021 bytes; the limit is 65536" in result.stderr
    )


def test_symlink_leaving_the_repository(repo: Repo, run: RunCli, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("model: m\nversion: 1\n")
    (repo.root / "environments/production").mkdir(parents=True)
    os.symlink(outside, repo.root / "environments/production/m.yaml")
    result = run("validate")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        "environments/production/m.yaml: symlink points outside the repository"
    ]


def test_an_environment_folder_linked_out_of_the_repository(
    repo: Repo, run: RunCli, tmp_path: Path
) -> None:
    """git stores only the link: the pins behind it are in no commit, and apply would read them."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "m.yaml").write_text("model: m\nversion: 1\n")
    (repo.root / "environments").mkdir(parents=True, exist_ok=True)
    repo.write("environments/canary.yaml", "stage: null\nalias: canary\n")
    os.symlink(outside, repo.root / "environments/canary")
    result = run("validate")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        "environments/canary/m.yaml: symlink points outside the repository"
    ]


def test_symlink_inside_the_repository_is_fine(repo: Repo, run: RunCli) -> None:
    target = repo.pin("staging", "m", 3)
    (repo.root / "environments/production").mkdir(parents=True)
    os.symlink(target, repo.root / "environments/production/m.yaml")
    assert run("validate").exit_code == 0


def test_environment_settings(repo: Repo, run: RunCli) -> None:
    repo.write("environments/shadow.yaml", "stage: null\nalias: shadow\n")
    repo.write("environments/production.yaml", "alias: champion\n")
    repo.pin("shadow", "m", 1)
    repo.pin("production", "m", 1)
    result = run("validate")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        (
            "environments/production.yaml",
            "stage: Prod\n",
            "environments/production.yaml:1: stage: must be one of Staging, Production, null; got 'Prod'",
        ),
        (
            "environments/production.yaml",
            "alias: latest\n",
            "environments/production.yaml:1: alias: 'latest' is reserved by MLflow",
        ),
        (
            "environments/production.yaml",
            "alias: v3\n",
            "environments/production.yaml:1: alias: 'v3' is reserved by MLflow",
        ),
        (
            "environments/production.yaml",
            "alias: 'a b'\n",
            "environments/production.yaml:1: alias: 'a b' is not valid",
        ),
        (
            "environments/production.yaml",
            "stage: Production\nprume: true\n",
            "environments/production.yaml:2: prume: unknown key (allowed: alias, gates, max_retire, prune, registry, requires, serving, stage)",
        ),
        (
            "environments/production.yaml",
            "stage: null\n",
            "environments/production.yaml:1: an environment must set a `stage`, an `alias`, or both",
        ),
    ],
)
def test_bad_settings(repo: Repo, run: RunCli, file: str, text: str, expected: str) -> None:
    repo.pin("production", "m", 1)
    repo.write(file, text)
    result = run("validate")
    assert result.exit_code == 1
    assert errors(result.stderr)[0].startswith(expected), result.stderr


def test_environment_without_settings(repo: Repo, run: RunCli) -> None:
    repo.pin("canary", "m", 1)
    result = run("validate")
    assert errors(result.stderr) == [
        "environments/canary: environment 'canary' needs settings: create environments/canary.yaml "
        "with `stage:` and/or `alias:`"
    ]


def test_two_environments_claiming_one_stage(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "m", 1)
    repo.pin("live", "m", 1)
    repo.write("environments/live.yaml", "stage: Production\n")
    result = run("validate")
    assert errors(result.stderr) == [
        "environments/production: stage: 'Production' is already used by environment 'live'; "
        "each environment needs its own"
    ]


def test_no_environments_folder(repo: Repo, run: RunCli) -> None:
    result = run("validate")
    assert result.exit_code == 1
    assert errors(result.stderr) == ["environments: folder not found"]


def test_validate_named_paths(repo: Repo, run: RunCli) -> None:
    good = repo.pin("production", "good", 1)
    repo.write("environments/production/bad.yaml", "model: bad\n")
    assert run("validate", str(good)).exit_code == 0
    result = run("validate", str(repo.root / "environments/production"))
    assert errors(result.stderr) == [
        "environments/production/bad.yaml:1: version: required key is missing"
    ]
    stray = repo.write("notes/x.yaml", "a: 1\n")
    result = run("validate", str(stray))
    assert result.exit_code == 1
    assert "notes/x.yaml: not a pin" in result.stderr
    missing = run("validate", str(repo.root / "environments/production/nope.yaml"))
    assert missing.exit_code == 1
    assert "nope.yaml: no such file" in missing.stderr


def test_nested_folder_in_environment(repo: Repo, run: RunCli) -> None:
    repo.pin("production", "m", 1)
    repo.write("environments/production/old/m.yaml", "model: m\nversion: 1\n")
    result = run("validate")
    assert errors(result.stderr) == [
        "environments/production/old: folders inside an environment are not read; "
        "pins go in environments/<env>/<model>.yaml"
    ]


def test_github_annotations_mark_the_diff_lines(repo: Repo) -> None:
    from click.testing import CliRunner

    from reconciler.cli import AppContext, cli

    repo.write("environments/production/m.yaml", "model: m\nversion: 0\nnote: 50%, a:b\nextra: 1\n")
    annotations = [
        "::error file=environments/production/m.yaml,line=2,title=reconciler%3A version::'0' is not a "
        "model version: versions start at 1",
        "::error file=environments/production/m.yaml,line=4,title=reconciler%3A extra::unknown key "
        "(allowed: confidence, from, gates, model, note, run_id, serving, version)",
    ]
    asked = CliRunner().invoke(
        cli, ["validate", "--format", "github"], obj=AppContext(root=repo.root)
    )
    assert asked.exit_code == 1
    assert asked.stdout.splitlines() == annotations
    assert "error: environments/production/m.yaml:2: version:" in asked.stderr
    # Inside GitHub Actions every command annotates, on stderr: stdout stays the command's own
    # document (the plan file, JSON), which annotations must never get into.
    for args in (["validate"], ["plan", "--format", "markdown"], ["status", "--format", "json"]):
        result = CliRunner(env={"GITHUB_ACTIONS": "true"}).invoke(
            cli, args, obj=AppContext(root=repo.root)
        )
        assert result.exit_code == 1, args
        assert "::error" not in result.stdout, args
        assert [line for line in result.stderr.splitlines() if line.startswith("::")] == annotations
    plain = CliRunner().invoke(cli, ["validate"], obj=AppContext(root=repo.root))
    assert plain.stdout == ""
    assert "::error" not in plain.stderr  # outside GitHub Actions: no workflow commands


def test_github_annotation_escaping() -> None:
    from reconciler.cli import github_annotation
    from reconciler.errors import Problem

    # The file exactly (GitHub matches it against the diff), percent-encoded; the message one
    # line, as the error line on stderr (issue 15 §7).
    annotation = github_annotation(Problem("a,b:c\r\n.yaml", 3, "x,y", "50% done\nnext\x1b"))
    assert annotation == (
        "::error file=a%2Cb%3Ac%0D%0A.yaml,line=3,title=reconciler%3A x%2Cy::50%25 done\\nnext\\x1b"
    )
