"""State tags reconciler does not understand (issue 15 §6): never read as "nothing recorded".

Each shape below once made every command ignore the whole `reconciler.state` tag (an apply then
overwrote a live foreign lease, status showed `LAST APPLIED -`) or crashed apply and
`unlock --force` with exit 3. Now apply refuses the model in one line saying what is wrong and
how to recover, plan and status say the tag is unreadable, `unlock` explains, and
`unlock --force` always works.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from reconciler.apply.lease import this_host
from reconciler.gitrepo import repository_id
from reconciler.pins.values import PRODUCTION
from reconciler.records.bookkeeping import STATE_TAG, parse_state, state_of
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, RunCli, make_runner

LIVE = {
    "holder": "other-job@runner pid 7 (cafe0001)",
    "commit": "c" * 40,
    "acquired": 1.0,
    "expires": 4e9,  # 2096: alive
}


def live_lease(**changes: object) -> dict[str, object]:
    return {**LIVE, **changes}


# name → (tag value, what apply says is wrong)
SHAPES = {
    "future format beside a live lease": (
        json.dumps({"format": 2, "environments": {}, "lease": LIVE, "queue": []}),
        "was written by a newer reconciler (state format 2; this one reads format 1)",
    ),
    "truncated JSON": (
        '{"environments": {"production": {"commit": "abc',
        "is unreadable (not valid JSON: Unterminated string starting at: line 1 column 44 "
        "(char 43))",
    ),
    "null": ("null", "is unreadable (not a JSON object but null)"),
    "a list": ('[{"environments": {}}]', "is unreadable (not a JSON object but a list)"),
    "pid 1e21": (
        json.dumps({"environments": {}, "lease": live_lease(host=this_host(), pid=1e21)}),
        "is unreadable (lease.pid: expected a process id (a whole number from 1 to 2147483647), "
        "found 1e+21)",
    ),
    "expires 1e400": (
        '{"environments": {}, "lease": {"holder": "h", "acquired": 1, "expires": 1e400}}',
        "is unreadable (lease.expires: expected a time in seconds, found Infinity)",
    ),
    "a commit of the wrong type": (
        json.dumps({"environments": {"production": {"commit": 12345}}}),
        "is unreadable (environments.production.commit: expected a string, found 12345)",
    ),
    "a field it does not know": (
        json.dumps({"environments": {}, "leases": {}}),
        "is unreadable (unknown field 'leases' (a hand edit, or a newer reconciler))",
    ),
    "a lease of the wrong type": (
        json.dumps({"environments": {}, "lease": "mine"}),
        "is unreadable (lease: expected an object, found a string)",
    ),
}


@pytest.fixture
def promotion(repo: Repo, fake: FakeRegistry) -> FakeRegistry:
    """m: v1 in Production, the pin says v2 (a change pending); n in sync beside it."""
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    fake.create_version("n", stage=PRODUCTION)
    repo.pin("production", "m", 2)
    repo.pin("production", "n", 1)
    repo.commit("m v2")
    return fake


def stages(fake: FakeRegistry) -> dict[str, str]:
    return {v: mv.stage for v, mv in fake.read(["m"]).models["m"].versions.items()}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_an_unreadable_state_tag_refuses_apply_and_is_shown_and_unlock_force_recovers(
    repo: Repo, run: RunCli, promotion: FakeRegistry, shape: str
) -> None:
    fake = promotion
    value, problem = SHAPES[shape]
    fake.set_model_tag("m", STATE_TAG, value)
    fake.writes.clear()

    refused = run("apply")
    assert refused.exit_code == 1, refused.output
    assert refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert len(lines) == 1, lines  # one line: what is wrong, how to recover
    assert lines[0].startswith(f"error: registered model 'm': its reconciler.state tag {problem}")
    newer = "written by a newer reconciler" in problem
    if newer:
        assert "upgrade reconciler to apply it" in lines[0]
    else:
        assert (
            "`reconciler unlock --force --model m` rewrites it keeping what can be read"
            in (lines[0])
        )
    assert fake.writes == []  # nothing written: not the lease, not n's adoption
    assert fake.get_model_tag("m", STATE_TAG) == value
    for command in ("history m", "import", "promote m --to staging --version 1"):
        assert run(*command.split()).exit_code == 0, command  # the others never crash on it
    repo.git("checkout", "-q", "--", ".")
    repo.git("clean", "-fdq")  # the pin `promote` wrote

    # plan and status say so (exit 0: they only read), never "nothing recorded".
    plan = run("plan")
    assert plan.exit_code == 0, plan.output
    assert (
        "unreadable state tags (apply refuses these models; `reconciler unlock` says how to fix)"
        in plan.stdout
    )
    assert "  ! m: reconciler.state: " in plan.stdout
    assert "+ production: m" not in plan.stdout  # not offered for adoption either
    document = json.loads(run("plan", "--format", "json").stdout)
    [unreadable] = document["unreadable_states"]
    assert unreadable["model"] == "m"
    assert run("plan", "--format", "markdown").stdout.count("- `m`: reconciler.state: ") == 1
    status = run("status")
    assert status.exit_code == 0
    row = next(line for line in status.stdout.splitlines() if " m " in line)
    assert row.endswith("unreadable state tag (see `reconciler plan`)")
    rows = json.loads(run("status", "--format", "json").stdout)
    assert next(r for r in rows if r["model"] == "m")["state_problem"] == unreadable["problem"]

    # unlock explains and keeps it; --force always works.
    kept = run("unlock")
    assert kept.exit_code == 0, kept.output
    assert kept.stdout.startswith("m: state tag kept (its reconciler.state tag ")
    assert kept.stdout.endswith("Unlock: 0 removed, 1 kept.\n")
    assert fake.get_model_tag("m", STATE_TAG) == value
    forced = run("unlock", "--force", "--format", "json")
    assert forced.exit_code == 0, forced.output
    [item] = json.loads(forced.stdout)
    assert (item["kind"], item["model"], item["removed"]) == ("state", "m", True)

    if newer:
        # Only the lease went: the newer reconciler's records stay for it to read.
        left = json.loads(fake.get_model_tag("m", STATE_TAG) or "")
        assert left == {"format": 2, "environments": {}, "queue": []}
        again = run("apply")
        assert again.exit_code == 1
        assert "written by a newer reconciler" in again.stderr
        return
    assert parse_state(fake.read_model("m").tags).unreadable is None  # type: ignore[union-attr]
    applied = run("apply")
    assert applied.exit_code == 0, applied.output
    assert stages(fake) == {"1": ARCHIVED, "2": PRODUCTION}


def test_unlock_force_keeps_what_can_be_read(repo: Repo, run: RunCli, fake: FakeRegistry) -> None:
    """A hand edit broke the lease; the fence and ownership beside it survive the rewrite, and
    the commits the broken lease announced count as attempted (they may have landed)."""
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    repo.pin("production", "m", 1)
    first = repo.commit("m v1")
    assert run("apply").exit_code == 0
    owner = repository_id(repo.root)
    broken = {
        "environments": {"production": {"commit": first, "owner": owner}, "staging": 7},
        "lease": live_lease(pid=-3, apply="a1", pending={"production": {"commit": "f" * 40}}),
    }
    fake.set_model_tag("m", STATE_TAG, json.dumps(broken))
    forced = run("unlock", "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.stdout.splitlines()[0] == (
        "m: state tag rewritten (forced: its reconciler.state tag is unreadable "
        "(environments.staging: expected an object, found the number 7); rewritten "
        "keeping 1 environment record(s) and 1 attempted commit(s), dropping "
        "environments.staging, the lease)"
    )
    state = state_of(fake.read_model("m"))
    assert state.unreadable is None
    assert state.environments["production"].commit == first
    assert state.environments["production"].owner == owner
    assert state.attempted == {"production": "f" * 40}
    assert state.lease is None
    # The unrecorded fence is reported, and kept.
    report = run("unlock")
    assert report.stdout.splitlines() == [
        f"m: production: fenced by commit {'f' * 12}, whose apply may have changed it and never "
        "recorded it; kept (an apply of that commit or a descendant records it; `apply --force` "
        "overrides)",
        "Unlock: 0 removed, 0 kept; 1 unrecorded fence(s) kept.",
    ]


def test_a_live_foreign_lease_beside_a_newer_format_is_never_overwritten(
    repo: Repo, fake: FakeRegistry
) -> None:
    """The tag a newer reconciler holds a live lease in: an apply waits for nothing and writes
    nothing (before, it read the tag as empty and took the model over)."""
    fake.create_version("m", stage=PRODUCTION)
    fake.create_version("m")
    repo.pin("production", "m", 2)
    repo.commit("m v2")
    lease = live_lease(host=this_host(), pid=os.getpid(), acquired=time.time())
    value = json.dumps({"format": 2, "lease": lease})
    fake.set_model_tag("m", STATE_TAG, value)
    result = make_runner(repo.root, fake)("apply", "--lease-wait", "0")
    assert result.exit_code == 1
    assert "written by a newer reconciler" in result.stderr
    assert fake.get_model_tag("m", STATE_TAG) == value
    assert stages(fake) == {"1": PRODUCTION, "2": "None"}
