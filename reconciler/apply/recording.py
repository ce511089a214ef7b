"""What apply records in the registry besides stages and aliases, model by model: the audit records
on the versions it put in place, and the model's bookkeeping (applied commit, ownership, plan), so
that bookkeeping never waits for the end of the apply (a SIGKILL between models leaves the fence
true for every model written). Also which in-sync pins need their bookkeeping recorded (adoption).
Pure apart from the one git question `find_adoptions` asks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.apply.executor import StepResult
from reconciler.apply.options import ApplyOptions
from reconciler.planning.steps import Plan
from reconciler.records import audit
from reconciler.records.bookkeeping import (
    Adoption,
    EnvRecord,
    Move,
    audit_tag,
    interrupted_moves,
    state_of,
)
from reconciler.registry.values import ActualState


@dataclass(frozen=True)
class Writes:
    """The bookkeeping writes of one model: audit tags (model, version, key, value), then the
    model's state-tag updates (announced by its lease, or written with the lease release)."""

    audits: tuple[tuple[str, str, str, str], ...]
    updates: Mapping[str, EnvRecord]
    audited: frozenset[str] = frozenset()  # the environments the audit records are for

    @property
    def released_by_audits(self) -> bool:
        """Whether the audit records can stand for the updates (every updated environment has
        one), so that a lease announcing the updates needs no release write."""
        return bool(self.updates) and set(self.updates) <= self.audited


def intents(
    plan: Plan,
    actual: ActualState,
    adoptions: Sequence[Adoption],
    options: ApplyOptions,
    owner: str,
) -> dict[str, Mapping[str, EnvRecord]]:
    """For the lease to announce: per model the records it gets if every step lands (its audit
    records stand for them where `released_by_audits`; else the release write records them).
    Announced, a commit fences even if the apply dies before recording it (`attempted`)."""
    found: dict[str, Mapping[str, EnvRecord]] = {}
    models = {step.model for step in plan.steps} | {a.model for a in adoptions}
    for model in sorted(models):
        landed = [StepResult(step, "applied") for step in plan.steps if step.model == model]
        mine = [a for a in adoptions if a.model == model]
        writes = model_writes(model, plan, actual, landed, mine, options, owner)
        if writes.updates:
            found[model] = writes.updates
    return found


def moves(plan: Plan, adoptions: Sequence[Adoption] = ()) -> dict[str, dict[str, Move]]:
    """For the lease to announce beside the records: per model and environment, the version its
    steps put in place and the versions serving before. If the apply dies before its audit
    record, the next one records that move as the promotion it was."""
    found: dict[str, dict[str, Move]] = {}
    for entry in plan.entries:
        if entry.steps and entry.onward_to is None:
            found.setdefault(entry.pin.model, {})[entry.pin.environment] = Move(
                entry.pin.version, entry.current
            )
    for adoption in adoptions:
        if adoption.previous is not None:  # recording an interrupted move: announce it again
            found.setdefault(adoption.model, {})[adoption.environment] = Move(
                adoption.version, adoption.previous
            )
    return found


def find_adoptions(
    plan: Plan,
    actual: ActualState,
    root: Path,
    commit: str | None,
    owner: str,
    take_ownership: bool = False,
    own_apply: str | None = None,
) -> tuple[Adoption, ...]:
    """In-sync pins whose bookkeeping is missing, or stale: the recorded commit is an ancestor of
    this one and the pin file changed between the two (an interrupted run, a hand promotion that
    matches a new pin). A recorded commit whose pin is unchanged still describes the model, so a
    new commit that does not touch a model never rewrites its tag. A version an apply put there
    and was killed before recording (its lease announced the move; not `own_apply`, the lease of
    the apply asking) is recorded as the promotion it was. Another repository's model is adopted
    only when `take_ownership`."""
    from reconciler.gitrepo import changed_paths, is_ancestor

    changed: dict[str, set[str] | None] = {}
    found = []
    for entry in plan.entries:
        if entry.status != "in_sync":
            continue  # promoted onward: the version serves higher up, its record is there
        pin = entry.pin
        registered = actual.models[pin.model]
        state = state_of(registered)
        if state.unreadable is not None:
            continue  # apply refuses the model; plan says why
        record = state.environments.get(pin.environment) or EnvRecord()
        taking = None
        if record.owner is not None and record.owner != owner:
            if not take_ownership:
                continue  # another repository manages it there: not ours to take
            taking = record
        reason = None
        if record.owner is None:
            reason = "nothing recorded" if record.commit is None else "no ownership recorded"
        if commit is not None and record.commit != commit:
            if record.commit is None:
                reason = reason or "no applied commit recorded"
            elif is_ancestor(root, record.commit, commit):
                if record.commit not in changed:
                    changed[record.commit] = changed_paths(root, record.commit, commit)
                paths = changed[record.commit]
                if paths is None or pin.file in paths:
                    reason = f"the pin changed since the recorded commit {record.commit[:12]}"
        interrupted, move = interrupted_moves(registered, own_apply).get(
            pin.environment, (None, None)
        )
        recovered = move is not None and interrupted is not None and move.version == pin.version
        if recovered and interrupted is not None:
            reason = (
                f"moved there by an apply of commit {interrupted[:12]} whose records never "
                "completed"
            )
        elif taking is not None:
            reason = reason or "in sync, owned by another repository"
        if reason is None:
            continue
        version = registered.versions[pin.version]
        # Records of an earlier time this version served here do not cover this commit (an
        # apply killed between its transition and its records): audit it unless one names it.
        audited = audit.parse(version.tags.get(audit_tag(pin.environment)))
        covered = commit is not None and any(r.commit == commit for r in audited)
        found.append(
            Adoption(
                pin.environment,
                pin.model,
                pin.version,
                reason,
                recovered or taking is not None or not audited or not covered,
                previous=move.previous if recovered and move is not None else None,
                took_over_from=taking,
            )
        )
    return tuple(found)


def model_writes(
    model: str,
    plan: Plan,
    actual: ActualState,
    results: Sequence[StepResult],
    adoptions: Sequence[Adoption],
    options: ApplyOptions,
    owner: str,
    apply: str | None = None,
) -> Writes:
    """What to record for `model` once its steps are done: for each environment whose steps all
    landed, the commit, ownership (none after a retirement) and plan; one audit record per pin
    fully applied, per version retired, and per adopted version without one (naming `apply`,
    the lease that announced them)."""
    outcome = {id(r.step): r.outcome for r in results}
    time = options.clock().isoformat(timespec="seconds")
    registered = actual.models.get(model)
    existing = state_of(registered).environments
    audits: list[tuple[str, str, str, str]] = []
    audited: set[str] = set()

    def taken_from(environment: str) -> EnvRecord | None:
        """The other repository this apply takes `environment` over from (--take-ownership)."""
        before = existing.get(environment)
        return before if before is not None and before.owner not in (None, owner) else None

    def add_audit(environment: str, version: str, action: str, previous: tuple[str, ...]) -> None:
        assert registered is not None
        key = audit_tag(environment)
        taken = taken_from(environment)
        record = audit.AuditRecord(
            environment=environment,
            action=action,
            time=time,
            commit=options.commit,
            previous=previous,
            actor=options.actor,
            pull_request=options.pull_request,
            dirty=options.dirty,
            apply=apply,
            workspace=options.workspace,
            took_over_from=taken.owner if taken is not None else None,
            took_over_from_name=taken.owner_name if taken is not None else None,
        )
        tags = registered.versions[version].tags
        audits.append((model, version, key, audit.append(tags.get(key), record)))
        audited.add(environment)

    for entry in plan.entries:
        if entry.pin.model != model or not entry.steps:
            continue
        if entry.onward_to is not None:
            # The steps only cleared this stage for a version whose home is higher up: it did
            # not arrive here, so no record may say so (`requires` and soak read these).
            continue
        if all(outcome.get(id(s)) == "applied" for s in entry.steps):
            pin = entry.pin
            add_audit(
                pin.environment,
                pin.version,
                audit.action_for(pin.version, entry.current),
                entry.current,
            )
    retired = set()
    for retirement in plan.retirements:
        if retirement.model != model or not retirement.enabled:
            continue
        retired.add(retirement.environment)
        for step in retirement.steps:
            if step.kind == "retire" and outcome.get(id(step)) == "applied":
                add_audit(step.environment, step.version, "retire", (step.version,))

    def kept_commit(environment: str) -> str | None:
        before = existing.get(environment)
        return options.commit if options.commit is not None else (before.commit if before else None)

    updates: dict[str, EnvRecord] = {}
    for environment in sorted({s.environment for s in plan.steps if s.model == model}):
        outcomes = [
            r.outcome for r in results if (r.step.environment, r.step.model) == (environment, model)
        ]
        if outcomes and all(o == "applied" for o in outcomes):
            updates[environment] = EnvRecord(
                commit=kept_commit(environment),
                owner=None if environment in retired else owner,
                plan=plan.checksum,
                owner_name=None if environment in retired else options.repository_name,
            )
    for adoption in adoptions:
        if adoption.model != model:
            continue
        before = existing.get(adoption.environment) or EnvRecord()
        updates[adoption.environment] = EnvRecord(
            commit=kept_commit(adoption.environment),
            owner=owner,
            plan=before.plan,
            owner_name=options.repository_name,
        )
        if adoption.audit:
            add_audit(
                adoption.environment, adoption.version, adoption.action, adoption.previous or ()
            )
    return Writes(tuple(audits), updates, frozenset(audited))
