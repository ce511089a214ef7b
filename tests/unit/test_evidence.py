"""Policy evidence cannot be borrowed or forged (issue 8 §4): `requires` is met by the registry
(an audit record of the apply, or the version in the stage or alias now), never by a pin that was
merely committed; soak is measured from the audit record, never from commit dates; git pathspecs
built from names are literal; `history` credits applies at descendants and refuses shallow clones.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.records import audit
from reconciler.records.bookkeeping import audit_tag
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, RunCli, make_runner

PROD_PIN = "environments/production/m.yaml"
NEVER = (
    f"{PROD_PIN}:2: version: policy: m v2 was never applied to staging (no audit record of an "
    "apply there, and staging does not hold it now); promote it through staging first "
    "(requires: staging in environments/production.yaml)"
)


def errors(stderr: str) -> list[str]:
    return [line.removeprefix("error: ") for line in stderr.splitlines()][:-1]


@pytest.fixture
def models(fake: FakeRegistry) -> FakeRegistry:
    for _ in range(3):
        fake.create_version("m")
    return fake


def test_a_committed_staging_pin_is_not_evidence(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    repo.write("environments/production.yaml", "requires: staging\n")
    repo.pin("staging", "m", 2)
    repo.pin("production", "m", 2)
    repo.commit("pin v2 in staging and production")  # staging never applied
    result = run("apply", "--env", "production")
    assert result.exit_code == 1
    assert errors(result.stderr) == [NEVER]
    assert models.read(["m"]).models["m"].in_stage(PRODUCTION) == []
    # Applied to staging (an audit record), production may take it, and roll back to it later.
    repo.pin("production", "m", 1)
    repo.write("environments/production.yaml", "stage: Production\n")
    assert run("apply").exit_code == 0
    repo.write("environments/production.yaml", "requires: staging\n")
    repo.pin("staging", "m", 3)
    assert run("apply", "--env", "staging").exit_code == 0
    repo.pin("production", "m", 2)
    assert run("plan", "--env", "production").exit_code == 0  # v2 was applied to staging once


def test_the_version_in_the_stage_now_is_evidence(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    repo.write("environments/production.yaml", "requires: staging\n")
    (repo.root / "environments/staging").mkdir(parents=True)
    repo.pin("production", "m", 2)
    models.force_stage("m", "2", STAGING)  # put there by hand: no audit record, but it is there
    assert run("plan").exit_code == 0, run("plan").stderr


def test_the_version_holding_the_alias_now_is_evidence(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    repo.write("environments/qa.yaml", "stage: null\nalias: qa\n")
    repo.write("environments/production.yaml", "requires: qa\n")
    repo.pin("qa", "m", 1)
    repo.pin("production", "m", 2)
    refused = run("plan", "--env", "production")
    assert "m v2 was never applied to qa (no audit record of an apply there" in refused.stderr
    models.set_alias("m", "qa", "2")
    assert run("plan", "--env", "production").exit_code == 0


def test_soak_is_measured_from_the_audit_record_not_commit_dates(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    repo.write("environments/production.yaml", "requires: staging\ngates:\n  soak: 24h\n")
    repo.pin("staging", "m", 2)
    repo.commit("staging v2, backdated", date="2020-01-01T00:00:00Z")  # anyone can set dates
    models.force_stage("m", "2", STAGING)
    repo.pin("production", "m", 2)
    result = run("plan")
    assert result.exit_code == 1
    assert errors(result.stderr) == [
        f"{PROD_PIN}:2: version: policy: m v2 has no audit record of an apply to staging, so its "
        "soak time cannot be measured; soak gate in environments/production.yaml needs 24h: "
        "apply it to staging with reconciler and wait"
    ]
    recently = datetime.now(UTC) - timedelta(hours=2)
    record = audit.AuditRecord("staging", "promote", recently.isoformat(timespec="seconds"))
    models.set_version_tag("m", "2", audit_tag("staging"), audit.append(None, record))
    assert "m v2 has been in staging for 2h 00m" in run("plan").stderr
    # Soak counts from the latest arrival: an earlier stay does not count for today's.
    long_ago = datetime.now(UTC) - timedelta(days=5)
    records = audit.append(
        None, audit.AuditRecord("staging", "promote", long_ago.isoformat(timespec="seconds"))
    )
    records = audit.append(records, record)
    models.set_version_tag("m", "2", audit_tag("staging"), records)
    assert "m v2 has been in staging for 2h 00m" in run("plan").stderr


@pytest.mark.parametrize(
    ("name", "other"),
    [
        pytest.param("c*d", "cZd", id="star"),
        pytest.param("a[bc]", "ab", id="bracket"),
        pytest.param("m?", "mx", id="question-mark"),
        pytest.param("two words", "two  words", id="space"),
        pytest.param("modèle-é", "modèle-e", id="unicode"),
    ],
)
def test_names_are_literal_in_git_pathspecs(
    repo: Repo, fake: FakeRegistry, name: str, other: str
) -> None:
    for model in (name, other):
        fake.create_version(model)
        fake.create_version(model)
    run = make_runner(repo.root, fake)
    repo.write(f"environments/staging/{other}.yaml", f"model: '{other}'\nversion: 2\n")
    repo.commit(f"staging {other} v2")
    repo.write(f"environments/production/{name}.yaml", f"model: '{name}'\nversion: 1\n")
    mine = repo.commit(f"production {name} v1")
    result = run("history", name, "--format", "json")
    assert result.exit_code == 0, result.stderr
    changes = json.loads(result.stdout)["changes"]
    assert [(c["commit"], c["environment"], c["to_version"]) for c in changes] == [
        (mine, "production", "1")
    ]


def test_history_credits_an_apply_at_a_later_commit_that_still_pins_the_version(
    repo: Repo, fake: FakeRegistry
) -> None:
    for _ in range(3):
        fake.create_version("m")
    run = make_runner(repo.root, fake)
    repo.pin("production", "m", 2)
    pinned = repo.commit("production v2")
    repo.pin("staging", "m", 3)
    later = repo.commit("staging v3, later")  # production still pins v2 here
    assert run("apply").exit_code == 0  # applied from the later commit
    # v1, then v3, then v1 again, applied only at the last: the first v1 was superseded before.
    repo.pin("production", "m", 1)
    first_v1 = repo.commit("production v1")
    repo.pin("production", "m", 3)
    repo.pin("staging", "m", 2)
    v3 = repo.commit("production v3")
    repo.pin("production", "m", 1)
    second_v1 = repo.commit("production v1 again")
    assert run("apply").exit_code == 0
    result = run("history", "m", "--env", "production")
    assert result.exit_code == 0, result.stderr
    marks = [
        (line.split()[2], line.split("[")[1].split("]")[0])
        for line in result.stdout.splitlines()[1:]
    ]
    assert marks == [
        (second_v1[:10], "applied"),
        (v3[:10], "not applied"),
        (first_v1[:10], "not applied"),
        (pinned[:10], "applied"),
    ]
    assert later != pinned


def test_history_in_a_shallow_clone_says_how_to_fetch(
    repo: Repo, fake: FakeRegistry, tmp_path: Path
) -> None:
    fake.create_version("m")
    repo.pin("production", "m", 1)
    repo.commit("v1")
    repo.write("README.md", "x\n")
    repo.commit("later")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo.root}", str(shallow)], check=True
    )
    result = make_runner(shallow, fake)("history", "m")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: history of 'm' is incomplete: this is a shallow clone, so commits before "
        "the shallow boundary are not here. Fetch them with `git fetch --unshallow` "
        "(actions/checkout: fetch-depth: 0)\n"
    )
    subprocess.run(["git", "fetch", "-q", "--unshallow"], cwd=shallow, check=True)
    assert make_runner(shallow, fake)("history", "m").exit_code == 0


def test_promote_commits_exactly_its_pin_for_a_pattern_like_name(
    repo: Repo, fake: FakeRegistry
) -> None:
    for model in ("c*d", "cZd"):
        fake.create_version(model)
        fake.create_version(model)
    repo.write("environments/production/c*d.yaml", "model: 'c*d'\nversion: 1\n")
    repo.write("environments/production/cZd.yaml", "model: cZd\nversion: 1\n")
    repo.commit("pins")
    repo.write("environments/production/cZd.yaml", "model: cZd\nversion: 2\n")  # work in progress
    result = make_runner(repo.root, fake)(
        "promote", "c*d", "--to", "production", "--version", "2", "--commit"
    )
    assert result.exit_code == 0, result.stderr
    assert repo.git("show", "--name-only", "--format=", "HEAD").splitlines() == [
        "environments/production/c*d.yaml"
    ]
    assert " M environments/production/cZd.yaml" in repo.git("status", "--porcelain")


def test_an_unreadable_audit_time_cannot_pass_a_soak_gate(
    repo: Repo, run: RunCli, models: FakeRegistry
) -> None:
    repo.write("environments/production.yaml", "requires: staging\ngates:\n  soak: 1h\n")
    (repo.root / "environments/staging").mkdir(parents=True)
    repo.pin("production", "m", 2)
    for when in ("yesterday", "2020-01-01T00:00:00"):  # hand-edited: no time, no zone
        record = audit.AuditRecord("staging", "promote", when)
        models.set_version_tag("m", "2", audit_tag("staging"), audit.append(None, record))
        result = run("plan")
        assert result.exit_code == 1
        assert (
            "m v2 has no audit record of an apply to staging, so its soak time cannot be measured"
            in result.stderr
        )
