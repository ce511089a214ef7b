"""What the commands do, without the command line: validate, plan, apply."""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from reconciler import audit, executor, policy
from reconciler.bookkeeping import PLAN_TAG, applied_commit_tag, audit_tag, managed_tag
from reconciler.desired import load_desired_state
from reconciler.errors import (
    ApplyFailed,
    InvalidInput,
    OutOfOrder,
    PlanChanged,
    Problem,
    ReconcilerError,
    RegistryPermissionDenied,
    RetireRefused,
    UsageError,
)
from reconciler.executor import ApplyReport, StepResult
from reconciler.gitrepo import PinChange
from reconciler.history import History
from reconciler.history import build as build_history
from reconciler.lease import DEFAULT_SETTLE, DEFAULT_TTL, DEFAULT_WAIT, Lease
from reconciler.plan import Plan, diff
from reconciler.registry.base import Registry
from reconciler.review import Review, VersionFacts, version_link
from reconciler.state import STAGING, ActualState, DesiredState, Environment, ModelVersion, Pin
from reconciler.status import StatusRow, status_rows

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
) -> Plan:
    """Validate everything, read the registry once, diff the scope asked for, check policy."""
    return make_reviewed_plan(root, registry, environments, models, now, prune, None)[0]


def make_reviewed_plan(
    root: Path,
    registry: Registry,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
    now: datetime | None = None,
    prune: bool = False,
    ui_base: str | None = None,
    with_reviews: bool = True,
) -> tuple[Plan, dict[tuple[str, str], Review]]:
    """The plan, and for each change what a reviewer needs to judge it (run metrics of both
    versions, creator, links to the MLflow UI, the policy rules passed)."""
    desired = load_desired_state(root)
    _check_filters(desired, environments, models)
    plan, actual = _plan(desired, registry, environments, models, root, now, prune)
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


@dataclass
class ApplyOptions:
    lease_wait: float = DEFAULT_WAIT
    lease_ttl: float = DEFAULT_TTL
    lease_settle: float = DEFAULT_SETTLE
    holder: str = field(default_factory=lambda: default_holder())
    commit: str | None = None
    expect_checksum: str | None = None  # `apply --expect-plan`: only the reviewed plan
    prune: bool = False  # `apply --prune`: retire models whose pins were removed
    force: bool = False  # `apply --force`: skip the ordering and prune safety checks
    pull_request: str | None = None  # for the audit records, from the merge commit's message
    actor: str = field(default_factory=lambda: default_actor())
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    on_event: Callable[[str], None] = lambda _message: None


def default_actor() -> str:
    """Who is applying: the CI's actor (GitHub Actions) or the local login."""
    return os.environ.get("GITHUB_ACTOR") or _login()


def default_holder() -> str:
    """Who is applying, as the lease and the plan tag show it: actor@host pid N (unique id)."""
    return f"{default_actor()}@{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:8]})"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


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
    desired = load_desired_state(root)
    owner = _owner(root)
    _check_filters(desired, environments, models)
    plan, actual = _plan(
        desired, registry, environments, models, root, options.clock(), options.prune
    )
    _check_expected(plan, options.expect_checksum)
    if not plan.has_changes:
        return ApplyReport(plan, ())
    _check_retirements(desired, plan, options.force)
    _check_order(actual, plan, root, options)
    _check_write_permission(registry, plan, options.holder)
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
            desired, registry, environments, models, root, options.clock(), options.prune
        )
        _check_expected(plan, options.expect_checksum)
        _check_retirements(desired, plan, options.force)
        _check_order(actual, plan, root, options)
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
            _record_ownership(registry, plan, actual, (*results, *repairs), options.commit, owner)
            _record_audit(registry, plan, actual, results, options)
        except ReconcilerError as error:
            # The changes are made: report them, and say what could not be recorded.
            bookkeeping.append(str(error))
    return ApplyReport(plan, results, repairs, tuple(bookkeeping))


def _record_audit(
    registry: Registry,
    plan: Plan,
    actual: ActualState,
    results: Sequence[StepResult],
    options: ApplyOptions,
) -> None:
    """One audit record per pin whose changes all landed, on the version now serving there."""
    outcome = {id(r.step): r.outcome for r in results}
    time = options.clock().isoformat(timespec="seconds")
    for entry in plan.entries:
        if not entry.steps or any(outcome.get(id(s)) != "applied" for s in entry.steps):
            continue
        pin = entry.pin
        version = actual.models[pin.model].versions[pin.version]
        record = audit.AuditRecord(
            environment=pin.environment,
            action=audit.action_for(pin.version, entry.current),
            time=time,
            commit=options.commit,
            previous=entry.current,
            actor=options.actor,
            pull_request=options.pull_request,
        )
        key = audit_tag(pin.environment)
        registry.set_version_tag(
            pin.model, pin.version, key, audit.append(version.tags.get(key), record)
        )
    for retirement in plan.retirements:
        steps = [s for s in retirement.steps if s.kind == "retire"]
        if not retirement.enabled or any(outcome.get(id(s)) != "applied" for s in steps):
            continue
        for step in steps:
            tags = actual.models[step.model].versions[step.version].tags
            key = audit_tag(step.environment)
            record = audit.AuditRecord(
                environment=step.environment,
                action="retire",
                time=time,
                commit=options.commit,
                previous=(step.version,),
                actor=options.actor,
                pull_request=options.pull_request,
            )
            registry.set_version_tag(
                step.model, step.version, key, audit.append(tags.get(key), record)
            )


def _check_order(actual: ActualState, plan: Plan, root: Path, options: ApplyOptions) -> None:
    """Fencing by git ancestry: never let an older commit overwrite a newer one's apply (an old
    CI run that finishes last would roll production back)."""
    if options.force:
        return
    from reconciler.gitrepo import is_ancestor

    for environment, model in sorted({(s.environment, s.model) for s in plan.steps}):
        registered = actual.models.get(model)
        recorded = registered.tags.get(applied_commit_tag(environment)) if registered else None
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
            raise OutOfOrder(
                f"refusing to apply commit {options.commit[:12]} to {environment}: {model} was "
                f"last applied there from commit {recorded[:12]}, which is not in this clone "
                "(a shallow checkout?). Fetch full history (git fetch --unshallow; "
                "actions/checkout with fetch-depth: 0), or use --force"
            )
        if not ordered:
            raise OutOfOrder(
                f"refusing to apply commit {options.commit[:12]} to {environment}: {model} was "
                f"last applied there from commit {recorded[:12]}, which is not an ancestor of "
                f"{options.commit[:12]}. An older run finishing last would roll {environment} "
                "back; use --force to apply anyway"
            )


def _record_ownership(
    registry: Registry,
    plan: Plan,
    actual: ActualState,
    results: Sequence[StepResult],
    commit: str | None,
    owner: str,
) -> None:
    """After a model's changes in an environment all landed: the commit they reflect (fencing),
    and that reconciler manages the model there (so removing its pin may retire it)."""
    retired = {(r.environment, r.model) for r in plan.retirements if r.enabled}
    for environment, model in sorted({(s.environment, s.model) for s in plan.steps}):
        outcomes = [
            r.outcome for r in results if (r.step.environment, r.step.model) == (environment, model)
        ]
        if not outcomes or any(outcome != "applied" for outcome in outcomes):
            continue
        if commit is not None:
            registry.set_model_tag(model, applied_commit_tag(environment), commit)
        tags = actual.models[model].tags if model in actual.models else {}
        if (environment, model) not in retired and tags.get(managed_tag(environment)) != owner:
            registry.set_model_tag(model, managed_tag(environment), owner)


def _owner(root: Path) -> str:
    from reconciler.gitrepo import repository_id

    return repository_id(root)


def _check_retirements(desired: DesiredState, plan: Plan, force: bool) -> None:
    """Prune safety: never empty an environment, never retire more than its limit, unforced."""
    if force:
        return
    by_env: dict[str, list[str]] = {}
    for retirement in plan.retirements:
        if retirement.enabled:
            by_env.setdefault(retirement.environment, []).append(retirement.model)
    for name, models in sorted(by_env.items()):
        env = desired.environments[name]
        listed = ", ".join(models)
        if not any(pin.environment == name for pin in desired.pins):
            raise RetireRefused(
                f"refusing to retire every model from {name} (it would have no pins left): "
                f"{listed}; use --force if that is intended"
            )
        if len(models) > env.max_retire:
            raise RetireRefused(
                f"refusing to retire {len(models)} models from {name}, more than its limit of "
                f"{env.max_retire} (max_retire): {listed}; use --force if that is intended"
            )


def _check_expected(plan: Plan, expected: str | None) -> None:
    if expected is not None and plan.checksum != expected.strip().lower():
        raise PlanChanged(
            f"the plan is not the one reviewed (--expect-plan {expected[:12]}…, now "
            f"{plan.checksum[:12]}…): the pins or the registry changed since. Run `reconciler "
            "plan` again; nothing was changed"
        )


def _check_write_permission(registry: Registry, plan: Plan, holder: str) -> None:
    """Fail before any stage or alias change when the credentials may not write a model: the
    plan tag on each model to change proves write access and records which plan touched it."""
    value = f"{plan.checksum} by {holder}"
    for model in sorted({step.model for step in plan.steps}):
        try:
            registry.set_model_tag(model, PLAN_TAG, value)
        except RegistryPermissionDenied:
            user = os.environ.get("MLFLOW_TRACKING_USERNAME")
            who = f"user {user!r}" if user else "these credentials"
            raise RegistryPermissionDenied(
                f"permission denied: {who} may not change registered model {model!r} "
                "(stages and aliases need write permission: EDIT in MLflow's basic-auth); "
                "nothing was changed"
            ) from None


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
) -> tuple[Plan, ActualState]:
    actual = registry.read({pin.model for pin in desired.pins})
    plan = diff(desired, actual, environments or None, models or None, prune, _owner(root))
    if plan.problems:
        raise InvalidInput(plan.problems)
    problems = _policy_problems(desired, plan, actual, registry, root, now)
    if problems:
        raise InvalidInput(problems)
    return plan, actual


def _policy_problems(
    desired: DesiredState,
    plan: Plan,
    actual: ActualState,
    registry: Registry,
    root: Path,
    now: datetime | None,
) -> list[Problem]:
    """Promotion order and gates, for every pin the plan changes (in-sync pins already serve)."""
    moment = now or datetime.now(timezone.utc)
    histories: dict[str, list[PinChange]] = {}
    problems: list[Problem] = []
    for entry in plan.entries:
        pin = entry.pin
        env = desired.environments[pin.environment]
        if not entry.steps or not (env.requires or env.gates or pin.gates):
            continue
        version = actual.models[pin.model].versions[pin.version]
        wants_metrics = any(g is not None and g.metrics for g in (env.gates, pin.gates))
        metrics = registry.run_metrics(version.run_id) if wants_metrics and version.run_id else None
        reached, how = (None, "")
        if env.requires:
            reached, how = _reached(root, version, env.requires, histories)
        evidence = policy.Evidence(
            metrics=metrics or {},
            tags=version.tags,
            now=moment,
            reached_required=reached,
            reached_how=how,
            has_run=metrics is not None or not wants_metrics,
        )
        # The environment's rules, then the pin's own gates, each named by where it is written.
        for gates, source, check_order in (
            (env.gates, env.settings_file or f"environments/{env.name}.yaml", True),
            (pin.gates, f"{pin.file} gates", False),
        ):
            problems += policy.check(
                file=pin.file,
                line=pin.version_line,
                model=pin.model,
                version=pin.version,
                requires=env.requires,
                gates=gates,
                rule_source=source,
                evidence=evidence,
                check_order=check_order,
            )
    return problems


def _reached(
    root: Path, version: ModelVersion, requires: str, histories: dict[str, list[PinChange]]
) -> tuple[datetime | None, str]:
    """When `version` first reached the `requires` environment: by the registry's audit records,
    else by the git history of that environment's pin."""
    records = audit.parse(version.tags.get(audit_tag(requires)))
    times = sorted(datetime.fromisoformat(r.time) for r in records)
    if times:
        return times[0], "audit record"
    from reconciler.gitrepo import pin_history

    if version.model not in histories:
        histories[version.model] = pin_history(root, version.model)
    for change in histories[version.model]:
        if change.environment == requires and change.after == version.version:
            return change.date, "git history"
    return None, ""


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
    from reconciler.gitrepo import pin_history

    changes = pin_history(root, model)
    if not changes:
        raise UsageError(f"no git history of pins for model {model!r} under environments/")
    return build_history(model, changes, registry.read_model(model), environments, at)


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


@dataclass(frozen=True)
class PromoteResult:
    model: str
    environment: str
    file: str
    new_version: str
    previous_version: str | None
    target: str
    already_promoted: bool
    source: str  # where the version came from
    confidence: float | None = None
    branch: str | None = None
    commit: str | None = None

    def record(self) -> dict[str, object]:
        """The promote-model seed's record, versions as strings, plus where things went."""
        return {
            "model_name": self.model,
            "environment": self.environment,
            "new_version": self.new_version,
            "new_stage": self.target.split(" + ")[0],
            "archived_version": None if self.already_promoted else self.previous_version,
            "promoted": not self.already_promoted,
            "already_promoted": self.already_promoted,
            "file": self.file,
            "version_from": self.source,
            "confidence": self.confidence,
            "branch": self.branch,
            "commit": self.commit,
        }


def promote(
    root: Path,
    registry_factory: Callable[[], Registry],
    model: str,
    environment: str,
    version: str | None = None,
    confidence: float | None = None,
    branch: str | None = None,
    commit: bool = False,
) -> PromoteResult:
    """Edit (or create) the pin of `model` in `environment`, keeping the file's comments and
    layout. Without `version`: the version pinned in the previous environment of the promotion
    order, else the registry's latest Staging version (the promote-model seed's fallback)."""
    from reconciler import gitrepo, pinfile
    from reconciler.desired import DEFAULT_ENVIRONMENTS, ENVIRONMENTS_DIR

    desired = load_desired_state(root)
    env = desired.environments.get(environment) or DEFAULT_ENVIRONMENTS.get(environment)
    if env is None:
        known = ", ".join(sorted(desired.environments)) or "none"
        raise UsageError(f"--to {environment!r}: no such environment (have: {known})")
    pins = {(p.environment, p.model): p for p in desired.pins}
    current = pins.get((environment, model))
    if version is not None:
        source = "--version"
    else:
        version, source = _version_to_promote(desired, env, model, pins, registry_factory)
    if not version.isdigit() or int(version) < 1:
        raise UsageError(f"--version {version!r}: a version is a positive integer")
    version = str(int(version))
    path = (
        root / current.file if current else root / ENVIRONMENTS_DIR / environment / f"{model}.yaml"
    )
    display = path.relative_to(root).as_posix()
    already = (
        current is not None
        and current.version == version
        and (confidence is None or current.confidence == confidence)
    )
    result = PromoteResult(
        model=model,
        environment=environment,
        file=display,
        new_version=version,
        previous_version=current.version if current else None,
        target=env.target(),
        already_promoted=already,
        source=source,
        confidence=confidence
        if confidence is not None
        else (current.confidence if current else None),
    )
    if already:
        return result
    try:
        if branch:
            gitrepo.checkout_new_branch(root, branch)
    except ValueError as error:
        raise UsageError(f"--branch {branch!r}: {error}") from None
    before = path.read_text(encoding="utf-8") if path.exists() else None
    if before is None:
        text = pinfile.new_pin(model, version, confidence)
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        text = pinfile.set_key(before, "version", version)
        if confidence is not None:
            text = pinfile.set_key(text, "confidence", f"{confidence:g}")
    path.write_text(text, encoding="utf-8")
    try:
        load_desired_state(root, [path])
    except InvalidInput:
        # Never leave a broken pin behind: put the file back as it was.
        if before is None:
            path.unlink()
        else:
            path.write_text(before, encoding="utf-8")
        raise
    sha = None
    if commit or branch:
        was = f" (was v{current.version})" if current else ""
        message = f"Promote {model} v{version} to {environment}{was}"
        if confidence is not None:
            message += f"\n\nComparison confidence: {confidence:g}"
        try:
            sha = gitrepo.commit_files(root, [path], message)
        except ValueError as error:
            raise UsageError(f"--commit: {error}") from None
    return PromoteResult(**{**result.__dict__, "branch": branch, "commit": sha})


def _version_to_promote(
    desired: DesiredState,
    env: Environment,
    model: str,
    pins: dict[tuple[str, str], Pin],
    registry_factory: Callable[[], Registry],
) -> tuple[str, str]:
    previous_env = env.requires or ("staging" if env.name == "production" else None)
    if previous_env and (previous_env, model) in pins:
        return pins[(previous_env, model)].version, f"pinned in {previous_env}"
    registered = registry_factory().read_model(model)
    staged = registered.in_stage(STAGING) if registered else []
    if not staged:
        raise UsageError(
            f"no version to promote: {model} has no pin in "
            f"{previous_env or 'a previous environment'} and no Staging version in the registry; "
            "name one with --version"
        )
    return staged[-1], "latest Staging version in the registry"
