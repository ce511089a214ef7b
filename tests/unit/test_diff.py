"""`diff` on literal tables (pip-tools' test_sync style): registry before, pins, steps expected."""

from __future__ import annotations

import pytest

from reconciler.pins.values import PRODUCTION, STAGING, DesiredState, Environment, Pin
from reconciler.planning.plan import diff
from reconciler.planning.steps import Plan
from reconciler.registry.values import ActualState, ModelVersion, RegisteredModel

ENVS = {
    "production": Environment("production", PRODUCTION),
    "staging": Environment("staging", STAGING),
}


def registry(
    stages: dict[str, str], aliases: dict[str, str] | None = None, **status: str
) -> ActualState:
    """One model `m` whose versions sit in the given stages (`{"1": "Production"}`)."""
    versions = {
        v: ModelVersion("m", v, stage, status.get(f"v{v}", "READY"), run_id=f"run{v}")
        for v, stage in stages.items()
    }
    return ActualState({"m": RegisteredModel("m", versions, aliases or {})})


def desired(
    pins: dict[str, int], envs: dict[str, Environment] = ENVS, run_id: str | None = None
) -> DesiredState:
    return DesiredState(
        environments=envs,
        pins=tuple(
            Pin(env, "m", str(v), f"environments/{env}/m.yaml", run_id=run_id)
            for env, v in pins.items()
        ),
    )


def described(plan: Plan) -> list[str]:
    return [f"{s.environment}: {s.describe()}" for s in plan.steps]


ALL_NONE = {"1": "None", "2": "None", "3": "None"}


@pytest.mark.parametrize(
    ("stages", "pins", "expected"),
    [
        # First apply on a fresh model: highest environment first.
        (
            ALL_NONE,
            {"production": 1, "staging": 2},
            ["production: m: v1 → Production", "staging: m: v2 → Staging"],
        ),
        # In sync: nothing to do.
        ({"1": "Production", "2": "Staging", "3": "None"}, {"production": 1, "staging": 2}, []),
        # Promotion: production takes staging's version, archiving the old champion.
        (
            {"1": "Production", "2": "Staging", "3": "None"},
            {"production": 2, "staging": 3},
            ["production: m: v2 → Production, archives v1", "staging: m: v3 → Staging"],
        ),
        # Same version pinned in both: it belongs in Production; staging is promoted onward.
        (
            {"1": "Production", "2": "Staging", "3": "None"},
            {"production": 2, "staging": 2},
            ["production: m: v2 → Production, archives v1"],
        ),
        ({"1": "Archived", "2": "Production"}, {"production": 2, "staging": 2}, []),
        # Promoted onward but a stray version sits in Staging: archived (never flip-flops v2).
        (
            {"1": "Staging", "2": "Production"},
            {"production": 2, "staging": 2},
            ["staging: m: archive v1 (extra in Staging)"],
        ),
        # Rollback: an archived version comes back.
        (
            {"1": "Archived", "2": "Production", "3": "Staging"},
            {"production": 1, "staging": 3},
            ["production: m: v1 → Production, archives v2"],
        ),
        # Swap: each environment takes the other's version; Production is never empty.
        (
            {"1": "Production", "2": "Staging"},
            {"production": 2, "staging": 1},
            ["production: m: v2 → Production, archives v1", "staging: m: v1 → Staging"],
        ),
        # Drift: two versions in Production (a lost race); the unpinned one is archived.
        (
            {"1": "Production", "2": "Production", "3": "Staging"},
            {"production": 2, "staging": 3},
            ["production: m: archive v1 (extra in Production)"],
        ),
        # Drift: the pinned version was moved away by hand.
        (
            {"1": "Archived", "2": "Production", "3": "Staging"},
            {"production": 1},
            ["production: m: v1 → Production, archives v2"],
        ),
        # Only production pinned: Staging is not managed for this model and is left alone.
        ({"1": "Production", "2": "Staging"}, {"production": 1}, []),
    ],
)
def test_stage_table(stages: dict[str, str], pins: dict[str, int], expected: list[str]) -> None:
    plan = diff(desired(pins), registry(stages))
    assert not plan.problems
    assert described(plan) == expected


ALIAS_ENVS = {
    "production": Environment("production", PRODUCTION, "champion"),
    "staging": Environment("staging", STAGING, "challenger"),
    "shadow": Environment("shadow", None, "shadow"),
}


@pytest.mark.parametrize(
    ("stages", "aliases", "pins", "expected"),
    [
        (
            {"1": "None", "2": "None"},
            {},
            {"production": 1, "shadow": 2},
            [
                "production: m: v1 → Production",
                "production: m: @champion → v1 (new)",
                "shadow: m: @shadow → v2 (new)",
            ],
        ),
        ({"1": "Production"}, {"champion": "1", "shadow": "1"}, {"production": 1, "shadow": 1}, []),
        # An alias moved by hand is moved back; the stage was right.
        (
            {"1": "Production", "2": "None"},
            {"champion": "2"},
            {"production": 1},
            ["production: m: @champion → v1 (from v2)"],
        ),
        # Promoted onward under stages, yet the staging alias still follows the pin.
        (
            {"1": "Production"},
            {"champion": "1"},
            {"production": 1, "staging": 1},
            ["staging: m: @challenger → v1 (new)"],
        ),
    ],
)
def test_alias_table(
    stages: dict[str, str], aliases: dict[str, str], pins: dict[str, int], expected: list[str]
) -> None:
    plan = diff(desired(pins, ALIAS_ENVS), registry(stages, aliases))
    assert described(plan) == expected


def test_entry_statuses_and_current_versions() -> None:
    plan = diff(
        desired({"production": 2, "staging": 2}), registry({"1": "Production", "2": "Staging"})
    )
    by_env = {e.pin.environment: e for e in plan.entries}
    assert by_env["production"].status == "change"
    assert by_env["production"].current == ("1",)
    # Production does not hold v2 yet: staging's line waits on production's change (issue 8 §8).
    assert by_env["staging"].status == "onward_pending"
    assert by_env["staging"].onward_to == "production"


@pytest.mark.parametrize(
    ("actual", "pin_extra", "field", "message"),
    [
        (ActualState({}), {}, "model", "registered model 'm' not found"),
        (registry({"1": "None"}), {}, "version", "m v2 not found in the registry (latest is v1)"),
        (
            registry({"1": "None", "2": "None"}, v2="PENDING_REGISTRATION"),
            {},
            "version",
            "m v2 is PENDING_REGISTRATION, not READY",
        ),
        (
            registry({"1": "None", "2": "None"}),
            {"run_id": "other"},
            "run_id",
            "m v2 comes from run run2, not other",
        ),
    ],
)
def test_pin_problems(
    actual: ActualState, pin_extra: dict[str, str], field: str, message: str
) -> None:
    plan = diff(desired({"production": 2}, run_id=pin_extra.get("run_id")), actual)
    assert [(p.file, p.field, p.message) for p in plan.problems] == [
        ("environments/production/m.yaml", field, message)
    ]
    assert plan.steps == ()


def test_matching_run_id_is_fine() -> None:
    plan = diff(desired({"production": 2}, run_id="run2"), registry({"1": "None", "2": "None"}))
    assert not plan.problems
    assert described(plan) == ["production: m: v2 → Production"]


def test_unmanaged_models_are_listed_not_touched() -> None:
    actual = ActualState(
        {
            "m": RegisteredModel("m", {"1": ModelVersion("m", "1", PRODUCTION)}),
            "legacy": RegisteredModel(
                "legacy",
                {
                    "4": ModelVersion("legacy", "4", PRODUCTION),
                    "5": ModelVersion("legacy", "5", "None"),
                },
            ),
        }
    )
    plan = diff(desired({"production": 1}), actual)
    assert plan.steps == ()
    assert [(u.environment, u.model, u.versions) for u in plan.unmanaged] == [
        ("production", "legacy", ("4",))
    ]


def test_filters_limit_steps_but_not_semantics() -> None:
    # staging alone still knows production owns v2 (promoted onward), so it does not pull it down.
    actual = registry({"1": "Production", "2": "Staging"})
    plan = diff(desired({"production": 2, "staging": 2}), actual, environments=["staging"])
    assert described(plan) == []
    assert [e.status for e in plan.entries] == ["onward_pending"]
    only_prod = diff(desired({"production": 2, "staging": 2}), actual, environments=["production"])
    assert described(only_prod) == ["production: m: v2 → Production, archives v1"]
    other_model = diff(desired({"production": 2}), actual, models=["n"])
    assert other_model.entries == ()
    assert other_model.steps == ()


def test_checksum_is_stable_and_tracks_the_steps() -> None:
    actual = registry({"1": "Production", "2": "Staging"})
    a = diff(desired({"production": 2}), actual)
    b = diff(desired({"production": 2}), actual)
    c = diff(desired({"production": 1, "staging": 1}), registry({"1": "None", "2": "Staging"}))
    assert a.checksum == b.checksum
    assert a.checksum != c.checksum
    assert len(a.checksum) == 64
