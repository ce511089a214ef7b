"""Hypothesis properties of plan + apply on the fake registry (which has its own MLflow rules)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.apply import executor
from reconciler.pins.values import PRODUCTION, STAGING, DesiredState, Environment, Pin
from reconciler.planning.plan import diff
from reconciler.records.bookkeeping import managed_tag
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.values import ARCHIVED, NONE_STAGE

MODELS = ("a", "b", "c")
STAGES = (NONE_STAGE, STAGING, PRODUCTION, ARCHIVED)


@dataclass(frozen=True)
class Scenario:
    versions: dict[str, list[str]]  # model → stage of v1, v2, ...
    aliases: dict[str, dict[str, int]]  # model → alias → version
    environments: dict[str, Environment]
    pins: list[Pin]

    def registry(self) -> FakeRegistry:
        fake = FakeRegistry()
        for model, stages in self.versions.items():
            for stage in stages:
                fake.create_version(model, stage=stage)
            for alias, version in self.aliases.get(model, {}).items():
                fake.set_alias(model, alias, str(version))
        fake.writes.clear()
        return fake

    def desired(self, pins: list[Pin] | None = None) -> DesiredState:
        return DesiredState(self.environments, tuple(self.pins if pins is None else pins))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    production_alias = draw(st.sampled_from([None, "champion"]))
    staging_alias = draw(st.sampled_from([None, "challenger"]))
    environments = {
        "production": Environment("production", PRODUCTION, production_alias),
        "staging": Environment("staging", STAGING, staging_alias),
    }
    if draw(st.booleans()):
        environments["shadow"] = Environment("shadow", None, "shadow")
    models = draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=3, unique=True))
    versions = {m: draw(st.lists(st.sampled_from(STAGES), min_size=1, max_size=5)) for m in models}
    aliases = {
        m: draw(
            st.dictionaries(
                st.sampled_from(["champion", "challenger", "shadow"]),
                st.integers(1, len(versions[m])),
                max_size=3,
            )
        )
        for m in models
    }
    pins = []
    for env in environments:
        for model in models:
            if draw(st.booleans()):
                version = draw(st.integers(1, len(versions[model])))
                pins.append(Pin(env, model, str(version), f"environments/{env}/{model}.yaml"))
    return Scenario(versions, aliases, environments, pins)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_apply_reaches_desired_state_and_replan_is_empty(scenario: Scenario) -> None:
    fake = scenario.registry()
    before = fake.read(MODELS)
    plan = diff(scenario.desired(), before)
    results = executor.apply(plan, fake)
    assert all(r.outcome == "applied" for r in results)

    after = fake.read(MODELS)
    assert diff(scenario.desired(), after).steps == ()

    envs = scenario.environments
    ranks = {name: env.rank for name, env in envs.items()}
    for pin in scenario.pins:
        env = envs[pin.environment]
        model = after.models[pin.model]
        if env.alias:
            assert model.aliases[env.alias] == pin.version
        if env.stage:
            owner = min(
                (
                    p
                    for p in scenario.pins
                    if p.model == pin.model
                    and p.version == pin.version
                    and envs[p.environment].stage
                ),
                key=lambda p: ranks[p.environment],
            )
            expected = [pin.version] if owner.environment == pin.environment else []
            assert model.in_stage(env.stage) == expected

    # Models and stages nobody pinned are never touched.
    pinned_stages = {(p.model, envs[p.environment].stage) for p in scenario.pins}
    for name, model in before.models.items():
        for version in model.versions.values():
            managed = (name, version.stage) in pinned_stages
            now = after.models[name].versions[version.version]
            if (
                not managed
                and version.stage in (PRODUCTION, STAGING)
                and now.stage != version.stage
            ):
                # Only a pinned version may move out of a stage nobody manages for this model.
                assert any(p.model == name and p.version == version.version for p in scenario.pins)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_pin_order_never_changes_the_plan(scenario: Scenario, random: object) -> None:
    actual = scenario.registry().read(MODELS)
    shuffled = list(scenario.pins)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    first = diff(scenario.desired(), actual)
    second = diff(scenario.desired(shuffled), actual)
    assert first.steps == second.steps
    assert first.checksum == second.checksum
    assert first.entries == second.entries


OWNER = "git:test-repository"


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_scoped_applies_never_conflict_with_themselves(
    scenario: Scenario, data: st.DataObject
) -> None:
    """Applying one environment at a time, in any order, never trips compare-and-set on the
    writes of the apply itself, and reaches the desired state."""
    fake = scenario.registry()
    order = data.draw(st.permutations(sorted(scenario.environments)))
    for env in order:
        plan = diff(scenario.desired(), fake.read(MODELS), environments=[env])
        results = executor.apply(plan, fake)
        assert all(r.outcome == "applied" for r in results), [(r.step, r.error) for r in results]
    assert diff(scenario.desired(), fake.read(MODELS)).steps == ()


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_prune_reaches_a_state_with_nothing_left_to_retire(
    scenario: Scenario, data: st.DataObject
) -> None:
    fake = scenario.registry()
    # Some models were managed by this repository in some environments, whatever their pins now.
    for name in scenario.versions:
        for env_name in scenario.environments:
            if data.draw(st.booleans()):
                fake.set_model_tag(name, managed_tag(env_name), OWNER)
    fake.writes.clear()
    plan = diff(scenario.desired(), fake.read(MODELS), prune=True, owner=OWNER)
    results = executor.apply(plan, fake)
    assert all(r.outcome == "applied" for r in results)
    after = diff(scenario.desired(), fake.read(MODELS), prune=True, owner=OWNER)
    assert after.retirements == ()
    assert after.steps == ()
    pinned = {(p.environment, p.model) for p in scenario.pins}
    for retirement in plan.retirements:
        assert (retirement.environment, retirement.model) not in pinned
        env = scenario.environments[retirement.environment]
        model = fake.read(MODELS).models[retirement.model]
        if env.stage:
            assert model.in_stage(env.stage) == []  # no pin wants anything there
        if env.alias:
            assert env.alias not in model.aliases
