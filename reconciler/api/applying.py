"""Apply, one registry (site) at a time: lease the models to write, copy the versions its pins
take from another registry, plan again under the lease, write model by model."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from reconciler.api.planning import (
    Checkout,
    Sides,
    SitePlan,
    combine,
    elsewhere,
    plan_site,
    read_models,
    refuse,
)
from reconciler.api.sites import OpenSite
from reconciler.apply import executor, guards, recording
from reconciler.apply.copies import CopyDone
from reconciler.apply.copying import Fetched, check_copy, ensure_copy, fetch
from reconciler.apply.executor import ApplyReport, StepResult
from reconciler.apply.lease import Lease
from reconciler.apply.model_run import MAX_REPAIR_ROUNDS as MAX_LEASE_ROUNDS
from reconciler.apply.model_run import ModelRun, Planned
from reconciler.apply.options import ApplyOptions
from reconciler.errors import ApplyFailed, CopyStopped, Problem, UsageError
from reconciler.pins.desired import ENVIRONMENTS_DIR
from reconciler.pins.values import DesiredState
from reconciler.planning.scope import Scope
from reconciler.planning.sites import Site
from reconciler.planning.sourcing import Copy
from reconciler.planning.steps import Plan
from reconciler.records.bookkeeping import Adoption
from reconciler.registry.lineage import Lineage
from reconciler.registry.values import ActualState
from reconciler.registry.workspaces import SETTINGS, Workspace


def workspace_to_write(workspace: Workspace, site: Site) -> None:
    """An apply writes only where the repository itself says: on a registry with workspaces,
    the repository's `workspace:` setting (MLFLOW_WORKSPACE may only agree with it). A CI job
    with the variable missing or pointing at another team's workspace is refused before any
    read, never applied to the server's default or to that team's same-named models."""
    if workspace.name is not None and workspace.chosen_by != SETTINGS:
        how = (
            f"MLFLOW_WORKSPACE is {workspace.name!r}, but this repository does not say which "
            "one it manages"
            if workspace.chosen_by
            else "none is chosen"
        )
        where = f"{ENVIRONMENTS_DIR}/_defaults.yaml"
        if site.own_server and site.setting is not None:
            where = f"`registry: workspace:` of {site.setting.file}"
            how = "none is chosen"
        raise UsageError(
            f"the registry has workspaces and {how}: set `workspace: <name>` in "
            f"{where} (nothing was changed)"
        )


@dataclass
class SiteRun:
    """One site's apply, from its first plan (made with every other site's, before anything is
    written) to its report."""

    desired: DesiredState
    site: OpenSite
    sides: Sides
    opened: Sequence[OpenSite]
    scope: Scope
    checkout: Checkout
    options: ApplyOptions
    planned: SitePlan = field(init=False)
    copies: list[CopyDone] = field(default_factory=list)

    @property
    def rank(self) -> tuple[int, str]:
        """Production's registry first, as environments are applied within one."""
        envs = [self.desired.environments[name] for name in self.site.site.environments]
        return min((env.rank for env in envs), default=(9, ""))

    @property
    def models(self) -> set[str]:
        return {p.model for p in self.desired.pins if self.site.holds(p.environment)}

    def first_plan(self) -> list[Problem]:
        self.planned, problems = self._plan(self.sides.of(self.site))
        return problems

    def _plan(
        self, actual: ActualState | None = None, lease: Lease | None = None
    ) -> tuple[SitePlan, list[Problem]]:
        if actual is None:
            reads = self.models | {
                p.model for p in self.desired.pins if p.source and self.site.holds(p.source)
            }
            actual = read_models(self.site.registry, reads, self.checkout.owner)
        return plan_site(
            self.desired,
            self.site,
            actual,
            self.sides.for_target(self.site, self.opened, self.desired),
            self.scope,
            self.checkout,
            self.options.clock(),
            self.options.take_ownership,
            lease.token if lease is not None else None,
        )

    def plan_now(
        self, actual: ActualState | None = None, lease: Lease | None = None
    ) -> tuple[Plan, ActualState, tuple[Adoption, ...]]:
        planned, problems = self._plan(actual, lease)
        refuse(problems)
        # The plan checked against --expect-plan before anything was written: nothing changed.
        expected = self.planned.plan.checksum if self.options.expect_checksum else None
        guards.check_expected(planned.plan, expected)
        self.planned = planned
        return planned.plan, planned.actual, planned.plan.adoptions

    def precheck(self) -> None:
        """The refusals apply would meet (order, ownership, retirements, unreadable state),
        on the first plan: every registry's before any is written."""
        plan, actual = self.planned.plan, self.planned.actual
        if not plan.has_changes and not plan.adoptions:
            guards.check_readable(actual, plan)
            return
        self.check(plan, actual)

    def check(self, plan: Plan, actual: ActualState) -> None:
        options, owner, root = self.options, self.checkout.owner, self.checkout.root
        guards.check_readable(actual, plan)
        guards.check_retirements(self.desired, plan, options.force)
        guards.check_ownership(actual, plan, owner, options.take_ownership, root)
        guards.check_order(actual, plan, root, options, owner)

    def apply(self) -> ApplyReport:
        """Lease the models to write (which proves write permission and announces the records
        each will get); plan again under the lease; copy what comes from another registry and
        plan once more; then write model by model; as each model's steps land, verify and repair
        it and write its audit records, which complete the announced records and release its
        lease (any other outcome: one bookkeeping write of what landed)."""
        options, owner, registry = self.options, self.checkout.owner, self.site.registry
        plan, actual = self.planned.plan, self.planned.actual
        adoptions = plan.adoptions
        if not plan.has_changes and not adoptions:
            guards.check_readable(actual, plan)
            return ApplyReport(plan, ())
        self.check(plan, actual)
        with contextlib.ExitStack() as downloads:
            # The versions to copy are downloaded before the lease: a download holds the source
            # registry's side of the connection gate, which the lease's renewals must not wait
            # behind (they go to this registry).
            try:
                fetched = self._fetch(plan, downloads)
            except CopyStopped:
                return self._stopped(plan)  # a signal while downloading: nothing leased yet
            lease = Lease(
                registry,
                options.holder,
                options.commit,
                ttl=options.lease_ttl,
                wait=options.lease_wait,
                settle=options.lease_settle,
                on_wait=options.on_event,
                parallelism=options.parallelism,
                create={copy.model for copy in plan.copies},
            )
            with lease:
                wanted = _writes_to(plan, adoptions)
                for _attempt in range(MAX_LEASE_ROUNDS):
                    # The registry may have moved while we waited: what is written is planned under
                    # the lease, from the read that confirmed it.
                    announced = recording.intents(plan, actual, adoptions, options, owner)
                    plan, actual, adoptions = self.plan_now(
                        lease.acquire(
                            wanted,
                            read=self.models,
                            intents=announced,
                            moves=recording.moves(plan, adoptions),
                        ),
                        lease,
                    )
                    if _writes_to(plan, adoptions) <= wanted:
                        break
                    wanted |= _writes_to(plan, adoptions)  # more to write than leased: lease those
                    lease.release()
                else:
                    raise ApplyFailed(
                        "the registry kept changing while the lease was taken; run again"
                    )
                if plan.copies:
                    # A refusal gives every lease back with the fences as they were: no stage moved.
                    self.check(plan, actual)
                    try:
                        self._copy(plan, actual, lease, fetched)
                    except CopyStopped:
                        # A signal during a copy: nothing moved, the leases given back (on
                        # leaving the lease), reported as stopped like a stop between steps.
                        return self._stopped(plan)
                    plan, actual, adoptions = self.plan_now(None, lease)
                    if plan.copies or not _writes_to(plan, adoptions) <= wanted:
                        raise ApplyFailed(
                            "the registry changed while versions were copied; run again (the "
                            "copies stay and are found by their lineage)"
                        )
                # A refusal here gives every lease back with the fences as they were found: nothing
                # was sent (Lease.release).
                self.check(plan, actual)
                self._check_copies(plan, actual, lease)
                # Usually what was announced; else one more write per model whose records differ.
                lease.announce(
                    recording.intents(plan, actual, adoptions, options, owner),
                    recording.moves(plan, adoptions),
                )
                # The repair re-diffs this registry's share, sourced pins by their copies' numbers.
                share = self.planned.sourced.desired
                planned = Planned(
                    share,
                    plan,
                    actual,
                    adoptions,
                    self.scope,
                    owner,
                    elsewhere(self.desired, self.site),
                )
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
            copies=tuple(self.copies),
        )

    def _check_copies(self, plan: Plan, actual: ActualState, lease: Lease) -> None:
        """The digest of every copy a step moves is checked before it moves (a copy made by this
        apply was checked as it was made): a file changed in the store since is caught here,
        not by serving."""
        made = {(done.copy.model, done.version) for done in self.copies if done.copied}
        moved = {
            (step.model, step.version)
            for step in plan.steps
            if step.source is not None and step.kind in ("transition", "set_alias")
        }
        for model, number in sorted(moved - made):
            with _kept_alive(lease):
                check_copy(self.site.registry, actual.models[model].versions[number])

    def _stopped(self, plan: Plan) -> ApplyReport:
        results = tuple(StepResult(step, "not_attempted") for step in plan.steps)
        interrupted = self.options.interrupt.signal if self.options.interrupt else None
        return ApplyReport(plan, results, interrupted=interrupted, copies=tuple(self.copies))

    def _lineage(self, copy: Copy) -> Lineage:
        return Lineage(copy.source.registry, copy.model, copy.source.version, copy.source.run_id)

    def _fetch(self, plan: Plan, downloads: contextlib.ExitStack) -> dict[Lineage, Fetched]:
        """Each version to copy, downloaded from its source into a folder `downloads` removes."""
        stop = self.options.interrupt.event if self.options.interrupt else None
        sources = self.sides.for_target(self.site, self.opened, self.desired)
        found = {}
        for copy in plan.copies:
            source_site, _side = sources[copy.source.environment]
            wanted = self._lineage(copy)
            found[wanted] = downloads.enter_context(fetch(source_site.registry, wanted, stop))
        return found

    def _copy(
        self, plan: Plan, actual: ActualState, lease: Lease, fetched: dict[Lineage, Fetched]
    ) -> None:
        """Make every copy the plan needs, one at a time, the lease kept alive meanwhile: the
        copy is found by its lineage (never made twice), made, or resumed."""
        stop = self.options.interrupt.event if self.options.interrupt else None
        sources = self.sides.for_target(self.site, self.opened, self.desired)
        for copy in plan.copies:
            if stop is not None and stop.is_set():
                raise CopyStopped("stopped before the copies were made; nothing was moved")
            source_site, _side = sources[copy.source.environment]
            model = actual.models.get(copy.model)
            wanted = self._lineage(copy)
            with _kept_alive(lease):
                result = ensure_copy(
                    source_site.registry,
                    self.site.registry,
                    wanted,
                    model.versions if model is not None else {},
                    stop,
                    fetched=fetched.get(wanted),
                )
            done = CopyDone(
                copy, result.version.version, result.copied, result.bytes, result.seconds
            )
            self.copies.append(done)
            if self.options.on_event is not None:
                self.options.on_event(done.describe())


@contextmanager
def _kept_alive(lease: Lease, every: float = 5.0) -> Iterator[None]:
    """A copy may take longer than the lease lives: renew it meanwhile (as before each write)."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(every):
            lease.renew_if_needed()

    keeper = threading.Thread(target=renew, name="lease-keeper", daemon=True)
    lease.renew_if_needed()
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()
        lease.renew_if_needed()


def _writes_to(plan: Plan, adoptions: Sequence[Adoption]) -> set[str]:
    return {step.model for step in plan.steps} | {a.model for a in adoptions}


def merge_reports(
    applied: Sequence[tuple[SitePlan, ApplyReport]],
    planned: Sequence[SitePlan],
    opened: Sequence[OpenSite],
) -> ApplyReport:
    """The sites' reports as one (one site: its report unchanged). Sites not applied (a site
    before them failed) show their plan with no results."""
    if len(applied) == 1 and len(opened) == 1:
        return applied[0][1]
    done = {id(site_plan): report for site_plan, report in applied}
    plan = combine(
        [replace(p, plan=done[id(p)].plan) if id(p) in done else p for p in planned],
        opened,
    )
    reports = [report for _p, report in applied]
    return ApplyReport(
        plan,
        tuple(x for r in reports for x in r.results),
        tuple(x for r in reports for x in r.repairs),
        tuple(x for r in reports for x in r.bookkeeping_errors),
        tuple(x for r in reports for x in r.adoptions),
        next((r.interrupted for r in reports if r.interrupted), None),
        copies=tuple(x for r in reports for x in r.copies),
    )
