"""Checks that refuse an apply before it writes: a state tag it cannot read, ownership by another
repository, ordering by git ancestry (fencing), the reviewed plan (--expect-plan), and prune
safety."""

from __future__ import annotations

from pathlib import Path

from reconciler.apply.options import ApplyOptions
from reconciler.errors import (
    NotOwner,
    OutOfOrder,
    PlanChanged,
    RetireRefused,
    UncommittedChanges,
)
from reconciler.pins.values import DesiredState
from reconciler.planning.steps import Plan
from reconciler.records import audit
from reconciler.records.bookkeeping import EnvRecord, audit_tag, describe_owner, state_of
from reconciler.registry.values import ActualState, RegisteredModel


def check_committed(root: Path, allow_dirty: bool) -> bool:
    """What is applied is exactly what is committed: refuse a work tree whose environments/
    differs from HEAD (or a repository with no commit), unless `allow_dirty`. Returns whether
    the apply is dirty (the audit records then say so instead of claiming HEAD)."""
    from reconciler.gitrepo import uncommitted
    from reconciler.pins.desired import ENVIRONMENTS_DIR, YAML_SUFFIXES

    state = uncommitted(root, ENVIRONMENTS_DIR, YAML_SUFFIXES)
    escape = "; use --allow-dirty for a local experiment. Nothing was changed"
    if not state.repository:
        problem = (
            f"{root} is not a git repository: apply applies committed pins (the commit fences "
            "and audits the apply)"
        )
    elif state.head is None:
        problem = (
            "the repository has no commit yet: commit environments/ first (the commit fences "
            "and audits the apply)"
        )
    elif state.changes:
        listed = ", ".join(f"{path} ({how})" for path, how in state.changes[:10])
        more = f" and {len(state.changes) - 10} more" if len(state.changes) > 10 else ""
        problem = (
            f"environments/ differs from the commit checked out ({state.head[:12]}): "
            f"{listed}{more}. Commit or discard them: what is applied is what is committed"
        )
    else:
        return False
    if allow_dirty:
        return True
    raise UncommittedChanges(f"refusing to apply: {problem}{escape}")


def check_readable(actual: ActualState, plan: Plan) -> None:
    """Every model the apply covers (pinned in scope, or to record) must have a state tag this
    version can read: an unreadable one hides a fence, an owner or a live lease."""
    from reconciler.apply.lease_record import check_readable as refuse_unreadable

    models = {e.pin.model for e in plan.entries} | {s.model for s in plan.steps}
    refuse_unreadable(actual, [m for m in models if m in actual.models])


def foreign_owner(
    actual: ActualState, model: str, environment: str, owner: str
) -> EnvRecord | None:
    """The record of another repository owning `model` in `environment`, if one does."""
    record = state_of(actual.models.get(model)).environments.get(environment)
    if record is None or record.owner is None or record.owner == owner:
        return None
    return record


def check_ownership(
    actual: ActualState, plan: Plan, owner: str, take_ownership: bool, root: Path
) -> None:
    """A repository changes only models it owns (or nobody does): another's needs
    `--take-ownership`, never just `--force` (that one skips the ordering checks only). A
    shallow clone cannot tell: its identity (the root commit) is not in it."""
    from reconciler.gitrepo import is_shallow

    foreign = [
        (environment, model, record)
        for environment, model in sorted({(s.environment, s.model) for s in plan.steps})
        if (record := foreign_owner(actual, model, environment, owner)) is not None
    ]
    if not foreign:
        return
    environment, model, record = foreign[0]
    if is_shallow(root):
        raise OutOfOrder(
            f"refusing to apply {model} to {environment}: its owner is recorded as "
            f"{describe_owner(record)}, and this shallow clone cannot tell whether that is this "
            "repository (a repository is known by its root commit, which is not here). Fetch "
            "full history (git fetch --unshallow; actions/checkout with fetch-depth: 0)"
        )
    if take_ownership:
        return
    last = f", which last applied commit {record.commit[:12]} there" if record.commit else ""
    raise NotOwner(
        f"refusing to apply {model} to {environment}: another repository owns it there: "
        f"{describe_owner(record)}{last}. A repository changes only the models it owns; "
        "nothing was changed. If this repository should own it now, apply with "
        "--take-ownership (recorded as a takeover in the audit trail)"
    )


def check_order(
    actual: ActualState, plan: Plan, root: Path, options: ApplyOptions, owner: str | None = None
) -> None:
    """Fencing by git ancestry: never let an older commit overwrite a newer one's apply (an old
    CI run that finishes last would roll production back). A model taken over from another
    repository (`--take-ownership`) is not fenced by that repository's commits: they are in
    another history."""
    if options.force:
        return
    serving = {(e.pin.environment, e.pin.model): e.current for e in plan.entries}
    for environment, model in sorted({(s.environment, s.model) for s in plan.steps}):
        if owner is not None and foreign_owner(actual, model, environment, owner) is not None:
            continue  # a takeover: check_ownership let it through only with --take-ownership
        now = serving.get((environment, model))
        for recorded, said in fences(actual.models.get(model), environment, now):
            if recorded != options.commit:
                _check_one(root, options.commit, model, environment, recorded, said)


def fences(
    registered: RegisteredModel | None,
    environment: str,
    serving: tuple[str, ...] | None = None,
) -> list[tuple[str, str]]:
    """The commits an apply to `environment` must descend from, each with how it is known: the
    applied commit recorded, an announced commit whose records never completed (it may have
    landed: unless its lease said which version it would put there and `serving`, what the
    environment holds now, does not have it: a killed apply announces every model it leased,
    and must not fence those it never reached), and the commit of the newest audit record there
    (on the versions: a state tag overwritten from a stale read, or edited by hand, cannot take
    it away)."""
    state = state_of(registered)
    found: list[tuple[str, str]] = []
    record = state.environments.get(environment)
    if record is not None and record.commit:
        found.append((record.commit, "was last applied there from commit {}"))
    attempted = state.attempted.get(environment)
    move = state.moves.get(environment)
    if attempted and move is not None and serving is not None and move.version not in serving:
        attempted = None  # it never landed (or what it put there is gone again): no change
    if attempted:
        found.append((attempted, "may have been changed there by an apply of commit {} (its "
                                 "records never completed)"))  # fmt: skip
    for newest in _newest_audits(registered, environment):
        found.append((newest, "was last applied there from commit {}, says its newest audit "
                              "record"))  # fmt: skip
    unique: dict[str, str] = {}
    for commit, said in found:
        unique.setdefault(commit, said)
    return list(unique.items())


def _newest_audits(registered: RegisteredModel | None, environment: str) -> list[str]:
    """The commits of the newest audit records there (several when they share a second: the
    time is kept to the second)."""
    if registered is None:
        return []
    key = audit_tag(environment)
    records = [
        record
        for version in registered.versions.values()
        for record in audit.parse(version.tags.get(key))
        if record.commit
    ]
    newest = max((r.time for r in records), default=None)
    return sorted({r.commit for r in records if r.time == newest and r.commit})


def _check_one(
    root: Path, commit: str | None, model: str, environment: str, recorded: str, said: str
) -> None:
    from reconciler.gitrepo import is_ancestor, is_shallow

    known = said.format(recorded[:12])
    if commit is None:
        raise OutOfOrder(
            f"refusing to apply {model} to {environment}: it {known}, and this is not a git "
            "checkout to compare with; use --force to apply anyway"
        )
    ordered = is_ancestor(root, recorded, commit)
    if ordered is None:
        why = (
            "(a shallow checkout?). Fetch full history (git fetch --unshallow; "
            "actions/checkout with fetch-depth: 0), or use --force"
            if is_shallow(root)
            else "(a commit on a branch this clone lacks, or history rewritten since). "
            "Fetch it (git fetch origin) and apply a commit that descends from it, or use "
            "--force"
        )
        raise OutOfOrder(
            f"refusing to apply commit {commit[:12]} to {environment}: {model} {known}, which "
            f"is not in this clone {why}"
        )
    if not ordered:
        raise OutOfOrder(
            f"refusing to apply commit {commit[:12]} to {environment}: {model} {known}, which "
            f"is not an ancestor of {commit[:12]}. An older run finishing last would roll "
            f"{environment} back; use --force to apply anyway"
        )


def check_retirements(desired: DesiredState, plan: Plan, force: bool) -> None:
    """Prune safety: never empty an environment, never retire more than its limit, unforced."""
    if force:
        return
    by_env: dict[str, list[str]] = {}
    for retirement in plan.retirements:
        if retirement.enabled:
            by_env.setdefault(retirement.environment, []).append(retirement.model)
    for name, models in sorted(by_env.items()):
        listed = ", ".join(models)
        env = desired.environments.get(name)
        if env is None or not any(pin.environment == name for pin in desired.pins):
            raise RetireRefused(
                f"refusing to retire every model from {name} (it would have no pins left): "
                f"{listed}; use --force if that is intended"
            )
        if len(models) > env.max_retire:
            raise RetireRefused(
                f"refusing to retire {len(models)} models from {name}, more than its limit of "
                f"{env.max_retire} (max_retire): {listed}; use --force if that is intended"
            )


def check_expected(plan: Plan, expected: str | None) -> None:
    if expected is not None and plan.checksum != expected.strip().lower():
        raise PlanChanged(
            f"the plan is not the one reviewed (--expect-plan {expected[:12]}…, now "
            f"{plan.checksum[:12]}…): the pins or the registry changed since. Run `reconciler "
            "plan` again; nothing was changed"
        )
