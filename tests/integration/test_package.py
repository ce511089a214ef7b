"""Issue 16: the released package, as a team adopts it. The wheel and sdist are built once per
run from a clean copy of the tree (tests/support/package.py), installed into a fresh virtualenv
outside any checkout from a local wheelhouse, and used from there: `init` a new promotion
repository, `validate`, `import` from a real server, `plan`, `apply`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

import reconciler
from tests.integration.conftest import Seeder
from tests.support import package
from tests.support.workflow import Runner

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> package.Dist:
    return package.build(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def wheelhouse(dist: package.Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package.wheelhouse(dist, tmp_path_factory.mktemp("index") / "wheelhouse")


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside any checkout: the user's machine (and the runner's temp folder)."""
    return tmp_path_factory.mktemp("user")


@pytest.fixture(scope="module")
def tool(wheelhouse: Path, user: Path) -> Path:
    """The `reconciler` the composite action installs (action.yml's own steps): a fresh
    virtualenv with the released wheel and its dependencies, from the wheelhouse alone."""
    (user / "work").mkdir()
    runner = Runner(user / "work", package.offline_pip_env(wheelhouse), temp=user / "runner")
    installed = runner.action(package.REPO, {})
    assert installed.ok, installed.log
    assert installed.outputs["version"] == reconciler.__version__
    assert f"reconciler {reconciler.__version__} in {user / 'runner'}" in installed.log
    return user / "runner" / f"mlflow-reconciler-{reconciler.__version__}" / "bin" / "reconciler"


def test_the_wheel_and_sdist_carry_the_package_and_nothing_of_tests(dist: package.Dist) -> None:
    version = reconciler.__version__
    assert dist.wheel.name == f"mlflow_reconciler-{version}-py3-none-any.whl"
    assert dist.sdist.name == f"mlflow_reconciler-{version}.tar.gz"
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"mlflow_reconciler-{version}.dist-info/METADATA").decode()
    assert {name.split("/")[0] for name in names} == {
        "reconciler",
        f"mlflow_reconciler-{version}.dist-info",
    }
    for schema in ("pin", "environment", "defaults"):
        assert f"reconciler/schemas/{schema}.schema.json" in names
    assert "reconciler/py.typed" in names
    for template in ("workflows/pr.yml", "action.yml", "README.md", "environments/production.yaml"):
        assert f"reconciler/scaffold/templates/{template}" in names
    assert f"mlflow_reconciler-{version}.dist-info/licenses/LICENSE" in names
    assert f"Version: {version}" in metadata
    assert "Project-URL: Changelog, " in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata
    with tarfile.open(dist.sdist) as sdist:
        top = {Path(name).parts[1] for name in sdist.getnames() if len(Path(name).parts) > 1}
    assert top == {
        "reconciler", "README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml", "PKG-INFO",
        ".gitignore",
    }  # fmt: skip


def test_the_installed_wheel_runs_outside_any_checkout(tool: Path) -> None:
    version = subprocess.run(
        [str(tool), "--version"], cwd=tool.parent, capture_output=True, text=True, check=True
    )
    assert version.stdout == f"reconciler {reconciler.__version__}\n"
    where = subprocess.run(
        [str(tool.parent / "python"), "-c", "import reconciler; print(reconciler.__file__)"],
        cwd=tool.parent, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(tool.parent.parent / "lib"))


def test_the_changelog_has_a_section_for_this_version() -> None:
    changelog = (package.REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(reconciler.__version__)}\]$", changelog, re.M)


def test_this_repositorys_action_builds_the_checkout(dist: package.Dist, user: Path) -> None:
    """Dogfood: .github/actions/reconciler here builds the wheel of the checked-out commit and
    hands it to the root action as a pinned version with `find-links`."""
    tree = dist.wheel.parent.parent / "tree"
    runner = Runner(tree, {}, temp=user / "dogfood")
    built = runner.action_step(tree / ".github/actions/reconciler", "build")
    assert built.outcome == "success", built.stderr
    assert built.outputs["version"] == reconciler.__version__
    (wheel,) = Path(built.outputs["find-links"]).glob("*.whl")
    assert wheel.name == dist.wheel.name


def test_the_action_installs_only_a_pinned_release(wheelhouse: Path, user: Path) -> None:
    (user / "work").mkdir(exist_ok=True)  # also when run alone
    runner = Runner(user / "work", package.offline_pip_env(wheelhouse), temp=user / "elsewhere")
    for version, says in [
        (".", "the version input is not a release version"),
        ("0.1.0 --index-url http://evil", "is not a release version"),
        ("git+https://example.com/x", "is not a release version"),
        ("0.1.0+local.ver", "is not a release version"),
        # Never echoed: a newline would start a workflow command (hostile review).
        ("x\n::warning title=spoof::hi", "is not a release version"),
    ]:
        refused = runner.action(package.REPO, {"version": version})
        assert not refused.ok
        assert says in refused.log
        assert "spoof" not in refused.log
    assert not list((user / "elsewhere").glob("mlflow-reconciler-*"))  # nothing installed


def test_from_nothing_to_a_passing_pull_request_plan(
    tool: Path, user: Path, wheelhouse: Path, seeder: Seeder, mlflow_server: str, tmp_path: Path
) -> None:
    """The README's "Get started" on a fresh machine: the installed wheel, `init
    --from-registry` into a new git repository, a commit; then the generated workflows' jobs
    (the action init pinned, standing in for the release by this checkout's action.yml) plan
    a pull request and apply the merge against the real server."""
    model = seeder.name("adopted")
    seeder.model(model, [0.8, 0.9])
    seeder.stage(model, "1", "Production")
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}

    def reconciler_(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(tool), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )

    pins = tmp_path / "pins"
    made = reconciler_("init", str(pins), "--from-registry", "--format", "json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    document = json.loads(made.stdout)
    assert document["git_initialized"] is True
    imported = {(p["environment"], p["model"], p["version"]) for p in document["imported"]["pins"]}
    assert ("production", model, "1") in imported
    assert not list(pins.rglob("*.py"))
    # The session's server holds other tests' models, applied from other repositories (whose
    # fences would refuse this one): this team adopts its own model only.
    for pin in (pins / "environments").glob("*/*.yaml"):
        if pin.stem != model:
            pin.unlink()
    subprocess.run(["git", "add", "-A"], cwd=pins, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "Promotion repository"], cwd=pins, check=True)

    validated = reconciler_("validate", cwd=pins)
    assert validated.returncode == 0, validated.stderr
    in_sync = reconciler_("plan", "--model", model, "--detailed-exitcode", cwd=pins)
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr

    # A pull request promoting v2, planned by the generated pr.yml through the pinned action.
    subprocess.run(["git", "switch", "-q", "-c", "promote"], cwd=pins, check=True)
    promoted = reconciler_("promote", model, "--to", "production", "--version", "2", cwd=pins)
    assert promoted.returncode == 0, promoted.stderr
    subprocess.run(["git", "commit", "-q", "-am", f"Promote {model} v2"], cwd=pins, check=True)
    gh = tmp_path / "gh-bin"
    gh.mkdir()
    (gh / "gh").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "gh.log"}\n')
    (gh / "gh").chmod(0o755)
    event = {"pull_request": {"number": 1, "head": {"repo": {"full_name": "org/pins"}}}}
    runner = Runner(
        pins, package.offline_pip_env(wheelhouse), extra_path=gh,
        workflows=pins / ".github" / "workflows", secrets={"MLFLOW_TRACKING_URI": mlflow_server},
        github={"event": event}, temp=user / "runner",
    )  # fmt: skip
    validate = runner.job("pr.yml", "validate")
    assert validate.ok, validate.log
    plan = runner.job("pr.yml", "plan")
    assert plan.ok, plan.log
    assert plan.step("reconciler plan").outputs["changes-pending"] == "true"
    assert f"in {tool.parent.parent}" in plan.log  # the installed release ran, not this checkout
    comment = (tmp_path / "gh.log").read_text()
    assert "### Registry plan: changes pending" in comment
    assert f"`{model}` v1 → v2" in comment

    # The merge: reconcile.yml applies in promotion order and verifies.
    order = runner.job("reconcile.yml", "order")
    assert order.ok, order.log
    needs: dict[str, dict[str, object]] = {"order": {"result": "success", "outputs": order.outputs}}
    if order.outputs["before"] != "[]":
        staging = runner.job("reconcile.yml", "staging", needs=needs)
        assert staging.ok, staging.log
        needs["staging"] = {"result": "success", "outputs": staging.outputs}
    else:
        needs["staging"] = {"result": "skipped", "outputs": {}}
    production = runner.job("reconcile.yml", "production", needs=needs)
    assert production.ok, production.log
    assert production.outputs["changed_models"] == json.dumps([model])
    assert seeder.stages(model) == {"1": "Archived", "2": "Production"}
