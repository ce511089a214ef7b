"""What the commands do, without the command line: validate, plan, apply."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler import evidence, executor, guards, policy, records
from reconciler.desired import load_desired_state
from reconciler.errors import (
    ApplyFailed,
    InvalidInput,
    ReconcilerError,
    UsageError,
)
from reconciler.executor import ApplyReport, StepResult
from reconciler.history import History
from reconciler.history import build as build_history
from reconciler.import_files import ImportReport, write_pins
from reconciler.importing import candidates, pins_from_registry
from reconciler.lease import Lease
from reconciler.options import ApplyOptions
from reconciler.plan import Plan, diff
from reconciler.registry.base import Registry
from reconciler.review import Review, VersionFacts, version_link
from reconciler.state import ActualState, DesiredState
from reconciler.status import StatusRow, status_rows
from reconciler.verify import Outcome
from reconciler.verify import targets as verify_targets

MAX_REPAIR_ROUNDS = 3


def validate(root: Path, paths: Sequence[Path] = ()) -> DesiredState:
    """Offline checks of pins and settings; raises InvalidInput with every problem."""
    return load_desired_state(root, paths)


def make_plan(
    root: Path,
    registry: Registry,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
    now: datetime | None = None,
    prune: bool = False,
    ui_base: str | None = None,
    with_reviews: bool = True,
) -> tuple[Plan, dict[tuple[str, str], Review]]:
    """Validate everything, read the registry once, diff the scope asked for, check policy; and
    for each change what a reviewer needs to judge it (run metrics of both versions, creator,
    links to the MLflow UI, the policy rules passed)."""
    desired = load_desired_state(root)
    _check_filters(desired, environments, models)
    plan, actual = _plan(desired, registry, environments, models, root, now, prune, _owner(root))
    if not with_reviews:
        return plan, {}
    return plan, _reviews(desired, plan, actual, registry, ui_base)


def _reviews(
    desired: DesiredState,
    plan: Plan,
    actual: ActualState,
    registry: Registry,
    base: str | None,
) -> dict[tuple[str, str], Review]:
    metrics_of: dict[str | None, Mapping[str, float]] = {None: {}}

    def facts(model: str, number: str) -> VersionFacts:
        version = actual.models[model].versions.get(number)
        run_id = version.run_id if version else None
        if run_id not in metrics_of:
            metrics_of[run_id] = registry.run_metrics(run_id or "") or {}
        return VersionFacts(
            version=number,
            metrics=metrics_of[run_id],
            created=version.created if version else None,
            creator=version.creator if version else None,
            link=version_link(base, model, number),
        )

    reviews = {}
    for entry in plan.entries:
        if not entry.steps or entry.pin.version in entry.current:
            continue
        pin = entry.pin
        env = desired.environments[pin.environment]
        rules = policy.rules(env.requires, env.gates) + policy.rules(None, pin.gates)
        reviews[(pin.environment, pin.model)] = Review(
            new=facts(pin.model, pin.version),
            old=tuple(facts(pin.model, v) for v in entry.current),
            policy=tuple(rules),
            gated_metrics=tuple(
                bound.name for gates in (env.gates, pin.gates) if gates for bound in gates.metrics
            ),
        )
    return reviews


def apply(
    root: Path,
    registry: Registry,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
    options: ApplyOptions | None = None,
) -> ApplyReport:
    """Plan; if anything changes: check write permission, take the lease, plan again under it,
    write, then verify and repair. A plan with any problem writes nothing."""
    options = options or ApplyOptions()
    options = replace(options, dirty=guards.check_committed(root, options.allow_dirty))
    desired = load_desired_state(root)
    owner = _owner(root)
    _check_filters(desired, environments, models)
    plan, actual = _plan(
        desired, registry, environments, models, root, options.clock(), options.prune, owner
    )
    guards.check_expected(plan, options.expect_checksum)
    if not plan.has_changes:
        return ApplyReport(plan, ())
    guards.check_retirements(desired, plan, options.force)
    guards.check_order(actual, plan, root, options)
    records.check_write_permission(registry, plan, options.holder)
    lease = Lease(
        registry,
        options.holder,
        options.commit,
        ttl=options.lease_ttl,
        wait=options.lease_wait,
        settle=options.lease_settle,
        on_wait=options.on_event,
    )
    with lease:
        # The registry may have moved while we waited: what is written is planned under the lease.
        plan, actual = _plan(
            desired, registry, environments, models, root, options.clock(), options.prune, owner
        )
        guards.check_expected(plan, options.expect_checksum)
        guards.check_retirements(desired, plan, options.force)
        guards.check_order(actual, plan, root, options)
        results = executor.apply(plan, registry, before_each_write=lease.renew_if_needed)
        repairs: tuple[StepResult, ...] = ()
        conflicted = {r.step.model for r in results if r.outcome == "conflicted"}
        clean = all(r.outcome in ("applied", "conflicted", "not_attempted") for r in results)
        if clean and plan.has_changes:
            # A model someone else moved under us is theirs until the next run re-plans it.
            repairs = _verify_and_repair(
                desired, registry, plan, environments, lease, conflicted, options.prune, owner
            )
        bookkeeping: list[str] = []
        try:
            records.record_ownership(
                registry, plan, actual, (*results, *repairs), options.commit, owner
            )
            records.record_audit(registry, plan, actual, results, options)
        except ReconcilerError as error:
            # The changes are made: report them, and say what could not be recorded.
            bookkeeping.append(str(error))
    return ApplyReport(plan, results, repairs, tuple(bookkeeping))


def _owner(root: Path) -> str:
    from reconciler.gitrepo import repository_id

    return repository_id(root)


def _verify_and_repair(
    desired: DesiredState,
    registry: Registry,
    plan: Plan,
    environments: Sequence[str],
    lease: Lease,
    skip: set[str],
    prune: bool,
    owner: str,
) -> tuple[StepResult, ...]:
    """Re-read what the plan touched; fix what another writer or a lost race left behind
    (a second version in a stage, an alias moved away)."""
    touched = sorted({step.model for step in plan.steps} - skip)
    if not touched:
        return ()
    repairs: list[StepResult] = []
    for _round in range(MAX_REPAIR_ROUNDS):
        again = diff(desired, registry.read(touched), environments or None, touched, prune, owner)
        if again.problems:
            raise InvalidInput(again.problems)
        if not again.has_changes:
            return tuple(repairs)
        results = executor.apply(again, registry, before_each_write=lease.renew_if_needed)
        repairs.extend(results)
        if any(r.outcome != "applied" for r in results):
            return tuple(repairs)
    raise ApplyFailed(
        f"the registry still differs from the pins after {MAX_REPAIR_ROUNDS} repair rounds: "
        f"something else keeps changing {', '.join(touched)}"
    )


def _plan(
    desired: DesiredState,
    registry: Registry,
    environments: Sequence[str],
    models: Sequence[str],
    root: Path,
    now: datetime | None = None,
    prune: bool = False,
    owner: str | None = None,  # this repository (prune retires only what it owns)
) -> tuple[Plan, ActualState]:
    actual = registry.read({pin.model for pin in desired.pins})
    plan = diff(desired, actual, environments or None, models or None, prune, owner)
    # Every problem in one run: pins the registry cannot satisfy and policy failures of the rest
    # (entries in error have no steps, so policy skips them).
    problems = [*plan.problems, *evidence.policy_problems(desired, plan, actual, registry, now)]
    if problems:
        raise InvalidInput(problems)
    return plan, actual


def _check_filters(
    desired: DesiredState, environments: Sequence[str], models: Sequence[str]
) -> None:
    unknown_envs = sorted(set(environments) - set(desired.environments))
    if unknown_envs:
        known = ", ".join(sorted(desired.environments)) or "none"
        raise UsageError(f"--env {unknown_envs[0]!r}: no such environment (have: {known})")
    pinned = {pin.model for pin in desired.pins}
    unknown_models = sorted(set(models) - pinned)
    if unknown_models:
        raise UsageError(f"--model {unknown_models[0]!r}: no pin names this model")


def history(
    root: Path,
    registry: Registry,
    model: str,
    environments: Sequence[str] = (),
    at: datetime | None = None,
) -> History:
    """Every change to `model`'s pins in git, marked applied when the registry's audit records
    name its commit."""
    from reconciler.gitrepo import lineage, pin_history

    changes = pin_history(root, model)
    if not changes:
        raise UsageError(f"no git history of pins for model {model!r} under environments/")
    registered = registry.read_model(model)
    with lineage(root) as git_lineage:
        return build_history(model, changes, registered, environments, at, git_lineage)


def status(
    root: Path,
    registry: Registry,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
) -> list[StatusRow]:
    """Environment by model: what is pinned, what the registry has, in sync or not, and the
    commit last applied there. Pins the registry cannot satisfy show as not in sync."""
    desired = load_desired_state(root)
    _check_filters(desired, environments, models)
    actual = registry.read({pin.model for pin in desired.pins})
    return status_rows(diff(desired, actual, environments or None, models or None), actual)


def import_pins(
    root: Path,
    registry: Registry,
    registry_uri: str,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
    overwrite: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Write a pin for every model the registry serves in each environment (its stage, or its
    alias for alias-only environments): the existing environments plus staging and production.
    Reads the registry the cheap way `plan` does; writes only files."""
    from reconciler.desired import DEFAULT_ENVIRONMENTS, ENVIRONMENTS_DIR
    from reconciler.redact import redact_uri, scrub

    if (root / ENVIRONMENTS_DIR).exists():
        desired = load_desired_state(root)  # a broken repository is fixed first, not added to
    else:
        desired = DesiredState({}, ())
    # staging and production by default, unless another environment already holds their stage
    # (a `qa` on Staging): two pins for one stage would fail validation.
    taken = {env.stage for env in desired.environments.values()}
    defaults = {
        name: env
        for name, env in DEFAULT_ENVIRONMENTS.items()
        if name in desired.environments or env.stage not in taken
    }
    known = {**defaults, **desired.environments}
    unknown = sorted(set(environments) - set(known))
    if unknown:
        raise UsageError(
            f"--env {unknown[0]!r}: no such environment (have: {', '.join(sorted(known))}); "
            f"another environment needs its settings file {ENVIRONMENTS_DIR}/{unknown[0]}.yaml"
        )
    chosen = [env for name, env in known.items() if not environments or name in environments]
    # Two reads, no per-model loop: every model (latest version per stage), then all versions of
    # the models holding a stage or alias in scope (a doubled stage needs them all).
    overview = registry.read(())
    wanted = candidates(overview, chosen)
    if models:
        wanted &= set(models)
    actual = registry.read(wanted) if wanted else overview
    found = pins_from_registry(actual, chosen, set(models) if models else None)
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    uri = scrub(redact_uri(registry_uri))
    existing = {(pin.environment, pin.model): pin for pin in desired.pins}
    files = write_pins(
        root,
        found.pins,
        existing,
        overwrite,
        [f"imported from {uri} at {when} by reconciler import"],
    )
    return ImportReport(uri, tuple(files), found.skipped)


def verify(
    root: Path,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
    timeout: float | None = None,
    only: Collection[tuple[str, str]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Outcome]:
    """Poll every endpoint in scope until it serves its pin or its timeout (or `timeout`, in
    seconds, for all) passes. Offline from the registry: reads pins and `serving:` only. Every
    `${VAR}` is checked before the first poll."""
    from reconciler import poller
    from reconciler.endpoints import resolve

    desired = load_desired_state(root)
    _check_filters(desired, environments, models)
    environ = os.environ if environ is None else environ
    jobs = [
        poller.Job(
            target,
            resolve(target.endpoint, target.model, target.environment, environ, target.source),
            target.endpoint.timeout_seconds if timeout is None else timeout,
            target.endpoint.interval_seconds,
        )
        for target in verify_targets(desired, environments, models, only)
    ]
    return poller.poll_all(jobs)


def applied_pins(report: ApplyReport) -> set[tuple[str, str]]:
    """(environment, model) of every pin the apply wrote to, for `apply --verify`."""
    return {
        (result.step.environment, result.step.model)
        for result in (*report.results, *report.repairs)
        if result.outcome == "applied"
    }
