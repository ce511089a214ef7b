"""Checks that refuse an apply before it writes: ordering by git ancestry (fencing), the
reviewed plan (--expect-plan), and prune safety."""

from __future__ import annotations

from pathlib import Path

from reconciler.apply.options import ApplyOptions
from reconciler.bookkeeping import applied_commit
from reconciler.errors import (
    OutOfOrder,
    PlanChanged,
    RetireRefused,
    UncommittedChanges,
)
from reconciler.plan import Plan
from reconciler.state import ActualState, DesiredState


def check_committed(root: Path, allow_dirty: bool) -> bool:
    """What is applied is exactly what is committed: refuse a work tree whose environments/
    differs from HEAD (or a repository with no commit), unless `allow_dirty`. Returns whether
    the apply is dirty (the audit records then say so instead of claiming HEAD)."""
    from reconciler.desired import ENVIRONMENTS_DIR, YAML_SUFFIXES
    from reconciler.gitrepo import uncommitted

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


def check_order(actual: ActualState, plan: Plan, root: Path, options: ApplyOptions) -> None:
    """Fencing by git ancestry: never let an older commit overwrite a newer one's apply (an old
    CI run that finishes last would roll production back)."""
    if options.force:
        return
    from reconciler.gitrepo import is_ancestor, is_shallow

    for environment, model in sorted({(s.environment, s.model) for s in plan.steps}):
        registered = actual.models.get(model)
        recorded = applied_commit(registered, environment)
        if not recorded or recorded == options.commit:
            continue
        if options.commit is None:
            raise OutOfOrder(
                f"refusing to apply {model} to {environment}: it was last applied there from "
                f"commit {recorded[:12]}, and this is not a git checkout to compare with; "
                "use --force to apply anyway"
            )
        ordered = is_ancestor(root, recorded, options.commit)
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
                f"refusing to apply commit {options.commit[:12]} to {environment}: {model} was "
                f"last applied there from commit {recorded[:12]}, which is not in this clone {why}"
            )
        if not ordered:
            raise OutOfOrder(
                f"refusing to apply commit {options.commit[:12]} to {environment}: {model} was "
                f"last applied there from commit {recorded[:12]}, which is not an ancestor of "
                f"{options.commit[:12]}. An older run finishing last would roll {environment} "
                "back; use --force to apply anyway"
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
