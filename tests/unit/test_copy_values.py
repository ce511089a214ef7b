"""The pure values of a copy between registries: artifact listings, digests, lineage tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.registry.artifacts import ArtifactFile, Artifacts, content_digest
from reconciler.registry.lineage import (
    CHECKED,
    RUN_STATUS,
    UPLOADING,
    CopyRun,
    Lineage,
    find_copy,
    run_tags,
    sort_runs,
)
from reconciler.registry.mlflow_registry import MlflowRegistry
from reconciler.registry.values import ModelVersion

LINEAGE = Lineage("http://dev:5000", "churn", "7", "run-7", "sha256:ab", 1234)


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def test_artifacts_sort_and_sum() -> None:
    listing = Artifacts((ArtifactFile("b", 2), ArtifactFile("a/x", 3)))
    assert [f.path for f in listing.files] == ["a/x", "b"]
    assert listing.total_bytes == 5


def test_manifest_digest_sees_paths_and_sizes_only() -> None:
    one = Artifacts((ArtifactFile("MLmodel", 10), ArtifactFile("model.pkl", 20)))
    assert one.manifest_digest() == Artifacts(tuple(reversed(one.files))).manifest_digest()
    assert one.manifest_digest() != Artifacts((ArtifactFile("MLmodel", 10),)).manifest_digest()
    resized = Artifacts((ArtifactFile("MLmodel", 10), ArtifactFile("model.pkl", 21)))
    assert one.manifest_digest() != resized.manifest_digest()
    assert one.manifest_digest().startswith("sha256:")


def test_of_folder_lists_files_recursively_without_folders(tmp_path: Path) -> None:
    _folder(tmp_path, {"MLmodel": b"x", "sub/deep/w.bin": b"12345"})
    (tmp_path / "empty").mkdir()
    assert Artifacts.of_folder(tmp_path).files == (
        ArtifactFile("MLmodel", 1),
        ArtifactFile("sub/deep/w.bin", 5),
    )


def test_content_digest_changes_with_any_byte_or_name(tmp_path: Path) -> None:
    base = content_digest(_folder(tmp_path / "a", {"MLmodel": b"abc", "m/w": b"xyz"}))
    same = content_digest(_folder(tmp_path / "b", {"m/w": b"xyz", "MLmodel": b"abc"}))
    byte = content_digest(_folder(tmp_path / "c", {"MLmodel": b"abd", "m/w": b"xyz"}))
    name = content_digest(_folder(tmp_path / "d", {"MLmodeL": b"abc", "m/w": b"xyz"}))
    # The bytes moved from one file's end to the next file's start: the sizes tell them apart.
    moved = content_digest(_folder(tmp_path / "e", {"MLmodel": b"ab", "m/w": b"cxyz"}))
    assert base == same
    assert len({base, byte, name, moved}) == 4
    (tmp_path / "a" / "empty").mkdir()
    assert content_digest(tmp_path / "a") == base


def test_lineage_tags_round_trip() -> None:
    tags = LINEAGE.tags()
    assert tags == {
        "reconciler.copy.source_registry": "http://dev:5000",
        "reconciler.copy.source_model": "churn",
        "reconciler.copy.source_version": "7",
        "reconciler.copy.source_run": "run-7",
        "reconciler.copy.digest": "sha256:ab",
        "reconciler.copy.bytes": "1234",
    }
    assert Lineage.of(ModelVersion("churn", "1", tags={**tags, "other": "x"})) == LINEAGE


def test_lineage_without_run_and_of_a_version_that_is_no_copy() -> None:
    runless = Lineage("fake://dev", "churn", "2", None)
    assert "reconciler.copy.source_run" not in runless.tags()
    assert Lineage.of(ModelVersion("churn", "1", tags=runless.tags())) == runless
    assert Lineage.of(ModelVersion("churn", "1", tags={"reconciler.copy.digest": "x"})) is None
    edited = {**LINEAGE.tags(), "reconciler.copy.bytes": "lots"}
    found = Lineage.of(ModelVersion("churn", "1", tags=edited))
    assert found is not None
    assert found.size == -1


def _copy(version: str, lineage: Lineage) -> ModelVersion:
    return ModelVersion("churn", version, tags=lineage.tags())


def test_find_copy_by_lineage_lowest_number_first() -> None:
    other_version = Lineage("http://dev:5000", "churn", "8", "run-8")
    other_registry = Lineage("http://qa:5000", "churn", "7", "run-7")
    versions = {
        "1": ModelVersion("churn", "1"),
        "2": _copy("2", other_version),
        "3": _copy("3", other_registry),
        "11": _copy("11", LINEAGE),
        "9": _copy("9", LINEAGE),
    }
    found = find_copy(versions, "http://dev:5000", "churn", "7")
    assert found is not None
    assert found.version == "9"
    assert find_copy(versions, "http://dev:5000", "churn", "6") is None
    assert find_copy({}, "http://dev:5000", "churn", "7") is None


@pytest.mark.parametrize(
    ("status", "finished", "digest", "reused"),
    [
        pytest.param(CHECKED, True, LINEAGE.digest, True, id="checked"),
        pytest.param(UPLOADING, False, LINEAGE.digest, False, id="killed-mid-upload"),
        pytest.param(CHECKED, False, LINEAGE.digest, False, id="checked-not-finished"),
        pytest.param(CHECKED, True, "sha256:other", False, id="source-changed"),
    ],
)
def test_sort_runs(status: str, finished: bool, digest: str, reused: bool) -> None:
    tags = {**run_tags(LINEAGE, "churn"), RUN_STATUS: status, "reconciler.copy.digest": digest}
    run = CopyRun("r1", tags, finished)
    checked = {RUN_STATUS: CHECKED}
    strangers = [
        CopyRun("r2", {**run_tags(Lineage("x", "churn", "7", None), "churn"), **checked}, True),
        CopyRun("r3", {**run_tags(LINEAGE, "churn-b"), **checked}, False),  # another model's
    ]
    keep, discard = sort_runs([run, *strangers], LINEAGE, "churn")
    assert (keep, discard) == ((run, []) if reused else (None, [run]))


def test_sort_runs_keeps_one_checked_run_and_discards_the_others() -> None:
    tags = {**run_tags(LINEAGE, "churn"), RUN_STATUS: CHECKED}
    first, second = CopyRun("r1", tags, True), CopyRun("r2", tags, True)
    assert sort_runs([first, second], LINEAGE, "churn") == (first, [second])
    other = Lineage("http://dev:5000", "churn", "8", None)
    assert sort_runs([first], other, "churn") == (None, [])


@pytest.mark.parametrize(
    ("uri", "described"),
    [
        pytest.param("http://127.0.0.1:5000", "http://127.0.0.1:5000", id="plain"),
        pytest.param(
            "https://user:s3cret@mlflow.example/", "https://mlflow.example", id="userinfo"
        ),
        pytest.param("https://h/mlflow/?token=abc", "https://h/mlflow/?token=***", id="query"),
        pytest.param("sqlite:////tmp/x/mlflow.db", "sqlite:////tmp/x/mlflow.db", id="sqlite"),
    ],
)
def test_the_mlflow_registry_describes_itself_without_credentials(uri: str, described: str) -> None:
    """The source registry's identity in lineage tags: credentials never, and not masked either
    (the same registry reached with other credentials holds the same copies)."""
    assert MlflowRegistry(uri).describe() == described
