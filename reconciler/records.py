"""What apply records in the registry besides stages and aliases: the permission-proving plan
tag before writing, and after it the applied commit, ownership and audit records."""

from __future__ import annotations

import os
from collections.abc import Sequence

from reconciler import audit
from reconciler.bookkeeping import PLAN_TAG, applied_commit_tag, audit_tag, managed_tag
from reconciler.errors import (
    RegistryPermissionDenied,
)
from reconciler.executor import StepResult
from reconciler.options import ApplyOptions
from reconciler.plan import Plan
from reconciler.registry.base import Registry
from reconciler.state import ActualState


def record_audit(
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
            dirty=options.dirty,
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
                dirty=options.dirty,
            )
            registry.set_version_tag(
                step.model, step.version, key, audit.append(tags.get(key), record)
            )


def record_ownership(
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


def check_write_permission(registry: Registry, plan: Plan, holder: str) -> None:
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
