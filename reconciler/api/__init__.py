"""What the commands do, without the command line: validate, plan, apply, and the rest; each
environment read from and written to its own registry (api/sites.py)."""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from reconciler.api.applying import SiteRun, merge_reports, workspace_to_write
from reconciler.api.importing import import_site, merge_imports
from reconciler.api.planning import (
    SitePlan,
    checkout_of,
    combine,
    plan_site,
    read_sites,
    refuse,
    site_ui,
    with_sizes,
)
from reconciler.api.reviews import reviews
from reconciler.api.serving import copied_numbers
from reconciler.api.sites import Connect, OpenSite, each, open_sites
from reconciler.apply import guards
from reconciler.apply.executor import ApplyReport
from reconciler.apply.options import ApplyOptions
from reconciler.apply.unlock import UnlockReport
from reconciler.apply.unlock import merge as merge_unlocks
from reconciler.apply.unlock import unlock as unlock_leases
from reconciler.errors import InvalidInput, Problem, UsageError
from reconciler.importing.files import ImportReport
from reconciler.pins.defaults import read_workspace
from reconciler.pins.desired import ENVIRONMENTS_DIR, load_desired_state
from reconciler.pins.values import DesiredState
from reconciler.planning.review import Review
from reconciler.planning.scope import EVERYTHING, Scope
from reconciler.planning.sourcing import source_pins
from reconciler.planning.status import StatusRow, status_rows
from reconciler.planning.steps import Plan
from reconciler.records.history import History
from reconciler.records.history import build as build_history
from reconciler.records.history import merge as merge_histories
from reconciler.serving.verify import Outcome
from reconciler.serving.verify import targets as verify_targets


def validate(root: Path, paths: Sequence[Path] = ()) -> DesiredState:
    """Offline checks of pins and settings; raises InvalidInput with every problem."""
    return load_desired_state(root, paths)


def make_plan(
    root: Path,
    connect: Connect,
    scope: Scope = EVERYTHING,
    now: datetime | None = None,
    ui_base: str | None = None,
    with_reviews: bool = True,
    environ: Mapping[str, str] | None = None,
) -> tuple[Plan, dict[tuple[str, str], Review]]:
    """Validate everything, read each registry once (concurrently), diff the scope asked for,
    check policy; and for each change what a reviewer needs to judge it (run metrics of both
    versions, creator, links to the MLflow UI, the policy rules passed)."""
    from reconciler.gitrepo import check_pins_tracked, head_commit

    check_pins_tracked(root)
    desired = load_desired_state(root)
    scope.check_environments(desired)
    opened = open_sites(desired, connect, _environ(environ), scope.environments)
    # The commit a plan shows in-sync pins recorded for (as the apply from it would).
    commit = head_commit(root)
    checkouts = {s.site.key: checkout_of(root, s.workspace, commit) for s in opened}
    sides = read_sites(desired, opened, {key: c.owner for key, c in checkouts.items()})
    planned: list[SitePlan] = []
    problems: list[Problem] = []
    for site in _planned_sites(opened, scope):
        found, site_problems = plan_site(
            desired,
            site,
            sides.of(site),
            sides.for_target(site, opened, desired),
            scope,
            checkouts[site.site.key],
            now,
        )
        planned.append(found)
        problems += site_problems
    refuse(problems)
    plan = with_sizes(combine(planned, opened), planned)
    scope.check_models(desired, plan)  # a model with no pin may be retiring
    if not with_reviews:
        return plan, {}
    found_reviews: dict[tuple[str, str], Review] = {}
    for site_plan in planned:
        base = ui_base if not site_plan.site.site.own_server else site_ui(site_plan.site)
        found_reviews.update(reviews(desired, site_plan, base))
    return plan, found_reviews


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _planned_sites(opened: Sequence[OpenSite], scope: Scope) -> list[OpenSite]:
    """The sites holding an environment in scope (a site read only as a source is not
    planned); the command's when none does."""
    wanted = set(scope.environments)
    chosen = [s for s in opened if not wanted or wanted & set(s.site.environments)]
    return chosen or list(opened[:1])


def apply(
    root: Path,
    connect: Connect,
    scope: Scope = EVERYTHING,
    options: ApplyOptions | None = None,
    environ: Mapping[str, str] | None = None,
) -> ApplyReport:
    """Plan every registry in scope (any problem anywhere writes nothing); then, registry by
    registry (Production's first), lease the models to write, copy the versions pins take
    from another registry, plan again under the lease and write model by model
    (applying.apply_site)."""
    from reconciler.gitrepo import check_pins_tracked

    check_pins_tracked(root)
    options = options or ApplyOptions()
    options = replace(options, dirty=guards.check_committed(root, options.allow_dirty))
    desired = load_desired_state(root)
    scope = replace(scope, prune=scope.prune or options.prune)
    scope.check_environments(desired)
    opened = open_sites(desired, connect, _environ(environ), scope.environments, options.interrupt)
    targets = _planned_sites(opened, scope)
    for site in targets:
        workspace_to_write(site.workspace, site.site)
    checkouts = {s.site.key: checkout_of(root, s.workspace, options.commit) for s in opened}
    owners = {key: c.owner for key, c in checkouts.items()}
    sides = read_sites(desired, opened, owners, options.interrupt)
    runs = [
        SiteRun(
            desired,
            site,
            sides,
            opened,
            scope,
            checkouts[site.site.key],
            replace(options, workspace=site.workspace.name),
        )
        for site in targets
    ]
    # Every registry's plan and its problems before anything is written anywhere.
    problems: list[Problem] = []
    for run in runs:
        problems += run.first_plan()
    refuse(problems)
    combined = combine([run.planned for run in runs], opened)
    guards.check_expected(combined, options.expect_checksum)
    scope.check_models(desired, combined)  # a model with no pin may be retiring
    if len(runs) > 1:
        for run in runs:  # a refusal in one registry writes nothing in any
            run.precheck()
    firsts = [run.planned for run in runs]
    applied: list[tuple[SitePlan, ApplyReport]] = []
    for index in sorted(range(len(runs)), key=lambda i: runs[i].rank):
        report = runs[index].apply()
        applied.append((firsts[index], report))
        if report.interrupted or report.failed:
            break
    return merge_reports(applied, firsts, opened)


def history(
    root: Path,
    connect: Connect,
    model: str,
    environments: Sequence[str] = (),
    at: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> History:
    """Every change to `model`'s pins in git, marked applied when the audit records in each
    environment's registry name its commit."""
    from reconciler.gitrepo import check_pins_tracked, lineage, pin_history

    check_pins_tracked(root)
    changes = pin_history(root, model)
    if not changes:
        raise UsageError(f"no git history of pins for model {model!r} under environments/")
    desired = _settings_only(root)
    opened = open_sites(desired, connect, _environ(environ), environments)
    registered = each(lambda site: site.registry.read_model(model), opened)
    with lineage(root) as git_lineage:
        found = [
            build_history(
                model,
                [c for c in changes if _lives_in(site, c.environment, len(opened))],
                found_model,
                environments,
                at,
                git_lineage,
            )
            for site, found_model in zip(opened, registered, strict=True)
        ]
    return merge_histories(found)


def _lives_in(site: OpenSite, environment: str, sites: int) -> bool:
    """Whether a pin change's environment reads its records from `site` (with one registry,
    every environment does, a removed one too)."""
    return sites == 1 or site.holds(environment)


def _settings_only(root: Path) -> DesiredState:
    """The repository's settings for commands that need no pins (history, unlock): a broken pin
    never blocks them; a broken settings file does."""
    try:
        return load_desired_state(root)
    except InvalidInput:
        return DesiredState({}, (), read_workspace(root))


def status(
    root: Path,
    connect: Connect,
    scope: Scope = EVERYTHING,
    environ: Mapping[str, str] | None = None,
) -> list[StatusRow]:
    """Environment by model: what is pinned, what each registry has, in sync or not, and the
    commit last applied there. Pins the registry cannot satisfy show as not in sync."""
    desired = load_desired_state(root)
    scope.check(desired)
    opened = open_sites(desired, connect, _environ(environ), scope.environments)
    sides = read_sites(desired, opened)
    rows: list[StatusRow] = []
    for site in _planned_sites(opened, scope):
        sourced = source_pins(
            desired.only(site.site.environments),
            sides.of(site),
            {env: side for env, (_s, side) in sides.for_target(site, opened, desired).items()},
            site.identity,
        )
        diffed = replace(scope, prune=False).diff(sourced.desired, sourced.actual)
        plan = replace(
            diffed, workspace=site.workspace, sources=tuple(sorted(sourced.sources.items()))
        )
        # A pin naming a prompt is refused, not shown as a model with nothing in its stage;
        # so is one whose source version cannot be copied.
        actual = sourced.actual
        refused = [e.problem for e in plan.entries if e.problem and e.pin.model in actual.prompts]
        if refused or sourced.problems:
            raise InvalidInput([*refused, *sourced.problems])
        rows += status_rows(plan, actual)
    return rows


def import_pins(
    root: Path,
    connect: Connect,
    registry_uri: str,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
    overwrite: bool = False,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> ImportReport:
    """Write a pin for every model each environment's registry serves in it (its stage, or its
    alias for alias-only environments): the existing environments plus staging and production.
    Reads each registry the cheap way `plan` does; writes only files."""
    from reconciler.pins.values import DEFAULT_ENVIRONMENTS

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
    every = replace(desired, environments=known)
    opened = open_sites(every, connect, _environ(environ), [env.name for env in chosen])
    reports = [
        import_site(
            root,
            site,
            registry_uri if not site.site.own_server else site.registry.describe(),
            [env for env in chosen if site.holds(env.name)],
            models,
            desired,
            overwrite,
            now,
        )
        for site in opened
    ]
    return merge_imports(reports)


def verify(
    root: Path,
    environments: Sequence[str] = (),
    models: Sequence[str] = (),
    timeout: float | None = None,
    only: Collection[tuple[str, str]] | None = None,
    environ: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
    connect: Connect | None = None,
) -> list[Outcome]:
    """Poll every endpoint in scope until it serves its pin or its timeout (or `timeout`, in
    seconds, for all) passes, or `stop` is set (then the outcomes say what each endpoint
    answered until then). Offline from the registry: reads pins and `serving:` only. Every
    `${VAR}` is checked before the first poll. A pin with `from:` another registry serves its
    copy's number there: with `connect`, that registry is read for it (the only read)."""
    from reconciler.pins.endpoints import resolve
    from reconciler.serving import poller

    desired = load_desired_state(root)
    Scope.of(environments, models).check(desired)
    environ = os.environ if environ is None else environ
    found = verify_targets(desired, environments, models, only)
    if connect is not None and any(t.pin_source for t in found):
        found = copied_numbers(desired, found, connect, environ)
    jobs = [
        poller.Job(
            target,
            resolve(target.endpoint, target.model, target.environment, environ, target.source),
            target.endpoint.timeout_seconds if timeout is None else timeout,
            target.endpoint.interval_seconds,
        )
        for target in found
    ]
    return poller.poll_all(jobs, stop)


def unlock(
    root: Path,
    connect: Connect,
    models: Collection[str] = (),
    force: bool = False,
    environ: Mapping[str, str] | None = None,
) -> UnlockReport:
    """Remove the leases of applies that died, in every registry (and workspace) the
    repository's environments live in. Needs only the settings (a broken pin never blocks an
    unlock)."""
    desired = _settings_only(root)
    opened = open_sites(desired, connect, _environ(environ))
    reports = each(lambda site: unlock_leases(site.registry, models, force), opened)
    return merge_unlocks(reports)


def applied_pins(report: ApplyReport) -> set[tuple[str, str]]:
    """(environment, model) of every pin the apply wrote to, for `apply --verify`."""
    return {
        (result.step.environment, result.step.model)
        for result in (*report.results, *report.repairs)
        if result.outcome == "applied"
    }
