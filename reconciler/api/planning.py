"""Planning across registries: each site's environments are diffed against its own registry,
sourced pins (`from:`) renumbered in it, and the policy judged on the source's evidence; the
sites' plans are then shown as one."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from reconciler.api.sites import OpenSite, each
from reconciler.apply import recording
from reconciler.apply.options import Interrupt
from reconciler.errors import InvalidInput, Problem
from reconciler.pins.values import DesiredState
from reconciler.planning import evidence
from reconciler.planning.evidence import SourceEvidence
from reconciler.planning.scope import Scope
from reconciler.planning.sourcing import Sourced, SourceSide, source_pins
from reconciler.planning.steps import Plan, Step
from reconciler.records.bookkeeping import awaits_records
from reconciler.registry.base import Registry
from reconciler.registry.values import ActualState
from reconciler.registry.workspaces import Workspace, owner_in


@dataclass(frozen=True)
class Checkout:
    """The repository a command runs in: its root, its identity (the owner it records, with
    the workspace), the workspace, and the commit an apply records (None for a plan: no in-sync
    pin is recorded then)."""

    root: Path
    owner: str
    workspace: Workspace
    commit: str | None


def checkout_of(root: Path, workspace: Workspace, commit: str | None = None) -> Checkout:
    from reconciler.gitrepo import repository_id

    return Checkout(root, owner_in(repository_id(root), workspace), workspace, commit)


@dataclass(frozen=True)
class Sides:
    """What every site holds of the models it is asked about: its own pins' and the models
    other sites copy from it. Read once per command (the sources are only read)."""

    actual: Mapping[tuple[str | None, ...], ActualState]

    def of(self, site: OpenSite) -> ActualState:
        return self.actual[site.site.key]

    def for_target(
        self, target: OpenSite, opened: Sequence[OpenSite], desired: DesiredState
    ) -> dict[str, tuple[OpenSite, SourceSide]]:
        """The source environments of `target`'s pins that live in another registry."""
        found = {}
        for pin in desired.pins:
            if pin.source is None or not target.holds(pin.environment):
                continue
            source = next((s for s in opened if s.holds(pin.source)), None)
            if source is not None and source.site.key != target.site.key:
                found[pin.source] = (source, SourceSide(source.identity, self.of(source)))
        return found


def read_sites(
    desired: DesiredState,
    opened: Sequence[OpenSite],
    owners: Mapping[tuple[str | None, ...], str] | None = None,
    interrupt: Interrupt | None = None,
) -> Sides:
    """Each site's registry read once, concurrently: its pinned models, and the models other
    sites' pins copy from it. Without `owners` (status), only those."""

    def read(site: OpenSite) -> ActualState:
        models = {
            pin.model
            for pin in desired.pins
            if site.holds(pin.environment) or (pin.source is not None and site.holds(pin.source))
        }
        if owners is None:
            return site.registry.read(models)
        return read_models(site.registry, models, owners[site.site.key])

    names = [", ".join(s.site.environments) for s in opened]
    found = each(read, list(opened), names, interrupt)
    return Sides({site.site.key: actual for site, actual in zip(opened, found, strict=True)})


def read_models(registry: Registry, pinned: set[str], owner: str) -> ActualState:
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


@dataclass(frozen=True)
class SitePlan:
    """One site's plan, the read it was made from (stand-ins for copies included) and how its
    sourced pins were renumbered."""

    site: OpenSite
    plan: Plan
    actual: ActualState
    sourced: Sourced
    sources: Mapping[str, tuple[OpenSite, SourceSide]]


def plan_site(
    desired: DesiredState,
    site: OpenSite,
    actual: ActualState,
    sources: Mapping[str, tuple[OpenSite, SourceSide]],
    scope: Scope,
    checkout: Checkout,
    now: datetime | None = None,
    take_ownership: bool = False,  # in-sync pins another repository owns are adopted too
    own_apply: str | None = None,  # the lease this apply holds (its announcement is no leftover)
) -> tuple[SitePlan, list[Problem]]:
    """The plan of one site's environments against its registry, and its problems (pins the
    registry cannot satisfy, policy failures): the caller refuses them with every other site's."""
    part = desired.only(site.site.environments)
    sourced = source_pins(
        part, actual, {env: side for env, (_s, side) in sources.items()}, site.identity
    )
    owner = checkout.owner  # this repository: prune retires only what it owns
    plan = _labelled(scope.diff(sourced.desired, sourced.actual, owner), sourced)
    # The registry's ownership records may name another environment of this repository (one
    # server reached by two names, `localhost` and `127.0.0.1`; an environment moved to another
    # registry): its pins are elsewhere, not removed. Only environments gone are retired.
    plan = plan.without_retirements_in(elsewhere(desired, site))
    evidence_of = {
        key: SourceEvidence(
            found.actual.models[key[1]].versions[source.version],
            found.actual.models[key[1]],
            sources[source.environment][0].registry,
        )
        for key, source in sourced.sources.items()
        for found in (sources[source.environment][1],)
        if key not in sourced.orphans
    }
    problems = [
        *plan.problems,
        *sourced.problems,
        *evidence.policy_problems(
            desired,
            plan,
            sourced.actual,
            site.registry,
            now,
            evidence_of,
            set(part.environments),
            sourced.orphans,
        ),
    ]
    adoptions = recording.find_adoptions(
        plan, sourced.actual, checkout.root, checkout.commit, owner, take_ownership, own_apply
    )
    plan = replace(
        plan,
        adoptions=adoptions,
        workspace=checkout.workspace,
        # Only what the command's --env/--model name is copied (the rest is not planned).
        copies=tuple(
            copy
            for copy in sourced.copies
            if (not scope.models or copy.model in scope.models)
            and (not scope.environments or copy.environment in scope.environments)
        ),
        sources=tuple(sorted(sourced.sources.items())),
    )
    return SitePlan(site, plan, sourced.actual, sourced, sources), problems


def elsewhere(desired: DesiredState, site: OpenSite) -> frozenset[str]:
    """The repository's environments that live in another registry than `site`'s."""
    return frozenset(set(desired.environments) - set(site.site.environments))


def _labelled(plan: Plan, sourced: Sourced) -> Plan:
    """Each step that moves a sourced pin's version says where the version comes from. An entry
    and the plan share their step objects (apply's outcomes are keyed by them): relabelled once."""
    numbers = {(pin.environment, pin.model): pin.version for pin in sourced.desired.pins}
    relabelled: dict[int, Step] = {}

    def label(step: Step) -> Step:
        if id(step) not in relabelled:
            source = sourced.sources.get((step.environment, step.model))
            if source is None or numbers.get((step.environment, step.model)) != step.version:
                relabelled[id(step)] = step
            else:
                relabelled[id(step)] = replace(step, source=source.label())
        return relabelled[id(step)]

    entries = tuple(replace(e, steps=tuple(label(s) for s in e.steps)) for e in plan.entries)
    return replace(plan, entries=entries, steps=tuple(label(s) for s in plan.steps))


def refuse(problems: Sequence[Problem]) -> None:
    if problems:
        raise InvalidInput(problems)


def combine(plans: Sequence[SitePlan], every: Collection[OpenSite]) -> Plan:
    """The sites' plans shown as one. With one registry it is that registry's plan, unchanged;
    with several, each environment in scope says which registry it lives in."""
    if len(plans) == 1 and len(every) == 1:
        return plans[0].plan
    first = plans[0].plan
    # The workspace is shown apart (each plan's own), not in the registry's name.
    registries = tuple(
        (env, p.site.registry.describe(), p.plan.workspace)
        for p in plans
        for env in p.site.site.environments
    )
    return replace(
        first,
        entries=tuple(e for p in plans for e in p.plan.entries),
        steps=tuple(sorted((s for p in plans for s in p.plan.steps), key=lambda s: s.order_key)),
        unmanaged=tuple(u for p in plans for u in p.plan.unmanaged),
        problems=tuple(x for p in plans for x in p.plan.problems),
        retirements=tuple(r for p in plans for r in p.plan.retirements),
        adoptions=tuple(a for p in plans for a in p.plan.adoptions),
        unreadable=tuple(u for p in plans for u in p.plan.unreadable),
        copies=tuple(c for p in plans for c in p.plan.copies),
        sources=tuple(s for p in plans for s in p.plan.sources),
        registries=tuple(sorted(registries)),
        repositories=tuple(
            (env, p.plan.repository)
            for p in plans
            for env in p.site.site.environments
            if p.plan.repository is not None
        ),
    )


def with_sizes(plan: Plan, planned: Sequence[SitePlan]) -> Plan:
    """Each copy with the size to transfer, listed in its source registry (no download)."""
    if not plan.copies:
        return plan
    sized = []
    for copy in plan.copies:
        site_plan = next(p for p in planned if p.site.holds(copy.environment))
        source, _side = site_plan.sources[copy.source.environment]
        listed = source.registry.version_artifacts(copy.model, copy.source.version)
        sized.append(replace(copy, size=listed.total_bytes))
    return replace(plan, copies=tuple(sized))


def site_ui(site: OpenSite) -> str | None:
    """The MLflow UI of a site's own server, for links in reviews."""
    from reconciler.planning.review import ui_base

    return ui_base(site.registry.describe())
