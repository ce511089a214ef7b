"""Environments in different registries (issue 17), through the CLI, with two fake registries:
`staging` in the command's (dev), `production` in its own (`registry:` in its settings), its
pins taking staging's versions by copy (`from: staging`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.context import AppContext
from reconciler.cli.main import cli
from reconciler.registry.connection import Connection
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.lineage import Lineage
from tests.conftest import Repo, commit_pins, make_runner

PROD_SETTINGS = """stage: Production
registry:
  tracking_uri: ${PROD_MLFLOW_URI}
  username: ${PROD_MLFLOW_USERNAME}
  password: ${PROD_MLFLOW_PASSWORD}
"""
SECRET = "s3cr3t-prod-password"
MODEL_FILES = {"MLmodel": b"flavors: {}\n", "model.pkl": b"\x00" * 2048}


class TwoRegistries:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.dev = FakeRegistry("dev")
        self.prod = FakeRegistry("prod")
        self.connections: list[Connection] = []
        monkeypatch.setenv("PROD_MLFLOW_URI", "https://prod.example.com")
        monkeypatch.setenv("PROD_MLFLOW_USERNAME", "deployer")
        monkeypatch.setenv("PROD_MLFLOW_PASSWORD", SECRET)

    def factory(self, connection: Connection) -> FakeRegistry:
        self.connections.append(connection)
        if connection.configured:
            assert connection.tracking_uri == "https://prod.example.com"
            return self.prod
        return self.dev

    def run(self, *args: str) -> Result:
        if "apply" in args:
            commit_pins(self.root)
        obj = AppContext(root=self.root, lease_settle=0.0)
        obj.registry_factory = self.factory
        result = CliRunner().invoke(cli, list(args), obj=obj, catch_exceptions=False)
        assert SECRET not in result.output, result.output  # never, in any output
        return result


@pytest.fixture
def two(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> TwoRegistries:
    registries = TwoRegistries(repo.root, monkeypatch)
    for accuracy in (0.91, 0.95, 0.97):
        run_id = f"run{accuracy}"
        registries.dev.metrics[run_id] = {"accuracy": accuracy}
        registries.dev.create_version("churn", run_id=run_id, files=MODEL_FILES)
    repo.write("environments/production.yaml", PROD_SETTINGS)
    repo.pin("staging", "churn", 2)
    repo.pin("production", "churn", 1, **{"from": "staging"})
    repo.commit("Two registries")
    return registries


def _production(registry: FakeRegistry) -> list[str]:
    found = registry.read_model("churn")
    assert found is not None
    return found.in_stage("Production")


def test_plan_names_each_registry_and_the_copy_with_its_size(two: TwoRegistries) -> None:
    result = two.run("plan", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    out = result.stdout
    assert "production (Production) in fake://prod" in out
    assert "staging (Staging) in fake://dev" in out
    assert "copy of staging v1 → Production" in out
    assert "production: churn: staging v1 from fake://dev into fake://prod, 2," in out
    document = json.loads(two.run("plan", "--format", "json").stdout)
    assert document["registries"] == {
        "production": {"registry": "fake://prod", "workspace": None},
        "staging": {"registry": "fake://dev", "workspace": None},
    }
    [copy] = document["copies"]
    assert copy["source"]["version"] == "1"
    assert copy["bytes"] == sum(map(len, MODEL_FILES.values()))
    pin = next(p for p in document["pins"] if p["environment"] == "production")
    assert pin["pinned_version"] is None
    assert pin["source"]["environment"] == "staging"
    markdown = two.run("plan", "--format", "markdown").stdout
    assert "| production | `fake://prod` |" in markdown
    assert "copy of staging v1" in markdown
    assert two.prod.writes == []
    assert two.dev.writes == []


def test_apply_copies_once_then_moves_and_a_revert_copies_nothing(
    two: TwoRegistries, repo: Repo
) -> None:
    two.prod.create_version("churn", files=MODEL_FILES)  # prod numbers its own: copies differ
    result = two.run("apply")
    assert result.exit_code == 0, result.output
    assert "copied staging v1 into production's registry as v2" in result.output
    assert _production(two.prod) == ["2"]
    copy = two.prod.read_model("churn")
    assert copy is not None
    lineage = Lineage.of(copy.versions["2"])
    assert lineage is not None
    assert (lineage.registry, lineage.model, lineage.version) == ("fake://dev", "churn", "1")
    assert lineage.run_id == "run0.91"
    assert lineage.digest.startswith("sha256:")
    assert two.dev.read_model("churn").in_stage("Staging") == ["2"]  # type: ignore[union-attr]
    assert two.dev.read_model("churn").in_stage("Production") == []  # type: ignore[union-attr]

    writes = len(two.prod.writes)
    again = two.run("apply")
    assert again.exit_code == 0, again.output
    assert "Nothing to do" in again.output
    assert len(two.prod.writes) == writes

    repo.pin("production", "churn", 2, **{"from": "staging"})
    repo.commit("Promote churn v2")
    assert two.run("apply").exit_code == 0
    assert _production(two.prod) == ["3"]
    uploads = two.prod.uploads
    repo.git("revert", "--no-edit", "HEAD")
    rolled = two.run("apply")
    assert rolled.exit_code == 0, rolled.output
    assert _production(two.prod) == ["2"]
    assert two.prod.uploads == uploads  # the earlier copy, no new one
    status = two.run("status").stdout
    assert "v2 (staging v1)" in status
    history = json.loads(
        two.run("history", "churn", "--env", "production", "--format", "json").stdout
    )
    assert [(c["to_version"], c["applied"], c["copy_version"]) for c in history["changes"]] == [
        ("1", True, "2"),  # staging v1 is v2 here
        ("2", True, "3"),
        ("1", True, "2"),
    ]


def test_gates_judge_the_source_version(two: TwoRegistries, repo: Repo) -> None:
    repo.write(
        "environments/production.yaml",
        PROD_SETTINGS + "gates:\n  metrics:\n    accuracy: {min: 0.93}\n",
    )
    repo.commit("Gate production")
    result = two.run("plan")
    assert result.exit_code == 1
    assert "churn v1 (from staging)" in result.output
    assert "0.91" in result.output
    repo.pin("production", "churn", 3, **{"from": "staging"})
    repo.commit("A better one")
    assert two.run("plan").exit_code == 0


def test_a_missing_variable_refuses_before_any_registry_is_asked(
    two: TwoRegistries, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROD_MLFLOW_PASSWORD")
    result = two.run("apply")
    assert result.exit_code == 1
    assert (
        "environments/production.yaml:5: registry.password: needs the environment variable "
        "PROD_MLFLOW_PASSWORD, which is not set" in result.output
    )
    assert two.connections == []
    assert two.prod.writes == []
    assert two.dev.writes == []


def test_a_source_version_that_does_not_exist_is_a_plan_error(
    two: TwoRegistries, repo: Repo
) -> None:
    repo.pin("production", "churn", 9, **{"from": "staging"})
    repo.commit("Typo")
    result = two.run("apply")
    assert result.exit_code == 1
    assert "churn v9 is not in staging's registry (fake://dev)" in result.output
    assert two.prod.writes == []


def test_requires_across_registries_needs_from(two: TwoRegistries, repo: Repo) -> None:
    repo.write("environments/production.yaml", PROD_SETTINGS + "requires: staging\n")
    repo.pin("production", "churn", 1)
    two.prod.create_version("churn", files=MODEL_FILES)
    repo.commit("Production's own version")
    result = two.run("plan")
    assert result.exit_code == 1
    assert "whose models live in another registry" in result.output
    repo.pin("production", "churn", 2, **{"from": "staging"})
    repo.commit("From staging")
    refused = two.run("plan")  # judged in staging's registry: v2 has not been there yet
    assert refused.exit_code == 1
    assert "churn v2 (from staging) was never applied to staging" in (refused.output)
    assert two.run("apply", "--env", "staging").exit_code == 0
    assert two.run("plan").exit_code == 0, two.run("plan").output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            "registry:\n  tracking_uri: https://u:p@prod\n",
            "3: registry.tracking_uri: holds user:password@",
        ),
        (
            "registry:\n  tracking_uri: https://prod\n  password: hunter2\n",
            "4: registry.password: must be a ${VAR} reference",
        ),
        (
            "registry:\n  token: ${T}\n",
            "3: registry.token: credentials need the `tracking_uri` they are for",
        ),
        (
            "registry:\n  tracking_uri: http://deployer:Pw-r17#@prod:5102\n",
            "3: registry.tracking_uri: holds user:password@",
        ),
        (
            "registry:\n  tracking_uri: http://bob:s3cr3t #tail@h\n",
            "3: registry.tracking_uri: is no URI a registry answers at",
        ),
        (
            "registry:\n  tracking_uri: https://prod/?token=abc\n",
            "3: registry.tracking_uri: holds a credential in its query",
        ),
    ],
)
def test_secrets_in_settings_are_refused(repo: Repo, settings: str, message: str) -> None:
    repo.write("environments/production.yaml", "stage: Production\n" + settings)
    repo.pin("production", "churn", 1)
    result = CliRunner().invoke(cli, ["validate"], obj=AppContext(root=repo.root))
    assert result.exit_code == 1
    assert f"environments/production.yaml:{message}" in result.output
    assert "hunter2" not in result.output
    assert "u:p@" not in result.output


def test_from_names_an_environment_of_the_repository(repo: Repo) -> None:
    repo.pin("production", "churn", 1, **{"from": "stagign"})
    result = CliRunner().invoke(cli, ["validate"], obj=AppContext(root=repo.root))
    assert result.exit_code == 1
    assert "environments/production/churn.yaml:3: from: no environment 'stagign'" in result.output


def test_promote_into_another_registry_pins_the_previous_environments_version_by_copy(
    two: TwoRegistries, repo: Repo
) -> None:
    repo.pin("staging", "churn", 3)
    repo.commit("staging v3")
    result = two.run("promote", "churn", "--to", "production")
    assert result.exit_code == 0, result.output
    text = (repo.root / "environments/production/churn.yaml").read_text(encoding="utf-8")
    assert "version: 3\n" in text
    assert "from: staging\n" in text
    assert "copy of staging v3 → Production" in two.run("plan").stdout
    assert two.dev.writes == []
    assert two.prod.writes == []


class _Refusing(FakeRegistry):
    """A registry whose credentials are wrong: every read is refused."""

    def read(self, models: object) -> object:  # type: ignore[override]
        from reconciler.errors import RegistryAuthError

        raise RegistryAuthError("authentication failed at https://prod.example.com: check ...")


def test_a_registry_refusing_the_credentials_fails_its_environments_in_one_line(
    two: TwoRegistries, repo: Repo
) -> None:
    two.prod = _Refusing("prod")
    repo.pin("staging", "churn", 3)
    repo.commit("staging v3")
    result = two.run("apply")
    assert result.exit_code == 1  # as any registry error (README "Exit codes")
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: production: authentication failed at https://prod.example.com: check ..."
    ]
    assert two.dev.writes == []  # staging's change waits: every registry is read first
    staging_only = two.run("apply", "--env", "staging")
    assert staging_only.exit_code == 0, staging_only.output
    assert two.dev.read_model("churn").in_stage("Staging") == ["3"]  # type: ignore[union-attr]


def test_a_registry_block_naming_the_commands_registry_is_refused(
    two: TwoRegistries, repo: Repo
) -> None:
    two.prod = two.dev  # the block's URI reaches the registry staging lives in
    result = two.run("apply", "--prune")
    assert result.exit_code == 1
    assert (
        "error: environments/production.yaml:3: registry.tracking_uri: names the registry "
        "staging already lives in (fake://dev)" in result.output
    )
    assert two.dev.writes == []  # no copy into itself, no retirement of staging's pins


def test_model_and_env_filters_limit_the_copies(two: TwoRegistries, repo: Repo) -> None:
    two.dev.create_version("fraud", files=MODEL_FILES)
    repo.pin("staging", "fraud", 1)
    repo.pin("production", "fraud", 1, **{"from": "staging"})
    repo.commit("fraud too")
    document = json.loads(two.run("plan", "--model", "churn", "--format", "json").stdout)
    assert [copy["model"] for copy in document["copies"]] == ["churn"]
    assert two.run("apply", "--env", "production", "--model", "churn").exit_code == 0
    assert two.prod.read_model("fraud") is None  # not copied, not even registered


def test_a_copy_changed_in_the_store_is_caught_before_a_rollback_moves_to_it(
    two: TwoRegistries, repo: Repo
) -> None:
    assert two.run("apply").exit_code == 0  # production: the copy of staging v1, as v1
    repo.pin("production", "churn", 2, **{"from": "staging"})
    repo.commit("Promote churn v2")
    assert two.run("apply").exit_code == 0
    same_size = b"\x01" * len(MODEL_FILES["model.pkl"])
    two.prod.overwrite_file("churn", "1", "model.pkl", same_size)  # someone, in the store
    repo.git("revert", "--no-edit", "HEAD")
    refused = two.run("apply")
    assert refused.exit_code == 1
    assert "churn v1 in fake://prod, the copy of" in refused.output
    assert "(a file was changed): delete that version to copy again" in refused.output
    assert _production(two.prod) == ["2"]  # nothing moved


def test_a_rollback_to_a_copy_whose_source_is_gone_moves_to_the_copy(
    two: TwoRegistries, repo: Repo
) -> None:
    repo.write("environments/production.yaml", PROD_SETTINGS + "requires: staging\n")
    repo.pin("staging", "churn", 1)
    repo.commit("staging v1, production requires staging")
    assert two.run("apply", "--env", "staging").exit_code == 0
    assert two.run("apply").exit_code == 0
    repo.pin("staging", "churn", 2)
    repo.commit("staging v2")
    assert two.run("apply", "--env", "staging").exit_code == 0
    repo.pin("production", "churn", 2, **{"from": "staging"})
    promotion = repo.commit("Promote churn v2")
    assert two.run("apply").exit_code == 0
    two.dev.delete_version("churn", "1")  # the dev registry pruned it; its copy is in prod
    repo.git("revert", "--no-edit", promotion)
    rolled = two.run("apply")
    assert rolled.exit_code == 0, rolled.output
    assert _production(two.prod) == ["1"]
    assert "v1 (staging v1)" in two.run("status", "--env", "production").stdout


def test_a_copy_whose_source_is_gone_and_that_never_served_here_is_refused(
    two: TwoRegistries, repo: Repo
) -> None:
    repo.write("environments/production.yaml", PROD_SETTINGS + "requires: staging\n")
    repo.commit("production requires staging")
    lineage = Lineage("fake://dev", "churn", "1", "run0.91", "sha256:x", 2060)
    two.prod.create_version("churn", files=MODEL_FILES, tags=lineage.tags())  # copied, unused
    two.dev.delete_version("churn", "1")
    result = two.run("plan")
    assert result.exit_code == 1
    assert "is gone from staging's registry" in result.output
    assert "never served in production, so it is no rollback either" in result.output


def test_import_compares_a_from_pin_by_its_source_number(two: TwoRegistries, repo: Repo) -> None:
    two.prod.create_version("churn", files=MODEL_FILES)  # prod's own v1: the copy will be v2
    assert two.run("apply").exit_code == 0
    found = json.loads(two.run("import", "--env", "production", "--format", "json").stdout)
    [pin] = [f for f in found["pins"] if f["environment"] == "production"]
    assert pin["outcome"] == "unchanged", pin  # serves v2 here, the copy of staging v1
    repo.pin("production", "churn", 3, **{"from": "staging"})
    repo.commit("an unapplied edit")
    assert two.run("import", "--env", "production", "--overwrite").exit_code == 0
    text = (repo.root / "environments/production/churn.yaml").read_text(encoding="utf-8")
    assert "version: 1\n" in text  # staging's number of what serves, not prod's v2
    assert "from: staging\n" in text


def test_one_server_reached_by_two_names_never_retires_the_other_environments_pins(
    two: TwoRegistries, repo: Repo
) -> None:
    """`localhost` and `127.0.0.1`: two identities, one registry. Its ownership records name
    staging in production's site; staging's pin is elsewhere, not removed: never retired."""
    alias = FakeRegistry("alias-of-dev")
    alias._models = two.dev._models  # the same server's data
    alias.artifacts = two.dev.artifacts
    two.prod = alias
    assert two.run("apply", "--env", "staging").exit_code == 0
    plan = two.run("plan", "--prune")
    assert "retire" not in plan.stdout, plan.stdout
    applied = two.run("apply", "--prune")
    assert applied.exit_code == 0, applied.output
    assert "retire" not in applied.output
    assert two.dev.read_model("churn").in_stage("Staging") == ["2"]  # type: ignore[union-attr]


def test_a_refusal_in_one_registry_writes_nothing_in_the_other(
    two: TwoRegistries, repo: Repo, tmp_path: Path
) -> None:
    """Another repository owns churn in staging (dev): the apply is refused there (exit 5) before
    production's registry, applied first, is written: no copy, no lease."""
    other = Repo(tmp_path / "other")
    other.write("README.md", "another team\n")
    other.commit("start")
    other.pin("staging", "churn", 1)
    other.commit("staging v1")
    assert make_runner(other.root, two.dev)("apply").exit_code == 0
    two.dev.writes.clear()
    result = two.run("apply")
    assert result.exit_code == 5, result.output
    assert "another repository owns it there" in result.output
    assert two.prod.writes == []
    assert two.dev.writes == []


def test_verify_of_a_copy_not_made_yet_is_refused_by_name(two: TwoRegistries, repo: Repo) -> None:
    repo.write(
        "environments/production.yaml",
        PROD_SETTINGS + "serving:\n  url: http://127.0.0.1:9/{model}\n  timeout: 1s\n",
    )
    repo.commit("serving")
    result = two.run("verify", "--env", "production", "--format", "json")
    assert result.exit_code == 1
    assert "production: churn: staging v1 has not been copied into fake://prod yet" in (
        result.output
    )
    assert json.loads(result.stdout)["error"]  # the JSON error document, one line of it
