"""`reconciler import`: pins for what a live registry serves, written as files only."""

from __future__ import annotations

import json

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, RunCli

pytestmark = pytest.mark.filterwarnings("error")


def _files(repo: Repo) -> dict[str, str]:
    base = repo.root / "environments"
    if not base.exists():
        return {}
    return {
        p.relative_to(repo.root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def _seed(fake: FakeRegistry) -> None:
    fake.create_version("prod-only", stage=PRODUCTION, run_id="run1")
    fake.create_version("both", stage=ARCHIVED)
    fake.create_version("both", stage=PRODUCTION, run_id="runb2")
    fake.create_version("both", stage=STAGING, run_id="runb3")
    fake.create_version("nowhere")
    fake.writes.clear()


def test_import_into_an_empty_repository_then_again(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    _seed(fake)
    result = run("import")
    assert result.exit_code == 0, result.stderr
    files = _files(repo)
    assert sorted(files) == [
        "environments/production/both.yaml",
        "environments/production/prod-only.yaml",
        "environments/staging/both.yaml",
    ]
    text = files["environments/production/both.yaml"]
    lines = text.splitlines()
    # No schemas/ folder in this repository: no `$schema` comment pointing nowhere.
    assert lines[0].startswith("# imported from ")
    assert lines[0].endswith(" by reconciler import")
    assert lines[1:] == ["model: both", "version: 2", "run_id: runb2"]
    assert "wrote environments/production/both.yaml: both v2" in result.stdout
    assert "Import: 3 written. Nothing was written to the registry." in result.stdout
    assert fake.writes == []
    assert run("validate").exit_code == 0
    repo.commit("import")
    plan = run("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout + plan.stderr

    again = run("import")
    assert again.exit_code == 0
    assert _files(repo) == files
    assert "Import: 3 unchanged. Nothing was written to the registry." in again.stdout
    assert "  = environments/staging/both.yaml already pins v3" in again.stdout
    assert repo.git("status", "--porcelain") == ""
    assert fake.writes == []


def test_doubled_stage_pins_the_one_moved_in_last(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    for _ in range(3):
        fake.create_version("m")
    fake.force_stage("m", "3", PRODUCTION)
    fake.force_stage("m", "1", PRODUCTION)  # moved in last, by hand, without archiving
    result = run("import", "--env", "production")
    assert result.exit_code == 0, result.stderr
    assert "version: 1" in _files(repo)["environments/production/m.yaml"]
    assert (
        "      Production also holds v3: plan will archive it (v1 was moved in last)"
        in result.stdout
    )
    record = json.loads(run("import", "--format", "json").stdout)
    assert record["pins"][0]["notes"] == [
        "Production also holds v3: plan will archive it (v1 was moved in last)"
    ]
    repo.commit("import")
    plan = run("plan")
    assert "archive v3 (extra in Production)" in plan.stdout


def test_stage_and_alias_disagree_pins_the_stage(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    repo.write("environments/production.yaml", "stage: Production\nalias: champion\n")
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    fake.set_alias("m", "champion", "2")
    fake.create_version("other", stage=PRODUCTION)
    fake.create_version("alias-no-stage")
    fake.set_alias("alias-no-stage", "champion", "1")
    fake.writes.clear()
    result = run("import")
    assert result.exit_code == 0, result.stderr
    assert "version: 1" in _files(repo)["environments/production/m.yaml"]
    assert "      plan will move @champion from v2 to v1" in result.stdout
    assert "      plan will move @champion (not set now) to v1" in result.stdout
    assert (
        "  - skipped alias-no-stage in production: @champion is on v1 but nothing is in "
        "Production; a pin would move v1 into Production, so none was written"
    ) in result.stdout
    assert "environments/production/alias-no-stage.yaml" not in _files(repo)
    assert fake.writes == []


def test_alias_only_environment_reads_aliases(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    repo.write("environments/edge.yaml", "stage: null\nalias: edge\n")
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m", run_id="r2")
    fake.set_alias("m", "edge", "2")
    fake.writes.clear()
    result = run("import", "--env", "edge")
    assert result.exit_code == 0, result.stderr
    assert sorted(_files(repo)) == ["environments/edge.yaml", "environments/edge/m.yaml"]
    assert _files(repo)["environments/edge/m.yaml"].splitlines()[1:] == [
        "model: m",
        "version: 2",
        "run_id: r2",
    ]
    repo.commit("import")
    assert run("plan", "--detailed-exitcode", "--env", "edge").exit_code == 0


def test_existing_pins_are_kept_and_differences_reported(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m")
    fake.create_version("m", stage=PRODUCTION)
    original = "# ours\nmodel: m\nversion: 1   # keep\nnote: the old one\n"
    repo.write("environments/production/m.yaml", original)
    result = run("import")
    assert result.exit_code == 0, result.stderr
    assert (
        "  ! environments/production/m.yaml pins v1, the registry serves v2 in this environment: "
        "kept (--overwrite replaces it)"
    ) in result.stdout
    assert "Import: 1 differs." in result.stdout
    assert _files(repo)["environments/production/m.yaml"] == original
    overwritten = run("import", "--overwrite", "--format", "json")
    assert overwritten.exit_code == 0
    assert json.loads(overwritten.stdout)["pins"][0]["outcome"] == "overwritten"
    assert (
        _files(repo)["environments/production/m.yaml"] == "# ours\nmodel: m\nversion: 2   # keep\n"
    )


@pytest.mark.parametrize(
    "name",
    [
        "fraud.v2",
        "churn model",
        "modèle-ünï",
        "模型",
        "*star",
        "[bracket",
        "yes",
        "010",
        "#hash",
        "-dash",
        "quote's",
        'dq"x',
        "trailing.",
    ],
)
def test_awkward_names_make_valid_pins(
    name: str, repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version(name, stage=PRODUCTION)
    result = run("import")
    assert result.exit_code == 0, result.stderr
    assert (repo.root / "environments" / "production" / f"{name}.yaml").is_file()
    assert run("validate").exit_code == 0
    repo.commit("import")
    plan = run("plan", "--detailed-exitcode", "--format", "json")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    assert [(e["model"], e["status"]) for e in json.loads(plan.stdout)["pins"]] == [
        (name, "in_sync")
    ]


def test_names_a_pin_cannot_hold_are_skipped_and_reported(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("team/model", stage=PRODUCTION)
    fake.create_version(" padded", stage=PRODUCTION)
    fake.create_version("..", stage=PRODUCTION)
    fake.create_version("a:b", stage=PRODUCTION)
    fake.create_version("fine", stage=PRODUCTION)
    fake.create_model("reconciler-state")  # our own bookkeeping: never a pin
    result = run("import", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["registry_writes"] == 0
    outcomes = {p["model"]: p["outcome"] for p in document["pins"]}
    assert outcomes == {
        " padded": "refused",
        "..": "refused",
        "a:b": "refused",
        "fine": "written",
    }
    assert [s["model"] for s in document["skipped"]] == ["team/model"]
    assert "'/'" in document["skipped"][0]["reason"]
    assert sorted(_files(repo)) == ["environments/production/fine.yaml"]
    assert run("validate").exit_code == 0


def test_filters_and_unknown_environment(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("a", stage=PRODUCTION)
    fake.create_version("b", stage=STAGING)
    assert run("import", "--model", "b").exit_code == 0
    assert sorted(_files(repo)) == ["environments/staging/b.yaml"]
    bad = run("import", "--env", "qa")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: --env 'qa': no such environment (have: production, ")


def test_a_broken_repository_is_an_error_and_nothing_is_written(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("a", stage=PRODUCTION)
    repo.write("environments/staging/x.yaml", "model: x\nversion: 1\nbogus: 1\n")
    result = run("import")
    assert result.exit_code == 1
    assert "environments/staging/x.yaml:3" in result.stderr
    assert sorted(_files(repo)) == ["environments/staging/x.yaml"]


def test_schema_comment_when_the_repository_has_the_schema(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    repo.write("schemas/pin.schema.json", "{}\n")
    fake.create_version("a", stage=PRODUCTION)
    assert run("import").exit_code == 0
    assert _files(repo)["environments/production/a.yaml"].startswith(
        "# yaml-language-server: $schema=../../schemas/pin.schema.json\n# imported from "
    )


def test_a_custom_environment_on_a_default_stage_replaces_the_default(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    repo.write("environments/qa.yaml", "stage: Staging\n")
    fake.create_version("m", stage=STAGING)
    result = run("import")
    assert result.exit_code == 0, result.stderr
    assert sorted(_files(repo)) == ["environments/qa.yaml", "environments/qa/m.yaml"]
    assert run("validate").exit_code == 0


def test_the_imported_comment_carries_no_credentials(repo: Repo, fake: FakeRegistry) -> None:
    from tests.conftest import make_runner

    fake.create_version("m", stage=PRODUCTION)
    run = make_runner(repo.root, fake, tracking_uri="https://bot:s3cret@mlflow.example:5000")
    result = run("import", "--format", "json")
    assert result.exit_code == 0, result.stderr
    text = _files(repo)["environments/production/m.yaml"]
    assert "s3cret" not in text + result.stdout
    assert text.startswith("# imported from https://***@mlflow.example:5000 at ")
    assert json.loads(result.stdout)["registry"] == "https://***@mlflow.example:5000"


def test_drift_in_a_gated_environment_is_put_right_without_gating_what_already_serves(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """Adopting a registry whose Production holds two versions, with `requires: staging`: the
    version that serves is not re-promoted, so the archive of the extra is not gated."""
    repo.write("environments/production.yaml", "stage: Production\nrequires: staging\n")
    (repo.root / "environments" / "staging").mkdir()
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    fake.force_stage("m", "2", PRODUCTION)
    assert run("import").exit_code == 0
    repo.commit("import")
    plan = run("plan", "--format", "json")
    assert plan.exit_code == 0, plan.stdout + plan.stderr
    changes = json.loads(plan.stdout)["changes"]
    assert [(c["kind"], c["version"]) for c in changes] == [("archive", "1")]


def test_a_failure_in_json_is_a_json_document(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("m", stage=PRODUCTION)
    repo.write("environments/staging/x.yaml", "model: x\nversion: 010\n")
    result = run("import", "--format", "json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["exit_code"] == 1
    assert [(p["file"], p["line"], p["field"]) for p in error["problems"]] == [
        ("environments/staging/x.yaml", 2, "version")
    ]
    assert not (repo.root / "environments/production").exists()


def test_a_ready_version_beside_one_still_registering_is_pinned(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """Production holds a READY v1 and a PENDING_REGISTRATION v2 moved in after it: the pin takes
    v1 and the report names v2 (issue 15 §9); a stage holding nothing READY is still skipped."""
    fake.create_version("m", stage=PRODUCTION, run_id="run1")
    fake.create_version("m", stage=PRODUCTION, status="PENDING_REGISTRATION")
    fake.create_version("only-pending", stage=PRODUCTION, status="PENDING_REGISTRATION")
    result = run("import")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:4] == [
        "  + wrote environments/production/m.yaml: m v1",
        "      Production also holds v2 (PENDING_REGISTRATION, not READY, so not pinned): plan "
        "will archive it",
        "  - skipped only-pending in production: v1 is PENDING_REGISTRATION, not READY; plan "
        "would refuse a pin on it",
    ]
    assert _files(repo)["environments/production/m.yaml"].splitlines()[1:] == [
        "model: m",
        "version: 1",
        "run_id: run1",
    ]
    document = json.loads(run("import", "--format", "json").stdout)
    (pin,) = document["pins"]
    assert (pin["model"], pin["version"], pin["outcome"]) == ("m", "1", "unchanged")
    assert pin["notes"] == [
        "Production also holds v2 (PENDING_REGISTRATION, not READY, so not pinned): plan will "
        "archive it"
    ]


def test_a_name_a_pin_cannot_hold_is_refused_saying_why(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    """The refusal says what is wrong with the name, not what a valid name looks like."""
    fake.create_version("  spaced  ", stage=PRODUCTION)
    fake.create_version("tail ", stage=PRODUCTION)
    document = json.loads(run("import", "--format", "json").stdout)
    reasons = {p["model"]: p["reason"] for p in document["pins"]}
    assert reasons == {
        "  spaced  ": "model: '  spaced  ' starts and ends with whitespace, which a pin's model "
        "name cannot (nor its file name): rename the model in MLflow to manage it",
        "tail ": "model: 'tail ' ends with whitespace, which a pin's model name cannot (nor its "
        "file name): rename the model in MLflow to manage it",
    }
