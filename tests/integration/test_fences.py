"""Issue 15 on the real server through the real CLI: state tags reconciler cannot read (§6),
ownership and --take-ownership (§8), and a `kill -9` between a transition and its audit record
recorded as the promotion it was (§9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.apply.lease import this_host
from reconciler.gitrepo import repository_id
from reconciler.pins.values import PRODUCTION
from reconciler.records import audit
from reconciler.records.bookkeeping import STATE_TAG, audit_tag, state_of
from reconciler.registry.mlflow_registry import MlflowRegistry
from reconciler.registry.values import ARCHIVED
from tests.conftest import Repo, make_runner
from tests.integration.conftest import Seeder
from tests.support.proxy import Fault, RecordingProxy
from tests.unit.test_notify import Hook

pytestmark = pytest.mark.integration


def models(seeder: Seeder, repo: Repo, *bases: str) -> list[str]:
    """Each model: v1 in Production, v2 new; the pins (committed) say v2."""
    names = [seeder.name(base) for base in bases]
    for name in names:
        seeder.model(name, [0.5, 0.6])
        seeder.stage(name, "1", PRODUCTION)
        repo.pin("production", name, 2)
    repo.commit("v2")
    return names


def test_unreadable_state_tags_refuse_apply_and_unlock_force_recovers(
    repo: Repo, seeder: Seeder, mlflow_server: str
) -> None:
    truncated, huge_pid = models(seeder, repo, "truncated", "hugepid")
    seeder.client.set_registered_model_tag(truncated, STATE_TAG, '{"environments": {"produc')
    lease = {"holder": "h", "acquired": 1, "expires": 4e9, "host": this_host(), "pid": 1e21}
    seeder.client.set_registered_model_tag(huge_pid, STATE_TAG, json.dumps({"lease": lease}))
    run = make_runner(repo.root, tracking_uri=mlflow_server)

    refused = run("apply")
    assert refused.exit_code == 1, refused.output
    [line] = refused.stderr.splitlines()
    assert line.startswith(
        f"error: registered model '{huge_pid}': its reconciler.state tag is unreadable "
        "(lease.pid: expected a process id (a whole number from 1 to 2147483647), found 1e+21)"
    )
    assert line.endswith("(1 more model(s) likewise; `reconciler plan` lists them)")
    assert seeder.stages(truncated) == {"1": PRODUCTION, "2": "None"}
    status = run("status", "--format", "json")
    assert status.exit_code == 0
    problems = {r["model"]: r["state_problem"] for r in json.loads(status.stdout)}
    assert problems[truncated].startswith("not valid JSON")
    plan = run("plan")
    assert plan.exit_code == 0
    assert f"  ! {truncated}: reconciler.state: not valid JSON" in plan.stdout

    kept = run("unlock")
    assert kept.exit_code == 0, kept.output
    assert kept.stdout.splitlines()[-1] == "Unlock: 0 removed, 2 kept."
    forced = run("unlock", "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.stdout.splitlines()[-1] == "Unlock: 2 removed, 0 kept."
    applied = run("apply")
    assert applied.exit_code == 0, applied.output
    for name in (truncated, huge_pid):
        assert seeder.stages(name) == {"1": ARCHIVED, "2": PRODUCTION}


def team(path: Path, url: str) -> Repo:
    repo = Repo(path)
    repo.write("README.md", f"{path.name}\n")
    repo.commit("start")
    repo.git("remote", "add", "origin", url)
    return repo


def test_another_repositorys_model_needs_take_ownership(
    tmp_path: Path, seeder: Seeder, mlflow_server: str
) -> None:
    a = team(tmp_path / "a", "https://github.com/acme/ml-promotions.git")
    b = team(tmp_path / "b", "https://github.com/acme/fraud-team.git")
    [name] = models(seeder, a, "owned")
    run_a = make_runner(a.root, tracking_uri=mlflow_server)
    run_b = make_runner(b.root, tracking_uri=mlflow_server)
    assert run_a("apply").exit_code == 0
    seeder.client.create_model_version(name, source="s3://bucket/v3")
    b.pin("production", name, 3)
    b.commit("v3")

    plan = json.loads(run_b("plan", "--format", "json").stdout)
    assert plan["pins"][0]["owner"]["name"] == "https://github.com/acme/ml-promotions.git"
    for args in ((), ("--force",)):
        refused = run_b("apply", *args)
        assert refused.exit_code == 5, refused.output
        assert "another repository owns it there: https://github.com/acme/ml-promotions.git" in (
            refused.stderr
        )
    assert seeder.stages(name)["2"] == PRODUCTION
    taken = run_b("apply", "--take-ownership")
    assert taken.exit_code == 0, taken.output
    assert seeder.stages(name)["3"] == PRODUCTION
    found = MlflowRegistry(mlflow_server).read_model(name)
    assert found is not None
    assert state_of(found).environments["production"].owner == repository_id(b.root)
    [record] = audit.parse(found.versions["3"].tags[audit_tag("production")])
    assert record.took_over_from == repository_id(a.root)
    assert (
        "taken over from https://github.com/acme/ml-promotions.git" in run_b("history", name).stdout
    )
    # The previous owner's next change is refused, naming the new owner.
    a.pin("production", name, 1)
    a.commit("roll back")
    refused = run_a("apply")
    assert refused.exit_code == 5, refused.output
    assert "another repository owns it there: https://github.com/acme/fraud-team.git" in (
        refused.stderr
    )
    assert seeder.stages(name)["3"] == PRODUCTION


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def test_a_kill_between_transition_and_audit_record_is_recorded_as_the_promotion(
    repo: Repo,
    seeder: Seeder,
    proxy: RecordingProxy,
    mlflow_server: str,
    hook: Hook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = models(seeder, repo, "killed1", "killed2")
    commit = repo.git("rev-parse", "HEAD").strip()
    # The first audit record never reaches the server: the apply is killed (SIGKILL) while the
    # proxy holds it, right after the first model's transition.
    proxy.faults.append(Fault("hang", "model-versions/set-tag", hang_seconds=5))
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--tracking-uri", proxy.url, "apply",
         "--parallelism", "1"],
        cwd=repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not any("model-versions/set-tag" in path for _m, path in list(proxy.requests)):
        assert time.monotonic() < deadline, "apply never reached its audit record"
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert seeder.stages(first) == {"1": ARCHIVED, "2": PRODUCTION}  # moved, not recorded
    assert seeder.stages(second) == {"1": PRODUCTION, "2": "None"}
    killed = MlflowRegistry(mlflow_server).read_model(first)
    assert killed is not None
    assert audit_tag("production") not in killed.versions["2"].tags

    # The CI job runs again: the dead holder's lease is taken at once (same host, pid gone).
    monkeypatch.setenv("RECONCILER_WEBHOOK_URL", hook.url)
    result = make_runner(repo.root, tracking_uri=mlflow_server)("apply", "--lease-wait", "0")
    assert result.exit_code == 0, result.output
    assert (
        f"+ production: {first} v2: record applied commit and ownership + promote audit record "
        f"(moved there by an apply of commit {commit[:12]} whose records never completed)"
    ) in result.stdout
    found = MlflowRegistry(mlflow_server).read_model(first)
    assert found is not None
    [record] = audit.parse(found.versions["2"].tags[audit_tag("production")])
    assert (record.action, record.previous, record.commit) == ("promote", ("1",), commit)
    assert state_of(found).environments["production"].commit == commit
    notified = sorted(body["text"].splitlines()[0] for body in hook.bodies)
    assert notified == sorted(f"*Model Promoted: {name}*" for name in (first, second))
