"""Audit records on apply, and `reconciler history` from git cross-checked with them."""

from __future__ import annotations

import json

import pytest

from reconciler.pins.values import PRODUCTION
from reconciler.records import audit
from reconciler.records.bookkeeping import audit_tag
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, make_runner


def audit_records(
    fake: FakeRegistry, version: str, env: str = "production"
) -> list[audit.AuditRecord]:
    tags = fake.read(["m"]).models["m"].versions[version].tags
    return audit.parse(tags.get(audit_tag(env)))


@pytest.fixture
def story(repo: Repo, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """v1 to production; PR #7 promotes v2 (merged); v2 is reverted. Each commit applied."""
    monkeypatch.setenv("GITHUB_ACTOR", "release-bot")
    for _ in range(3):
        fake.create_version("m")
    run = make_runner(repo.root, fake)
    commits = {}
    repo.pin("production", "m", 1)
    repo.pin("staging", "m", 2)
    commits["first"] = repo.commit("Pin m: production v1, staging v2", "2026-01-01T10:00:00Z")
    assert run("apply").exit_code == 0
    repo.pin("production", "m", 2)
    repo.pin("staging", "m", 3)
    commits["promote"] = repo.commit("Promote m v2 (#7)", "2026-02-01T10:00:00Z")
    assert run("apply").exit_code == 0
    repo.git("revert", "--no-edit", "HEAD", date="2026-03-01T10:00:00Z")
    commits["revert"] = repo.git("rev-parse", "HEAD").strip()
    assert run("apply").exit_code == 0
    return commits


def test_each_applied_change_leaves_an_audit_record(
    story: dict[str, str], fake: FakeRegistry
) -> None:
    v1 = audit_records(fake, "1")
    assert [(r.action, r.commit, r.previous, r.actor) for r in v1] == [
        ("promote", story["first"], (), "release-bot"),
        ("rollback", story["revert"], ("2",), "release-bot"),
    ]
    v2 = audit_records(fake, "2")
    assert [(r.action, r.commit, r.previous, r.pull_request) for r in v2] == [
        ("promote", story["promote"], ("1",), "7")
    ]
    assert v2[0].time.endswith("+00:00")
    assert [r.commit for r in audit_records(fake, "2", "staging")] == [
        story["first"],
        story["revert"],
    ]


def test_history_text(story: dict[str, str], repo: Repo, fake: FakeRegistry) -> None:
    result = make_runner(repo.root, fake)("history", "m", "--env", "production")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "m: 3 change(s), newest first"
    revert_line = f"{story['revert'][:10]}  production: v2 → v1 ROLLBACK  [applied]  Test Author: "
    assert revert_line + 'Revert "Promote m v2 (#7)"' in lines[1]
    assert (
        f"{story['promote'][:10]}  production: v1 → v2  [applied]  Test Author: Promote m v2 (#7)"
        in lines[2]
    )
    assert f"{story['first'][:10]}  production: none → v1  [applied]" in lines[3]


def test_history_json_and_unapplied_changes(
    story: dict[str, str], repo: Repo, fake: FakeRegistry
) -> None:
    repo.pin("production", "m", 3)
    pending = repo.commit("Promote m v3")
    document = json.loads(make_runner(repo.root, fake)("history", "m", "--format", "json").stdout)
    newest = document["changes"][0]
    assert (
        newest["commit"],
        newest["environment"],
        newest["from_version"],
        newest["to_version"],
    ) == (pending, "production", "1", "3")
    assert newest["applied"] is False
    assert newest["rollback"] is False
    assert {(c["environment"], c["applied"]) for c in document["changes"][1:]} == {
        ("production", True),
        ("staging", True),
    }


def test_history_at_a_time(story: dict[str, str], repo: Repo, fake: FakeRegistry) -> None:
    run = make_runner(repo.root, fake)
    in_february = json.loads(run("history", "m", "--at", "2026-02-15", "--format", "json").stdout)
    pinned = in_february["pinned_at"]
    assert (pinned["production"]["to_version"], pinned["production"]["commit"]) == (
        "2",
        story["promote"],
    )
    assert pinned["staging"]["to_version"] == "3"
    at_promotion = json.loads(
        run("history", "m", "--at", "2026-02-01T10:00:00Z", "--format", "json").stdout
    )
    assert at_promotion["pinned_at"]["production"]["to_version"] == "2"
    just_before = json.loads(
        run("history", "m", "--at", "2026-02-01T09:59:59+00:00", "--format", "json").stdout
    )
    assert just_before["pinned_at"]["production"]["to_version"] == "1"
    text = run("history", "m", "--at", "2026-03-02", "--env", "production").stdout
    assert text.splitlines()[:2] == [
        "pinned at 2026-03-02T23:59:59+00:00:",
        f"  production: v1 (commit {story['revert'][:10]}, 2026-03-01T10:00:00+00:00)",
    ]
    before = make_runner(repo.root, fake)("history", "m", "--at", "2000-01-01")
    assert before.stdout.splitlines()[:3] == [
        "pinned at 2000-01-01T23:59:59+00:00:",
        "  production: no pin",
        "  staging: no pin",
    ]
    bad = make_runner(repo.root, fake)("history", "m", "--at", "yesterday")
    assert bad.exit_code == 64  # a usage error (EX_USAGE), never 2
    assert "'yesterday' is not an ISO 8601 time" in bad.stderr


def test_history_of_an_unknown_model(repo: Repo, fake: FakeRegistry) -> None:
    repo.pin("production", "m", 1)
    repo.commit("pin")
    result = make_runner(repo.root, fake)("history", "other")
    assert result.exit_code == 1
    assert result.stderr == "error: no git history of pins for model 'other' under environments/\n"


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("Merge pull request #42 from org/branch\n\nPromote", "42"),
        ("Promote churn-model v15 (#108)", "108"),
        ("Promote churn-model v15", None),
        ("", None),
    ],
)
def test_pull_request_from_message(message: str, number: str | None) -> None:
    assert audit.pull_request_from_message(message) == number


def test_audit_keeps_the_newest_records() -> None:
    value = None
    for i in range(25):
        value = audit.append(
            value, audit.AuditRecord("production", "promote", f"t{i}", commit=str(i))
        )
    records = audit.parse(value)
    assert len(records) == 20
    assert records[-1].commit == "24"
    assert audit.parse("not json") == []


def test_production_stays_in_production_through_the_story(
    story: dict[str, str], fake: FakeRegistry
) -> None:
    stages = {v: mv.stage for v, mv in fake.read(["m"]).models["m"].versions.items()}
    assert stages == {"1": PRODUCTION, "2": "Staging", "3": "Archived"}
