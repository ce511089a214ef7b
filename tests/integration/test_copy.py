"""Copying a version between two real registries (issue 17): `mlflow_server` (artifacts in a
folder the client writes into) and `prod_server` (artifacts proxied, `mlflow-artifacts:/`), a
real sklearn model loaded back with mlflow.pyfunc.load_model from the copy."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.apply.copying import CopyResult, ensure_copy
from reconciler.errors import RegistryError
from reconciler.registry.artifacts import ArtifactFile, Artifacts, content_digest
from reconciler.registry.fake import FakeRegistry
from reconciler.registry.lineage import COPY_EXPERIMENT, Lineage, find_copy
from reconciler.registry.mlflow_registry import MlflowRegistry
from tests.support.copy_models import log_models, predictions, start_copy
from tests.support.proxy import Fault, RecordingProxy

pytestmark = pytest.mark.integration

EXTRA_BYTES = 300_000  # version 1 carries a weights file of this size beside the model


@pytest.fixture(scope="module")
def dev_models(mlflow_server: str) -> tuple[str, dict[str, dict[str, str]]]:
    """`churn-<id>` in the dev registry: v1 from a run's artifacts, v2 a LoggedModel."""
    name = f"churn-{uuid.uuid4().hex[:8]}"
    return name, log_models(mlflow_server, name, EXTRA_BYTES)


def _copy(
    source: MlflowRegistry, target: MlflowRegistry, name: str, version: str, into: str, **kw: Any
) -> CopyResult:
    wanted = Lineage(source.describe(), name, version, None)
    return ensure_copy(source, target, wanted, target.read_versions(into), model=into, **kw)


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_premises(dev_models: tuple[str, dict[str, dict[str, str]]], mlflow_server: str) -> None:
    """What the registries give the copy to work with (measured, design notes "Issue 17")."""
    name, versions = dev_models
    assert versions["1"]["source"].startswith("/")  # a plain folder
    assert versions["2"]["source"].startswith("models:/m-")  # MLflow 3 LoggedModel
    assert versions["3"]["source"].startswith("runs:/")
    listing = MlflowRegistry(mlflow_server).version_artifacts(name, "1")
    assert "weights.bin" in {f.path for f in listing.files}
    assert listing.total_bytes > EXTRA_BYTES


def test_a_copy_into_a_proxied_registry_predicts_the_same_and_is_made_once(
    dev_models: tuple[str, dict[str, dict[str, str]]], mlflow_server: str, prod_server: str
) -> None:
    name, _versions = dev_models
    into = f"{name}-prod"
    source, target = MlflowRegistry(mlflow_server), MlflowRegistry(prod_server)
    first = _copy(source, target, name, "1", into)
    second = _copy(source, target, name, "2", into)  # the LoggedModel (models:/<id>) source
    assert (first.copied, second.copied) == (True, True)
    assert (first.version.version, second.version.version) == ("1", "2")
    copied = _client(prod_server).get_model_version(into, "1")
    assert copied.source.startswith("mlflow-artifacts:/")
    assert copied.status == "READY"
    lineage = Lineage.of(first.version)
    assert lineage is not None
    assert (lineage.registry, lineage.model, lineage.version) == (mlflow_server, name, "1")
    assert lineage.size == first.bytes == source.version_artifacts(name, "1").total_bytes
    assert target.version_artifacts(into, "1") == source.version_artifacts(name, "1")
    assert target.version_artifacts(into, "2") == source.version_artifacts(name, "2")
    third = _copy(source, target, name, "3", into)  # a `runs:/` source
    assert target.version_artifacts(into, third.version.version) == source.version_artifacts(
        name, "1"
    )
    # What a serving job loads from each registry predicts the same.
    found = predictions(
        [
            (mlflow_server, f"models:/{name}/1"),
            (prod_server, f"models:/{into}/1"),
            (mlflow_server, f"models:/{name}/2"),
            (prod_server, f"models:/{into}/2"),
        ]
    )
    v1_dev, v1_prod, v2_dev, v2_prod = found.values()
    assert v1_dev == v1_prod
    assert v2_dev == v2_prod
    assert v1_dev != v2_dev  # the premise: two different models
    # Again, through a recording proxy: found by lineage, nothing written.
    proxy = RecordingProxy(prod_server)
    try:
        again = _copy(source, MlflowRegistry(proxy.url), name, "1", into)
        assert (again.copied, again.version.version, again.bytes) == (False, "1", 0)
        assert proxy.writes() == []
    finally:
        proxy.close()
    assert sorted(target.read_versions(into)) == ["1", "2", "3"]


def test_a_copy_from_a_proxied_registry_into_a_folder_store(
    dev_models: tuple[str, dict[str, dict[str, str]]], mlflow_server: str, prod_server: str
) -> None:
    """Both ways: the proxied registry as the source (downloads through its server)."""
    name, _versions = dev_models
    into = f"{name}-stage"
    dev, prod = MlflowRegistry(mlflow_server), MlflowRegistry(prod_server)
    _copy(dev, prod, name, "2", into)
    back = _copy(prod, dev, into, "1", f"{name}-back")
    assert back.copied
    assert dev.version_artifacts(f"{name}-back", "1") == dev.version_artifacts(name, "2")


def _deleted_runs(uri: str, run_ids: set[str]) -> set[str]:
    client = _client(uri)
    return {r for r in run_ids if client.get_run(r).info.lifecycle_stage == "deleted"}


def _copy_runs(uri: str, into: str) -> dict[str, str]:
    from mlflow.entities import ViewType

    client = _client(uri)
    experiment = client.get_experiment_by_name(COPY_EXPERIMENT)
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`reconciler.copy.target_model` = '{into}'",
        run_view_type=ViewType.ALL,
    )
    return {run.info.run_id: run.info.status for run in runs}


@pytest.fixture
def slow_prod(prod_server: str) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(prod_server)
    try:
        yield proxy
    finally:
        proxy.close()


def test_a_copy_killed_mid_upload_converges_to_one_ready_version(
    dev_models: tuple[str, dict[str, dict[str, str]]],
    mlflow_server: str,
    prod_server: str,
    slow_prod: RecordingProxy,
) -> None:
    name, _versions = dev_models
    into = f"{name}-killed"
    # The first file goes through, every later upload hangs: the copy is mid-upload.
    slow_prod.faults.append(
        Fault("hang", "/mlflow-artifacts/artifacts/", times=100, skip=1, hang_seconds=20)
    )
    copier = start_copy(mlflow_server, slow_prod.url, name, "1", into)
    deadline = time.monotonic() + 90
    while sum(m == "PUT" for m, _p in slow_prod.requests) < 2:
        assert copier.poll() is None, copier.communicate()
        assert time.monotonic() < deadline, "the copy never started uploading"
        time.sleep(0.05)
    os.kill(copier.pid, signal.SIGKILL)
    copier.communicate(timeout=10)
    target = MlflowRegistry(prod_server)
    assert target.read_versions(into) == {}  # killed before any version existed
    (half,) = _copy_runs(prod_server, into).items()
    assert half[1] == "RUNNING"
    result = _copy(MlflowRegistry(mlflow_server), target, name, "1", into)
    assert result.copied
    versions = target.read_versions(into)
    assert list(versions) == ["1"]
    assert versions["1"].status == "READY"
    assert find_copy(versions, mlflow_server, name, "1") == versions["1"]
    assert _deleted_runs(prod_server, {half[0]}) == {half[0]}
    assert _copy_runs(prod_server, into)[half[0]] == "FAILED"
    assert target.version_artifacts(into, "1") == MlflowRegistry(mlflow_server).version_artifacts(
        name, "1"
    )


def _stored_file(uri: str, model: str, version: str, path: str) -> Path:
    source = _client(uri).get_model_version_download_uri(model, version)
    return Path(source) / path


def test_an_overwritten_file_of_a_copy_is_refused_with_one_line(
    dev_models: tuple[str, dict[str, dict[str, str]]], mlflow_server: str, prod_server: str
) -> None:
    """The copy lives in mlflow_server's folder store, where a test can overwrite a file."""
    name, _versions = dev_models
    into = f"{name}-tampered"
    dev, prod = MlflowRegistry(mlflow_server), MlflowRegistry(prod_server)
    _copy(dev, prod, name, "1", f"{name}-src")
    made = _copy(prod, dev, f"{name}-src", "1", into)
    weights = _stored_file(mlflow_server, into, made.version.version, "weights.bin")
    original = weights.read_bytes()
    # Same size, other bytes: the listing cannot see it, the full check does.
    weights.write_bytes(bytes(b ^ 1 for b in original[:10]) + original[10:])
    assert not _copy(prod, dev, f"{name}-src", "1", into).copied
    with pytest.raises(RegistryError) as changed:
        _copy(prod, dev, f"{name}-src", "1", into, full_check=True)
    message = str(changed.value)
    assert "\n" not in message
    assert message.startswith(f"{into} v1 in {mlflow_server}, the copy of {name}-src v1 of ")
    assert "holds content sha256:" in message
    # Truncated: the cheap check (a listing, no download) refuses it.
    weights.write_bytes(original[:1000])
    with pytest.raises(RegistryError, match=r"holds \d+ bytes where its lineage records \d+"):
        _copy(prod, dev, f"{name}-src", "1", into)
    assert list(dev.read_versions(into)) == ["1"]  # refused, never copied over


def test_a_checked_run_left_unregistered_is_registered_without_uploading_again(
    dev_models: tuple[str, dict[str, dict[str, str]]], mlflow_server: str, prod_server: str
) -> None:
    """As if killed between the check and create_model_version: the version is gone, its
    checked run is there; the next copy registers that run (downloaded back and checked once
    more), with no upload."""
    name, _versions = dev_models
    into = f"{name}-resumed"
    dev = MlflowRegistry(mlflow_server)
    first = _copy(dev, MlflowRegistry(prod_server), name, "2", into)
    _client(prod_server).delete_model_version(into, first.version.version)
    proxy = RecordingProxy(prod_server)
    try:
        again = _copy(dev, MlflowRegistry(proxy.url), name, "2", into)
        sent = proxy.writes()
    finally:
        proxy.close()
    assert again.copied
    assert again.version.run_id == first.version.run_id
    assert [path for method, path in sent if method == "PUT"] == []
    assert [path for _m, path in sent if "model-versions/create" in path] == [
        "/api/2.0/mlflow/model-versions/create"
    ]
    assert list(MlflowRegistry(prod_server).read_versions(into)) == [again.version.version]


# -- the copy port's contract, on the fake and on the real server: keeps the fake honest --

FILES = {"MLmodel": b"flavors: {}\n", "sub/deep/w.bin": b"\x00\x01" * 500, "a.txt": b"x"}


@pytest.fixture(params=["fake", "real"])
def seeded(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[FakeRegistry | MlflowRegistry, str]:
    """A registry holding version 1 of a new model whose artifacts are FILES; its name."""
    name = f"contract-{uuid.uuid4().hex[:8]}"
    if request.param == "fake":
        fake = FakeRegistry("dev")
        fake.create_version(name, files=FILES)
        return fake, name
    url = str(request.getfixturevalue("mlflow_server"))
    for path, data in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    client = _client(url)
    run = client.create_run("0")
    client.log_artifacts(run.info.run_id, str(tmp_path), "model")
    client.create_registered_model(name)
    client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
    return MlflowRegistry(url), name


def test_contract_listing_download_and_register_copy(
    seeded: tuple[FakeRegistry | MlflowRegistry, str], tmp_path: Path
) -> None:
    registry, name = seeded
    expected = Artifacts(tuple(ArtifactFile(p, len(b)) for p, b in FILES.items()))
    assert registry.version_artifacts(name, "1") == expected
    folder = tmp_path / "download"
    folder.mkdir()
    assert registry.download_version(name, "1", folder) == expected
    assert {p: (folder / p).read_bytes() for p in FILES} == FILES
    lineage = Lineage("fake://elsewhere", "churn", "7", "run-7", content_digest(folder), 1001)
    # A digest the upload cannot match: refused, nothing registered, the model not even made.
    wrong = replace(lineage, digest="sha256:" + "0" * 64)
    with pytest.raises(RegistryError, match="does not match: uploaded sha256:"):
        registry.register_copy(f"{name}-copy", folder, wrong)
    assert registry.read_versions(f"{name}-copy") == {}
    made = registry.register_copy(f"{name}-copy", folder, lineage)
    assert (made.version, made.status) == ("1", "READY")
    assert Lineage.of(made) == lineage
    assert made.run_id
    assert registry.read_versions(f"{name}-copy")["1"].tags == lineage.tags()
    assert registry.version_artifacts(f"{name}-copy", "1") == expected
