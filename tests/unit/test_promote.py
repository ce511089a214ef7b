"""`reconciler promote`: edits or creates the pin, keeping comments and layout."""

from __future__ import annotations

import json

import pytest

from reconciler.pins.values import STAGING
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli

COMMENTED = """# yaml-language-server: $schema=../../schemas/pin.schema.json
# Owned by the churn team.
model: churn-model
version: 6   # the March model

note: keep an eye on recall
"""


def _versions(fake: FakeRegistry, model: str, count: int) -> None:
    for _ in range(count):
        fake.create_version(model)


def test_promote_from_the_previous_environment_keeps_the_layout(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    _versions(fake, "churn-model", 15)
    repo.write("environments/production/churn-model.yaml", COMMENTED)
    repo.pin("staging", "churn-model", 15)
    result = run("promote", "churn-model", "--to", "production")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "pinned churn-model v15 in production (was v6): environments/production/churn-model.yaml; "
        "version from pinned in staging\n"
        "dropped note (it spoke of the previous version; --note sets a new one)\n"
    )
    # The stale note went; every comment and the layout stayed.
    assert (repo.root / "environments/production/churn-model.yaml").read_text() == (
        "# yaml-language-server: $schema=../../schemas/pin.schema.json\n"
        "# Owned by the churn team.\n"
        "model: churn-model\n"
        "version: 15   # the March model\n"
    )


def test_promote_json_record_and_already_promoted(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    _versions(fake, "m", 4)
    repo.pin("production", "m", 3)
    record = json.loads(
        run("promote", "m", "--to", "production", "--version", "4", "--format", "json").stdout
    )
    assert {
        k: record[k]
        for k in (
            "model_name",
            "environment",
            "new_version",
            "new_stage",
            "archived_version",
            "promoted",
            "already_promoted",
        )
    } == {
        "model_name": "m",
        "environment": "production",
        "new_version": "4",
        "new_stage": "Production",
        "archived_version": "3",
        "promoted": True,
        "already_promoted": False,
    }
    again = json.loads(
        run("promote", "m", "--to", "production", "--version", "4", "--format", "json").stdout
    )
    assert again["already_promoted"] is True
    assert again["promoted"] is False
    text = run("promote", "m", "--to", "production", "--version", "4")
    assert text.stdout == "m v4 is already pinned in production (environments/production/m.yaml)\n"


def test_promote_creates_a_pin_with_confidence(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("new-model")
    fake.create_version("new-model", run_id="run2")
    (repo.root / "environments" / "production").mkdir(parents=True)
    result = run(
        "promote", "new-model", "--to", "production", "--version", "2", "--confidence", "0.87"
    )
    assert result.exit_code == 0, result.stderr
    # No schemas/ folder in this repository: no `$schema` comment pointing at nothing.
    assert (repo.root / "environments/production/new-model.yaml").read_text() == (
        "model: new-model\nversion: 2\nrun_id: run2\nconfidence: 0.87\n"
    )
    assert run("validate").exit_code == 0


def test_promote_falls_back_to_the_latest_staging_version(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    for stage in ("None", STAGING, STAGING, "None"):
        fake.create_version("m", stage=stage)
    repo.pin("production", "m", 1)
    result = run("promote", "m", "--to", "production")
    assert result.exit_code == 0
    assert "pinned m v3 in production (was v1)" in result.stdout
    assert "version from latest Staging version in the registry" in result.stdout


def test_promote_with_no_staging_version(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    fake.create_version("m")
    repo.pin("production", "m", 1)
    result = run("promote", "m", "--to", "production")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no version to promote: m has no pin in staging and no Staging version in the "
        "registry; name one with --version\n"
    )


def test_promote_on_a_branch_with_a_commit(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    _versions(fake, "m", 3)
    repo.pin("production", "m", 1)
    repo.pin("staging", "m", 2)
    repo.commit("pins")
    repo.write("notes.txt", "unrelated work in progress\n")
    result = run(
        "promote", "m", "--to", "production", "--branch", "promote-m-v2", "--confidence", "0.9"
    )
    assert result.exit_code == 0, result.stderr
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD").strip() == "promote-m-v2"
    assert (
        repo.git("log", "-1", "--format=%B").strip()
        == "Promote m v2 to production (was v1)\n\nComparison confidence: 0.9"
    )
    assert repo.git("show", "--name-only", "--format=", "HEAD").split() == [
        "environments/production/m.yaml"
    ]
    assert "notes.txt" in repo.git("status", "--porcelain")  # only the pin was committed
    taken = run("promote", "m", "--to", "staging", "--version", "3", "--branch", "promote-m-v2")
    assert taken.exit_code == 1
    assert taken.stderr == "error: --branch 'promote-m-v2': branch 'promote-m-v2' already exists\n"


def test_promote_refuses_bad_input_and_leaves_the_file(repo: Repo, run: RunCli) -> None:
    repo.write("environments/production/m.yaml", COMMENTED.replace("churn-model", "m"))
    before = (repo.root / "environments/production/m.yaml").read_text()
    bad = run("promote", "m", "--to", "production", "--version", "0")
    assert bad.exit_code == 1
    assert bad.stderr == "error: --version: '0' is not a model version: versions start at 1\n"
    octal = run("promote", "m", "--to", "production", "--version", "010")
    assert octal.exit_code == 1
    assert "write 10 without leading zeros" in octal.stderr
    unknown = run("promote", "m", "--to", "qa", "--version", "2")
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: --to 'qa': no such environment (have: production)\n"
    assert (repo.root / "environments/production/m.yaml").read_text() == before


def test_promote_checks_the_version_in_the_registry(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m")
    fake.create_version("m")
    fake.create_version("m", status="PENDING_REGISTRATION")
    original = "model: m\nversion: 1\n"
    repo.write("environments/production/m.yaml", original)
    missing = run("promote", "m", "--to", "production", "--version", "7")
    assert missing.exit_code == 1
    assert missing.stderr == ("error: m v7 not found in the registry (READY versions: v1, v2)\n")
    pending = run("promote", "m", "--to", "production", "--version", "3", "--format", "json")
    assert pending.exit_code == 1
    assert "error: m v3 is PENDING_REGISTRATION, not READY (READY versions: v1, v2)" in (
        pending.stderr
    )
    unknown = run("promote", "nope", "--to", "production", "--version", "1")
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: registered model 'nope' not found in the registry\n"
    assert (repo.root / "environments/production/m.yaml").read_text() == original
    # From the previous environment's pin, too: a pin plan would refuse is never written.
    repo.pin("staging", "m", 9)
    onward = run("promote", "m", "--to", "production")
    assert onward.exit_code == 1
    assert onward.stderr.startswith("error: m v9 not found in the registry")
    assert (repo.root / "environments/production/m.yaml").read_text() == original
    assert fake.writes == []


def test_promote_offline_skips_the_check_and_says_so(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    repo.write("environments/production/m.yaml", "model: m\nversion: 1\nrun_id: abc\n")
    result = run("promote", "m", "--to", "production", "--version", "7", "--offline")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "offline: not checked that m v7 exists in the registry (plan will check it)\n"
        "pinned m v7 in production (was v1): environments/production/m.yaml; "
        "version from --version\n"
        "dropped run_id (offline: the new version's run is not known)\n"
    )
    assert (repo.root / "environments/production/m.yaml").read_text() == "model: m\nversion: 7\n"
    record = json.loads(
        run(
            "promote", "m", "--to", "production", "--version", "8", "--offline", "--format", "json"
        ).stdout
    )
    assert record["checked_in_registry"] is False
    no_version = run("promote", "other", "--to", "production", "--offline")
    assert no_version.exit_code == 1
    assert "--offline cannot ask the registry" in no_version.stderr


def test_promote_replaces_a_note_and_follows_the_run_id(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m", run_id="run1")
    fake.create_version("m", run_id="run2")
    repo.write(
        "environments/production/m.yaml",
        "model: m\nversion: 1\nrun_id: run1\nnote: |\n  first line\n\n  second line\n# end\n",
    )
    result = run("promote", "m", "--to", "production", "--version", "2", "--note", "recall +4%")
    assert result.exit_code == 0, result.stderr
    assert "dropped" not in result.stdout
    assert (repo.root / "environments/production/m.yaml").read_text() == (
        "model: m\nversion: 2\nnote: recall +4%\nrun_id: run2\n# end\n"
    )
    same = run("promote", "m", "--to", "production", "--version", "2", "--note", "recall +4%")
    assert "already pinned" in same.stdout
    assert run("validate").exit_code == 0


def test_new_pins_point_at_the_schema_only_where_it_exists(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    fake.create_version("m")
    repo.write("schemas/pin.schema.json", "{}\n")
    (repo.root / "environments").mkdir()
    assert run("promote", "m", "--to", "staging", "--version", "1").exit_code == 0
    text = (repo.root / "environments/staging/m.yaml").read_text()
    assert text == (
        "# yaml-language-server: $schema=../../schemas/pin.schema.json\nmodel: m\nversion: 1\n"
    )
    assert (repo.root / "environments/staging/../../schemas/pin.schema.json").is_file()


@pytest.mark.parametrize("branch", ["promote-sp ace", "promote-a[b]", "x..y", "-x", "a~1"])
def test_a_branch_name_git_refuses_is_a_clear_error(
    repo: Repo, run: RunCli, fake: FakeRegistry, branch: str
) -> None:
    _versions(fake, "m", 2)
    repo.pin("production", "m", 1)
    repo.commit("pins")
    before = (repo.root / "environments/production/m.yaml").read_text()
    result = run("promote", "m", "--to", "production", "--version", "2", "--branch", branch)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: --branch {branch!r}: git does not accept it as a branch name "
        "(git check-ref-format --branch)\n"
    )
    assert (repo.root / "environments/production/m.yaml").read_text() == before
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_a_flow_style_pin_is_refused_as_such_not_as_invalid_yaml(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    for _ in range(3):
        fake.create_version("dot.model")
    pin = "{model: dot.model, version: 2, note: old note}  # flow\n"
    repo.write("environments/production/dot.model.yaml", pin)
    valid = run("validate")
    assert valid.exit_code == 0, valid.output
    result = run("promote", "dot.model", "--to", "production", "--version", "3")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "error: environments/production/dot.model.yaml:1: promote edits pins written one key per "
        "line; this one is a flow mapping ({...}): write it as `model: …` and `version: …` "
        "lines, or edit it by hand"
    )
    assert "invalid YAML" not in result.stderr
    assert (repo.root / "environments/production/dot.model.yaml").read_text() == pin


def test_promote_keeps_crlf_line_endings(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    """A pin written on Windows (CRLF) stays CRLF: a promotion's diff is the version line alone
    (issue 15 §9); `import --overwrite` edits the same way."""
    _versions(fake, "churn-model", 15)
    path = repo.root / "environments/production/churn-model.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(COMMENTED.replace("\n", "\r\n").encode())
    result = run("promote", "churn-model", "--to", "production", "--version", "15", "--note", "x")
    assert result.exit_code == 0, result.stderr
    assert path.read_bytes() == (
        b"# yaml-language-server: $schema=../../schemas/pin.schema.json\r\n"
        b"# Owned by the churn team.\r\n"
        b"model: churn-model\r\n"
        b"version: 15   # the March model\r\n"
        b"\r\n"
        b"note: x\r\n"
    )
    assert run("validate").exit_code == 0
    fake.force_stage("churn-model", "14", "Production")
    assert run("import", "--overwrite").exit_code == 0
    assert path.read_bytes() == (
        b"# yaml-language-server: $schema=../../schemas/pin.schema.json\r\n"
        b"# Owned by the churn team.\r\n"
        b"model: churn-model\r\n"
        b"version: 14   # the March model\r\n"
    )


def test_a_refused_promotion_puts_a_crlf_pin_back_byte_for_byte(
    repo: Repo, run: RunCli, fake: FakeRegistry
) -> None:
    _versions(fake, "churn-model", 15)
    path = repo.root / "environments/production/churn-model.yaml"
    path.parent.mkdir(parents=True)
    original = COMMENTED.replace("\n", "\r\n").encode()
    path.write_bytes(original)
    result = run(
        "promote", "churn-model", "--to", "production", "--version", "15", "--note", "x" * 5001
    )
    assert result.exit_code == 1
    assert path.read_bytes() == original
