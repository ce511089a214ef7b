"""What the commands do, without the command line: validate, plan, apply."""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler.apply import executor, guards, recording
from reconciler.apply.executor import ApplyReport
from reconciler.apply.lease import Lease
from reconciler.apply.model_run import MAX_REPAIR_ROUNDS as MAX_LEASE_ROUNDS
from reconciler.apply.model_run import ModelRun, Planned
from reconciler.apply.options import ApplyOptions
from reconciler.apply.unlock import UnlockReport
from reconciler.apply.unlock import unlock as unlock_leases
from reconciler.errors import (
    ApplyFailed,
    InvalidInput,
    UsageError,
)
from reconciler.importing.files import ImportReport, write_pins
from reconciler.importing.from_registry import candidates, pins_from_registry
from reconciler.pins.defaults import read_workspace
from reconciler.pins.desired import ENVIRONMENTS_DIR, load_desired_state
from reconciler.pins.values import DesiredState
from reconciler.planning import evidence, policy
from reconciler.planning.figures import VersionMetrics
from reconciler.planning.review import Review, VersionFacts, figures, metric_rows, version_link
from reconciler.planning.scope import EVERYTHING, Scope
from reconciler.planning.status import StatusRow, status_rows
from reconciler.planning.steps import Plan
from reconciler.records.bookkeeping import Adoption, awaits_records
from reconciler.records.history import History
from reconciler.records.history import build as build_history
from reconciler.registry.base import Registry
from reconciler.registry.values import ActualState
from reconciler.registry.workspaces import SETTINGS, Workspace, owner_in
from reconciler.serving.verify import Outcome
from reconciler.serving.verify import targets as verify_targets


def validate(root: Path, paths: Sequence[Path] = ()) -> DesiredState:
    """Offline checks of pins and settings; raises InvalidInput with every problem."""
    return load_desired_state(root, paths)


def make_plan(
    root: Path,
    registry: Registry,
    scope: Scope = EVERYTHING,
    now: datetime | None = None,
    ui_base: str | None = None,
    with_reviews: bool = True,
) -> tuple[Plan, dict[tuple[str, str], Review]]:
    """Validate everything, read the registry once, diff the scope asked for, check policy; and
    for each change what a reviewer needs to judge it (run metrics of both versions, creator,
    links to the MLflow UI, the policy rules passed)."""
    from reconciler.gitrepo import check_pins_tracked, head_commit

    check_pins_tracked(root)
    desired = load_desired_state(root)
    scope.check_environments(desired)

    workspace = registry.use_workspace(desired.workspace)
    # The commit a plan shows in-sync pins recorded for (as the apply from it would).
    checkout = _checkout(root, workspace, head_commit(root))
    plan, actual = _plan(desired, registry, scope, checkout, now)
    scope.check_models(desired, plan)  # a model with no pin may be retiring
    if not with_reviews:
        return plan, {}
    return plan, _reviews(desired, plan, actual, registry, ui_base)


Rows = list[tuple[str, str | None]]  # (metric key, dataset) of a review's metric rows


def _reviews(
    desired: DesiredState,
    plan: Plan,
    actual: ActualState,
    registry: Registry,
    base: str | None,
) -> dict[tuple[str, str], Review]:
    changed = [e for e in plan.entries if e.steps and e.pin.version not in e.current]
    # Every version a review shows, its metrics read in one batch (logged models) or per run.
    metrics = evidence.read_metrics(
        registry,
        [
            found
            for entry in changed
            for number in (entry.pin.version, *entry.current)
            if (found := actual.models[entry.pin.model].versions.get(number)) is not None
        ],
    )

    def facts(model: str, number: str, rows: Rows, gated: Rows) -> VersionFacts:
        version = actual.models[model].versions.get(number)
        shown = figures(rows, metrics.get((model, number), VersionMetrics()), gated)
        return VersionFacts(
            version=number,
            metrics={name: figure.value for name, figure in shown.items()},
            created=version.created if version else None,
            creator=version.creator if version else None,
            link=version_link(base, model, number, plan.workspace.name),
            origins={name: figure.origin() for name, figure in shown.items()},
        )

    reviews = {}
    for entry in changed:
        pin = entry.pin
        env = desired.environments[pin.environment]
        rules = policy.rules(env.requires, env.gates) + policy.rules(None, pin.gates)
        bounds = [bound for gates in (env.gates, pin.gates) if gates for bound in gates.metrics]
        gated = [(bound.name, bound.dataset) for bound in bounds]
        rows = metric_rows(
            gated,
            [
                metrics.get((pin.model, number), VersionMetrics())
                for number in (pin.version, *entry.current)
            ],
        )
        reviews[(pin.environment, pin.model)] = Review(
            new=facts(pin.model, pin.version, rows, gated),
            old=tuple(facts(pin.model, v, rows, gated) for v in entry.current),
            policy=tuple(rules),
            gated_metrics=tuple(dict.fromkeys(bound.label for bound in bounds)),
        )
    return reviews


def apply(
    root: Path,
    registry: Registry,
    scope: Scope = EVERYTHING,
    options: ApplyOptions | None = None,
) -> ApplyReport:
    """Plan; if anything changes (or in-sync pins need their bookkeeping recorded): lease the
    models to write (which proves write permission and announces the records each will get),
    plan again under the lease, then write model by model; as each model's steps land, verify
    and repair it and write its audit records, which complete the announced records and release
    its lease (any other outcome: one bookkeeping write of what landed). A plan with any problem
    writes nothing."""
    from reconciler.gitrepo import check_pins_tracked

    check_pins_tracked(root)
    options = options or ApplyOptions()
    options = replace(options, dirty=guards.check_committed(root, options.allow_dirty))
    desired = load_desired_state(root)
    scope = replace(scope, prune=scope.prune or options.prune)
    scope.check_environments(desired)
    workspace = _workspace_to_write(registry, desired)
    options = replace(options, workspace=workspace.name)
    checkout = _checkout(root, workspace, options.commit)
    owner = checkout.owner

    def plan_now(
        actual: ActualState | None = None, lease: Lease | None = None
    ) -> tuple[Plan, ActualState, tuple[Adoption, ...]]:
        plan, actual = _plan(
            desired,
            registry,
            scope,
            checkout,
            options.clock(),
            actual,
            options.take_ownership,
            lease.token if lease is not None else None,
        )
        guards.check_expected(plan, options.expect_checksum)
        return plan, actual, plan.adoptions

    def check(plan: Plan, actual: ActualState) -> None:
        guards.check_readable(actual, plan)
        guards.check_retirements(desired, plan, options.force)
        guards.check_ownership(actual, plan, owner, options.take_ownership, root)
        guards.check_order(actual, plan, root, options, owner)

    plan, actual, adoptions = plan_now()
    scope.check_models(desired, plan)  # a model with no pin may be retiring
    if not plan.has_changes and not adoptions:
        guards.check_readable(actual, plan)
        return ApplyReport(plan, ())
    check(plan, actual)
    lease = Lease(
        registry,
        options.holder,
        options.commit,
        ttl=options.lease_ttl,
        wait=options.lease_wait,
        settle=options.lease_settle,
        on_wait=options.on_event,
        parallelism=options.parallelism,
    )
    with lease:
        wanted = _writes_to(plan, adoptions)
        for _attempt in range(MAX_LEASE_ROUNDS):
            # The registry may have moved while we waited: what is written is planned under the
            # lease, from the read that confirmed it.
            announced = recording.intents(plan, actual, adoptions, options, owner)
            plan, actual, adoptions = plan_now(
                lease.acquire(
                    wanted,
                    read={pin.model for pin in desired.pins},
                    intents=announced,
                    moves=recording.moves(plan, adoptions),
                ),
                lease,
            )
            if _writes_to(plan, adoptions) <= wanted:
                break
            wanted |= _writes_to(plan, adoptions)  # more to write than leased: lease those too
            lease.release()
        else:
            raise ApplyFailed("the registry kept changing while the lease was taken; run again")
        # A refusal here gives every lease back with the fences as they were found: nothing
        # was sent (Lease.release).
        check(plan, actual)
        # Usually what was announced; else one more write per model whose records differ.
        lease.announce(
            recording.intents(plan, actual, adoptions, options, owner),
            recording.moves(plan, adoptions),
        )
        planned = Planned(desired, plan, actual, adoptions, scope, owner)
        run = ModelRun(planned, registry, lease, options)
        results = executor.apply(
            plan,
            registry,
            before_each_write=lease.renew_if_needed,
            on_result=options.on_result,
            after_model=run.after_model,
            parallelism=options.parallelism,
            stop=options.interrupt.event if options.interrupt else None,
            also={a.model for a in adoptions},
            on_send=lease.sending,
        )
        if run.error is not None:
            raise run.error
    interrupted = options.interrupt.signal if options.interrupt else None
    return ApplyReport(
        plan,
        results,
        tuple(sorted(run.repairs, key=lambda r: r.step.order_key)),
        tuple(run.bookkeeping_errors),
        tuple(a for a in adoptions if (a.environment, a.model) in run.recorded),
        interrupted,
    )


def _writes_to(plan: Plan, adoptions: Sequence[Adoption]) -> set[str]:
    return {step.model for step in plan.steps} | {a.model for a in adoptions}


def _workspace_to_write(registry: Registry, desired: DesiredState) -> Workspace:
    """An apply writes only where the repository itself says: on a registry with workspaces,
    the repository's `workspace:` setting (MLFLOW_WORKSPACE may only agree with it). A CI job
    with the variable missing or pointing at another team's workspace is refused before any
    read, never applied to the server's default or to that team's same-named models."""
    workspace = registry.use_workspace(desired.workspace)
    if workspace.name is not None and workspace.chosen_by != SETTINGS:
        how = (
            f"MLFLOW_WORKSPACE is {workspace.name!r}, but this repository does not say which "
            "one it manages"
            if workspace.chosen_by
            else "none is chosen"
        )
        raise UsageError(
            f"the registry has workspaces and {how}: set `workspace: <name>` in "
            f"{ENVIRONMENTS_DIR}/_defaults.yaml (nothing was changed)"
        )
    return workspace


@dataclass(frozen=True)
class _Checkout:
    """The repository a command runs in: its root, its identity (the owner it records, with
    the workspace), the workspace, and the commit an apply records (None for a plan: no in-sync
    pin is recorded then)."""

    root: Path
    owner: str
    workspace: Workspace
    commit: str | None


def _checkout(root: Path, workspace: Workspace, commit: str | None = None) -> _Checkout:
    from reconciler.gitrepo import repository_id

    return _Checkout(root, owner_in(repository_id(root), workspace), workspace, commit)


def _plan(
    desired: DesiredState,
    registry: Registry,
    scope: Scope,
    checkout: _Checkout,
    now: datetime | None = None,
    actual: ActualState | None = None,  # a read already made (the lease's confirming read)
    take_ownership: bool = False,  # in-sync pins another repository owns are adopted too
    own_apply: str | None = None,  # the lease this apply holds (its announcement is no leftover)
) -> tuple[Plan, ActualState]:
    owner = checkout.owner  # this repository: prune retires only what it owns
    if actual is None:
        actual = _read(registry, {pin.model for pin in desired.pins}, owner)
    plan = scope.diff(desired, actual, owner)
    # Every problem in one run: pins the registry cannot satisfy and policy failures of the rest
    # (entries in error have no steps, so policy skips them).
    problems = [*plan.problems, *evidence.policy_problems(desired, plan, actual, registry, now)]
    if problems:
        raise InvalidInput(problems)
    # In-sync pins with stale bookkeeping are recorded for the commit applied.
    adoptions = recording.find_adoptions(
        plan, actual, checkout.root, checkout.commit, owner, take_ownership, own_apply
    )
    return replace(plan, adoptions=adoptions, workspace=checkout.workspace), actual


def _read(registry: Registry, pinned: set[str], owner: str) -> ActualState:
    """All versions of the pinned models, and of any other whose lease announced records of
    this repository that its audit records may have completed (a pin removed right after its
    apply: prune needs that ownership). Other teams' models are never read in full."""
    actual = registry.read(pinned)
    finished = {
        name
        for name, model in actual.models.items()
        if name not in pinned and awaits_records(model.tags, owner)
    }
    return registry.read(pinned | finished) if finished else actual


def history(
    root: Path,
    registry: Registry,
    model: str,
    environments: Sequence[str] = (),
    at: datetime | None = None,
) -> History:
    """Every change to `model`'s pins in git, marked applied when the registry's audit records
    name its commit."""
    from reconciler.gitrepo import check_pins_tracked, lineage, pin_history

    check_pins_tracked(root)
    changes = pin_history(root, model)
    if not changes:
        raise UsageError(f"no git history of pins for model {model!r} under environments/")
    registry.use_workspace(read_workspace(root))
    registered = registry.read_model(model)
    with lineage(root) as git_lineage:
        return build_history(model, changes, registered, environments, at, git_lineage)


def status(root: Path, registry: Registry, scope: Scope = EVERYTHING) -> list[StatusRow]:
    """Environment by model: what is pinned, what the registry has, in sync or not, and the
    commit last applied there. Pins the registry cannot satisfy show as not in sync."""
    desired = load_desired_state(root)
    scope.check(desired)
    workspace = registry.use_workspace(desired.workspace)
    actual = registry.read({pin.model for pin in desired.pins})
    plan = replace(replace(scope, prune=False).diff(desired, actual), workspace=workspace)
    # A pin naming a prompt is refused, not shown as a model with nothing in its stage.
    refused = [e.problem for e in plan.entries if e.problem and e.pin.model in actual.prompts]
    if refused:
        raise InvalidInput(refused)
    return status_rows(plan, actual)


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
    from reconciler.pins.values import DEFAULT_ENVIRONMENTS
    from reconciler.redact import redact_uri, scrub

    if (root / ENVIRONMENTS_DIR).exists():
        desired = load_desired_state(root)  # a broken repository is fixed first, not added to
    else:
        desired = DesiredState({}, ())
    workspace = registry.use_workspace(desired.workspace)
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
    # Prompts are never pinned, but one holding an environment's alias is reported as skipped
    # (model searches leave prompts out: one more request).
    actual = replace(actual, prompts=registry.read_prompts())
    found = pins_from_registry(actual, chosen, set(models) if models else None)
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    uri = scrub(redact_uri(registry_uri))
    where = f" (workspace {workspace.describe()})" if workspace.name is not None else ""
    existing = {(pin.environment, pin.model): pin for pin in desired.pins}
    files = write_pins(
        root,
        found.pins,
        existing,
        overwrite,
        [f"imported from {uri}{where} at {when} by reconciler import"],
    )
    return ImportReport(uri, tuple(files), found.skipped, workspace.name)


def verify(
    root: Path,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
    timeout: float | None = None,
    only: Collection[tuple[str, str]] | None = None,
    environ: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """Poll every endpoint in scope until it serves its pin or its timeout (or `timeout`, in
    seconds, for all) passes, or `stop` is set (then the outcomes say what each endpoint
    answered until then). Offline from the registry: reads pins and `serving:` only. Every
    `${VAR}` is checked before the first poll."""
    from reconciler.pins.endpoints import resolve
    from reconciler.serving import poller

    desired = load_desired_state(root)
    Scope.of(environments, models).check(desired)
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
    return poller.poll_all(jobs, stop)


def unlock(
    root: Path, registry: Registry, models: Collection[str] = (), force: bool = False
) -> UnlockReport:
    """Remove the leases of applies that died, in the repository's workspace. Needs only the
    repository's defaults (a broken pin never blocks an unlock)."""
    registry.use_workspace(read_workspace(root))
    return unlock_leases(registry, models, force)


def applied_pins(report: ApplyReport) -> set[tuple[str, str]]:
    """(environment, model) of every pin the apply wrote to, for `apply --verify`."""
    return {
        (result.step.environment, result.step.model)
        for result in (*report.results, *report.repairs)
        if result.outcome == "applied"
    }
