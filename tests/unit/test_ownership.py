"""Ownership and `--force` (issue 15 §8): a repository changes only the models it owns.

Before, applying to a model another repository owns was refused by the fence with a misleading
"Fetch it (git fetch origin)" hint; `--force` then took it over silently, and the owner's next
apply got exit 4. Now the refusal names the owner (exit 5), plan says who owns each model,
`--force` never takes a model over, `--take-ownership` does and is audited as a takeover, and
the previous owner's next apply is refused naming the new owner.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.gitrepo import repository_id
from reconciler.pins.values import PRODUCTION
from reconciler.records import audit
from reconciler.records.bookkeeping import audit_tag, state_of
from reconciler.registry.fake import FakeRegistry
from tests.conftest import Repo, make_runner

A_URL = "https://github.com/acme/ml-promotions.git"
B_URL = "https://github.com/acme/fraud-team.git"


def team(path: Path, url: str) -> Repo:
    repo = Repo(path)
    repo.write("README.md", f"{path.name}\n")
    repo.commit("start")  # its own root commit: its own identity
    repo.git("remote", "add", "origin", url)
    return repo


@pytest.fixture
def teams(tmp_path: Path, fake: FakeRegistry) -> tuple[Repo, Repo]:
    """Two repositories pinning one model; A applied it first, so A owns it."""
    for _ in range(3):
        fake.create_version("churn")
    fake.transition_stage("churn", "1", PRODUCTION, archive_existing=True)
    a = team(tmp_path / "a", A_URL)
    b = team(tmp_path / "b", B_URL)
    a.pin("production", "churn", 2)
    a.commit("churn v2")
    assert make_runner(a.root, fake)("apply").exit_code == 0
    b.pin("production", "churn", 3)
    b.commit("churn v3")
    return a, b


def owner(fake: FakeRegistry) -> str | None:
    record = state_of(fake.read_model("churn")).environments["production"]
    return record.owner


def test_another_repositorys_model_is_refused_naming_it_and_force_does_not_take_it(
    teams: tuple[Repo, Repo], fake: FakeRegistry
) -> None:
    a, b = teams
    run_b = make_runner(b.root, fake)
    fake.writes.clear()
    for args in ((), ("--force",)):
        refused = run_b("apply", *args)
        assert refused.exit_code == 5, refused.output
        assert refused.stderr == (
            "error: refusing to apply churn to production: another repository owns it there: "
            f"{A_URL} (root commit {repository_id(a.root)[4:16]}), which last applied commit "
            f"{a.git('rev-parse', 'HEAD')[:12]} there. A repository changes only the models it "
            "owns; nothing was changed. If this repository should own it now, apply with "
            "--take-ownership (recorded as a takeover in the audit trail)\n"
        )
        assert "Fetch it" not in refused.stderr
    assert fake.writes == []
    assert owner(fake) == repository_id(a.root)


def test_plan_says_who_owns_a_model(teams: tuple[Repo, Repo], fake: FakeRegistry) -> None:
    a, b = teams
    run_b = make_runner(b.root, fake)
    text = run_b("plan")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[1] == "  ~ churn: v2 → v3 (v3 → Production, archives v2)"
    assert lines[2] == (
        f"      owner: another repository, {A_URL} (root commit "
        f"{repository_id(a.root)[4:16]}); apply changes it only with --take-ownership"
    )
    markdown = run_b("plan", "--format", "markdown").stdout
    assert "**Owned by another repository:**" in markdown
    assert f"- production `churn`: another repository, {A_URL} (root commit" in markdown
    [pin] = json.loads(run_b("plan", "--format", "json").stdout)["pins"]
    assert pin["owner"] == {
        "repository": repository_id(a.root),
        "name": A_URL,
        "this_repository": False,
    }
    # The owner's own plan: its repository, nothing to add in text.
    [mine] = json.loads(make_runner(a.root, fake)("plan", "--format", "json").stdout)["pins"]
    assert mine["owner"]["this_repository"] is True
    assert "owner:" not in make_runner(a.root, fake)("plan").stdout


def test_take_ownership_is_audited_and_the_previous_owner_is_refused_naming_the_new_one(
    teams: tuple[Repo, Repo], fake: FakeRegistry
) -> None:
    a, b = teams
    run_a, run_b = make_runner(a.root, fake), make_runner(b.root, fake)
    taken = run_b("apply", "--take-ownership")
    assert taken.exit_code == 0, taken.output
    assert owner(fake) == repository_id(b.root)
    found = fake.read_model("churn")
    assert found is not None
    [record] = audit.parse(found.versions["3"].tags[audit_tag("production")])
    assert (record.action, record.previous) == ("promote", ("2",))
    assert record.took_over_from == repository_id(a.root)
    assert record.took_over_from_name == A_URL
    history = run_b("history", "churn")
    assert history.exit_code == 0, history.output
    assert (
        f"[applied, taken over from {A_URL} ({repository_id(a.root)})]"
        in history.stdout.splitlines()[1]
    )
    [change] = json.loads(run_b("history", "churn", "--format", "json").stdout)["changes"][:1]
    assert change["took_over_from"] == f"{A_URL} ({repository_id(a.root)})"

    # A's pins now differ from the registry: its apply is refused, naming B (not exit 4).
    refused = run_a("apply")
    assert refused.exit_code == 5, refused.output
    assert (
        f"another repository owns it there: {B_URL} (root commit {repository_id(b.root)[4:16]})"
        in refused.stderr
    )
    assert fake.read_model("churn").versions["3"].stage == PRODUCTION  # type: ignore[union-attr]
    # A's plan says so too; taking it back is A's explicit choice.
    assert f"owner: another repository, {B_URL}" in run_a("plan").stdout
    assert run_a("apply", "--take-ownership").exit_code == 0
    assert owner(fake) == repository_id(a.root)


def test_an_in_sync_pin_is_taken_over_only_with_take_ownership(
    teams: tuple[Repo, Repo], fake: FakeRegistry
) -> None:
    a, b = teams
    b.pin("production", "churn", 2)  # what A serves
    b.commit("churn v2, as served")
    run_b = make_runner(b.root, fake)
    plan = run_b("plan")
    assert "record (" not in plan.stdout  # not adopted: another repository's
    fake.writes.clear()
    assert run_b("apply").exit_code == 0
    assert fake.writes == []
    assert owner(fake) == repository_id(a.root)
    taken = run_b("apply", "--take-ownership")
    assert taken.exit_code == 0, taken.output
    assert "takes it over from " + A_URL in taken.stdout
    assert owner(fake) == repository_id(b.root)
    found = fake.read_model("churn")
    assert found is not None
    records = audit.parse(found.versions["2"].tags[audit_tag("production")])
    assert (records[-1].action, records[-1].took_over_from) == ("adopt", repository_id(a.root))
