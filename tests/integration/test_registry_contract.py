"""The same contract on the in-memory fake and on a real `mlflow server`: keeps the fake honest."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.errors import RegistryError
from reconciler.pins.values import PRODUCTION, STAGING
from reconciler.registry import mlflow_registry
from reconciler.registry.base import Registry
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.mlflow_registry import MlflowRegistry
from reconciler.registry.values import ARCHIVED, NONE_STAGE
from tests.integration.conftest import BACKENDS, Seeder, backend_url
from tests.support.proxy import RecordingProxy

# make(name, stages) creates a model with one version per entry, in that stage (no archiving).
Make = Callable[[str, list[str]], None]


@pytest.fixture(params=[pytest.param("fake", id="fake"), *BACKENDS])
def registry_and_maker(
    request: pytest.FixtureRequest,
) -> tuple[Registry, Make, Callable[[str], str]]:
    suffix = uuid.uuid4().hex[:8]

    def unique(base: str) -> str:
        return f"{base}-{suffix}"

    if request.param == "fake":
        fake = FakeRegistry()

        def make_fake(name: str, stages: list[str]) -> None:
            fake.create_model(name)
            for stage in stages:
                fake.create_version(name, stage=stage, run_id="r")

        return fake, make_fake, unique

    url = backend_url(request, request.param)
    seeder = Seeder(url)

    def make_real(name: str, stages: list[str]) -> None:
        versions = seeder.model(name, [0.5] * len(stages))
        for version, stage in zip(versions, stages, strict=True):
            if stage != NONE_STAGE:
                seeder.stage(name, version, stage)

    return MlflowRegistry(url), make_real, unique


Fixture = tuple[Registry, Make, Callable[[str], str]]


def stages_of(registry: Registry, name: str) -> dict[str, str]:
    return {v: mv.stage for v, mv in registry.read([name]).models[name].versions.items()}


def test_read_normalises_versions_and_stages(registry_and_maker: Fixture) -> None:
    registry, make, unique = registry_and_maker
    name = unique("read")
    make(name, [PRODUCTION, STAGING, NONE_STAGE, ARCHIVED])
    state = registry.read([name])
    versions = state.models[name].versions
    assert sorted(versions) == ["1", "2", "3", "4"]
    assert {v: mv.stage for v, mv in versions.items()} == {
        "1": PRODUCTION,
        "2": STAGING,
        "3": NONE_STAGE,
        "4": ARCHIVED,
    }
    assert all(mv.status == "READY" for mv in versions.values())
    assert all(isinstance(mv.run_id, str) and mv.run_id for mv in versions.values())


def test_unasked_models_still_show_their_stages(registry_and_maker: Fixture) -> None:
    registry, make, unique = registry_and_maker
    other = unique("other")
    make(other, [PRODUCTION, STAGING, NONE_STAGE])
    model = registry.read([]).models[other]
    assert model.in_stage(PRODUCTION) == ["1"]
    assert model.in_stage(STAGING) == ["2"]


def test_transition_archives_only_that_stage(registry_and_maker: Fixture) -> None:
    registry, make, unique = registry_and_maker
    name = unique("promote")
    make(name, [PRODUCTION, STAGING, NONE_STAGE])
    registry.transition_stage(name, "3", PRODUCTION, archive_existing=True)
    assert stages_of(registry, name) == {"1": ARCHIVED, "2": STAGING, "3": PRODUCTION}


def test_transition_without_archiving_leaves_two(registry_and_maker: Fixture) -> None:
    registry, make, unique = registry_and_maker
    name = unique("drift")
    make(name, [PRODUCTION, NONE_STAGE])
    registry.transition_stage(name, "2", PRODUCTION, archive_existing=False)
    assert stages_of(registry, name) == {"1": PRODUCTION, "2": PRODUCTION}
    registry.transition_stage(name, "1", ARCHIVED, archive_existing=False)
    assert stages_of(registry, name) == {"1": ARCHIVED, "2": PRODUCTION}


def test_aliases(registry_and_maker: Fixture) -> None:
    registry, make, unique = registry_and_maker
    name = unique("alias")
    make(name, [NONE_STAGE, NONE_STAGE])
    registry.set_alias(name, "champion", "1")
    registry.set_alias(name, "shadow", "1")
    registry.set_alias(name, "champion", "2")
    assert dict(registry.read([name]).models[name].aliases) == {"champion": "2", "shadow": "1"}
    # Archiving does not move aliases (DESIGN §6).
    registry.transition_stage(name, "2", ARCHIVED, archive_existing=False)
    assert registry.read([name]).models[name].aliases["champion"] == "2"


@pytest.mark.parametrize("stage", [ARCHIVED, NONE_STAGE])
def test_never_sends_archive_existing_towards_archived_or_none(
    registry_and_maker: Fixture, stage: str
) -> None:
    registry, make, unique = registry_and_maker
    name = unique("guard")
    make(name, [PRODUCTION])
    with pytest.raises(RegistryError, match="archive_existing"):
        registry.transition_stage(name, "1", stage, archive_existing=True)
    assert stages_of(registry, name) == {"1": PRODUCTION}


def test_missing_model_or_version_is_a_registry_error(registry_and_maker: Fixture) -> None:
    registry, make, unique = registry_and_maker
    name = unique("missing")
    make(name, [NONE_STAGE])
    with pytest.raises(RegistryError):
        registry.transition_stage(name, "7", PRODUCTION, archive_existing=True)
    with pytest.raises(RegistryError):
        registry.set_alias(unique("ghost"), "champion", "1")


def test_mlflow_read_paginates(
    mlflow_server: str, seeder: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [seeder.name(f"page{i}") for i in range(3)]
    for name in names:
        seeder.model(name, [0.1, 0.2, 0.3])
        seeder.stage(name, "2", PRODUCTION)
    # Our own page sizes, shrunk so three models and nine versions need several pages and chunks.
    monkeypatch.setattr(mlflow_registry, "MODELS_PAGE", 2)
    monkeypatch.setattr(mlflow_registry, "VERSIONS_PAGE", 2)
    monkeypatch.setattr(mlflow_registry, "NAMES_PER_FILTER", 2)
    state = MlflowRegistry(mlflow_server).read(names)
    for name in names:
        assert sorted(state.models[name].versions) == ["1", "2", "3"]
        assert state.models[name].in_stage(PRODUCTION) == ["2"]


def test_mlflow_model_names_with_quotes(mlflow_server: str, seeder: Seeder) -> None:
    name = seeder.name("it's")
    seeder.model(name, [0.1])
    state: Any = MlflowRegistry(mlflow_server).read([name])
    assert sorted(state.models[name].versions) == ["1"]


def test_model_tags(registry_and_maker: Fixture) -> None:
    registry, make, unique = registry_and_maker
    name = unique("tags")
    assert registry.get_model_tag(name, "k") is None  # no such model
    with pytest.raises(RegistryError):
        registry.set_model_tag(name, "k", "v")
    registry.set_model_tag(name, "k", "v1", create_model=True)
    registry.set_model_tag(name, "k", "v2", create_model=True)  # already there: fine
    assert registry.get_model_tag(name, "k") == "v2"
    assert registry.get_model_tag(name, "other") is None
    registry.delete_model_tag(name, "k")
    registry.delete_model_tag(name, "k")  # already gone: fine
    assert registry.get_model_tag(name, "k") is None
    make(unique("tags-existing"), [NONE_STAGE])
    registry.set_model_tag(unique("tags-existing"), "k", "x")
    assert registry.get_model_tag(unique("tags-existing"), "k") == "x"


def test_read_model(registry_and_maker: Fixture) -> None:
    registry, make, unique = registry_and_maker
    name = unique("one")
    make(name, [PRODUCTION, NONE_STAGE])
    registry.set_alias(name, "champion", "1")
    model = registry.read_model(name)
    assert model is not None
    assert {v: mv.stage for v, mv in model.versions.items()} == {"1": PRODUCTION, "2": NONE_STAGE}
    assert dict(model.aliases) == {"champion": "1"}
    assert registry.read_model(unique("absent")) is None


def test_read_versions(registry_and_maker: Fixture) -> None:
    """Every version with its stage, in one request: the compare-and-set re-read of a stage
    change needs nothing else."""
    registry, make, unique = registry_and_maker
    name = unique("versions")
    make(name, [PRODUCTION, PRODUCTION, NONE_STAGE])
    versions = registry.read_versions(name)
    assert {v: mv.stage for v, mv in versions.items()} == {
        "1": PRODUCTION,
        "2": PRODUCTION,
        "3": NONE_STAGE,
    }
    assert registry.read_versions(unique("absent")) == {}


def test_mlflow_every_write_is_one_http_call(seeder: Seeder, proxy: RecordingProxy) -> None:
    """MlflowClient GETs the model before each write (DESIGN §6); the adapter's writes go through
    MLflow's registry client: one request each, and never a request known to fail."""
    name = seeder.name("calls")
    seeder.model(name, [0.1, 0.2])
    registry = MlflowRegistry(proxy.url)
    writes: list[tuple[str, Callable[[], None]]] = [
        ("transition", lambda: registry.transition_stage(name, "1", PRODUCTION, archive_existing=True)),
        ("plain transition", lambda: registry.transition_stage(name, "2", STAGING, archive_existing=False)),
        ("set alias", lambda: registry.set_alias(name, "champion", "1")),
        ("delete alias", lambda: registry.delete_alias(name, "champion")),
        ("model tag", lambda: registry.set_model_tag(name, "k", "v")),
        ("model tag, create if needed", lambda: registry.set_model_tag(name, "k", "w", create_model=True)),
        ("version tag", lambda: registry.set_version_tag(name, "1", "k", "v")),
        ("delete model tag", lambda: registry.delete_model_tag(name, "k")),
    ]  # fmt: skip
    counts = {}
    for label, write in writes:
        proxy.clear()
        write()
        counts[label] = len(proxy.requests)
    assert counts == {label: 1 for label, _write in writes}
    assert seeder.stages(name) == {"1": PRODUCTION, "2": STAGING}

    # A model that does not exist yet (the lease's first write): the tag is refused as missing,
    # then the model is created and tagged. No create is sent for a model that exists.
    fresh = seeder.name("calls-new")
    proxy.clear()
    registry.set_model_tag(fresh, "k", "v", create_model=True)
    assert [path.split("?")[0].rsplit("/", 2)[-2:] for _m, path in proxy.requests] == [
        ["registered-models", "set-tag"],
        ["registered-models", "create"],
        ["registered-models", "set-tag"],
    ]
    assert registry.get_model_tag(fresh, "k") == "v"


def test_mlflow_reads_each_run_once_per_command(seeder: Seeder, proxy: RecordingProxy) -> None:
    """Policy gates read a run's metrics in the plan, again in the plan made under the lease,
    and the markdown review reads them once more: one request is enough for one command."""
    name = seeder.name("metrics")
    seeder.model(name, [0.7])
    run_id = seeder.client.get_model_version(name, "1").run_id
    registry = MlflowRegistry(proxy.url)
    proxy.requests.clear()
    first = registry.run_metrics(run_id)
    assert registry.run_metrics(run_id) == first == {"accuracy": 0.7}
    assert registry.run_metrics("0" * 32) is None
    assert registry.run_metrics("0" * 32) is None
    assert len([r for r in proxy.requests if "runs/get" in r[1]]) == 2


# -- MLflow 3: LoggedModels and prompts --

# make_logged(name, rows, with_run) -> (version, model_id); rows are (key, value, dataset, step).
MakeLogged = Callable[[str, list[tuple[str, float, str | None, int]], bool], tuple[str, str]]
MakePrompt = Callable[[str, dict[str, str]], None]


@pytest.fixture(params=[pytest.param("fake", id="fake"), *BACKENDS])
def mlflow3(request: pytest.FixtureRequest) -> tuple[Registry, MakeLogged, MakePrompt, str]:
    suffix = uuid.uuid4().hex[:8]
    if request.param == "fake":
        fake = FakeRegistry()

        def make_fake(
            name: str, rows: list[tuple[str, float, str | None, int]], with_run: bool
        ) -> tuple[str, str]:
            model_id = fake.create_logged_model()
            for key, value, dataset, step in rows:
                fake.log_model_metric(model_id, key, value, dataset=dataset, step=step)
            run_id = "r" if with_run else None
            return fake.create_version(name, run_id=run_id, model_id=model_id), model_id

        def prompt_fake(name: str, aliases: dict[str, str]) -> None:
            fake.create_prompt(name, aliases)

        return fake, make_fake, prompt_fake, suffix
    seeder = Seeder(backend_url(request, request.param))
    return MlflowRegistry(backend_url(request, request.param)), (
        seeder.logged_model_version
    ), seeder.prompt, suffix  # fmt: skip


def test_versions_from_logged_models_and_their_metrics(
    mlflow3: tuple[Registry, MakeLogged, MakePrompt, str],
) -> None:
    """The version names its LoggedModel; the LoggedModel returns every value logged (each step
    and dataset, in the order logged), not the last per key; a run-less one gives no run."""
    registry, make_logged, _prompt, suffix = mlflow3
    name = f"logged-{suffix}"
    rows = [("accuracy", 0.8, "eval", 0), ("accuracy", 0.99, "train", 0), ("loss", 0.3, None, 0)]
    rows.append(("loss", 0.2, None, 1))
    with_run, with_run_id = make_logged(name, rows, True)
    runless, runless_id = make_logged(name, [("accuracy", 0.85, None, 0)], False)
    versions = registry.read([name]).models[name].versions
    assert versions[with_run].model_id == with_run_id
    assert versions[with_run].run_id is not None
    assert (versions[runless].model_id, versions[runless].run_id) == (runless_id, None)
    gone = "m-" + "0" * 32
    found = registry.logged_model_metrics([with_run_id, runless_id, gone])
    assert found[gone] is None
    assert [(m.key, m.value, m.dataset, m.step) for m in found[with_run_id] or ()] == rows
    assert [(m.key, m.value, m.dataset) for m in found[runless_id] or ()] == [
        ("accuracy", 0.85, None)
    ]
    stamps = [m.timestamp for m in found[with_run_id] or ()]
    assert stamps == sorted(stamps)
    assert all(stamps)


def test_prompts_are_told_apart(mlflow3: tuple[Registry, MakeLogged, MakePrompt, str]) -> None:
    """Model reads leave prompts out (as MLflow's searches do); a name asked for that is a
    prompt comes back in `prompts`, with its aliases."""
    registry, _make_logged, make_prompt, suffix = mlflow3
    name = f"greeting-{suffix}"
    make_prompt(name, {"production": "1"})
    state = registry.read([name, f"ghost-{suffix}"])
    assert name not in state.models
    assert list(state.prompts) == [name]
    assert state.prompts[name].aliases == {"production": "1"}
    assert registry.read_model(name) is None
    assert name in registry.read_prompts()
    assert registry.read_prompts([f"ghost-{suffix}"]) == {}


def test_mlflow_reads_each_logged_model_once_per_command(
    seeder: Seeder, proxy: RecordingProxy
) -> None:
    """One GET for one or two models, a search for more (the experiments listed first), and
    nothing again for a model already read; a pinned name not found costs one prompt search."""
    name = seeder.name("batch")
    ids = [seeder.logged_model_version(name, [("accuracy", 0.5 + i / 10, None, 0)])[1]
           for i in range(4)]  # fmt: skip
    registry = MlflowRegistry(proxy.url)
    proxy.requests.clear()
    one = registry.logged_model_metrics(ids[:1])
    assert [m.value for m in one[ids[0]] or ()] == [0.5]
    assert registry.logged_model_metrics(ids[:1]) == one
    paths = [path.split("?")[0] for _method, path in proxy.requests]
    assert paths == [f"/api/2.0/mlflow/logged-models/{ids[0]}"]
    proxy.requests.clear()
    many = registry.logged_model_metrics([*ids, "m-" + "0" * 32])
    assert [[m.value for m in many[i] or ()] for i in ids] == [[0.5], [0.6], [0.7], [0.8]]
    assert many["m-" + "0" * 32] is None
    paths = [path.split("?")[0] for _method, path in proxy.requests]
    assert paths == [
        "/api/2.0/mlflow/experiments/search",
        "/api/2.0/mlflow/logged-models/search",
        f"/api/2.0/mlflow/logged-models/{'m-' + '0' * 32}",  # missed by the search: made sure
    ]
    proxy.requests.clear()
    registry.read([name, seeder.name("ghost")])
    assert [p.split("?")[0].rsplit("/", 2)[-2:] for _m, p in proxy.requests] == [
        ["registered-models", "search"],
        ["model-versions", "search"],
        ["registered-models", "search"],  # is the missing name a prompt?
    ]
