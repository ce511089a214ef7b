"""ensure_copy between two fake registries: the copy is made once, checked, resumed after an
interruption, and never served unready or unchecked (the real-server twin: tests/integration/
test_copy.py)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.apply.copying import CopyResult, ensure_copy
from reconciler.errors import CopyStopped, RegistryError
from reconciler.registry.artifacts import content_digest
from reconciler.registry.fake import FakeRegistry, UploadInterrupted
from reconciler.registry.lineage import Lineage
from reconciler.registry.values import READY

FILES = {"MLmodel": b"flavors: {}\n", "model.pkl": b"\x00" * 300, "sub/extra.txt": b"hello"}


def _registries() -> tuple[FakeRegistry, FakeRegistry, Lineage]:
    dev, prod = FakeRegistry("dev"), FakeRegistry("prod")
    dev.create_version("churn", files={"MLmodel": b"old"})
    version = dev.create_version("churn", run_id="run-2", files=FILES)
    return dev, prod, Lineage(dev.describe(), "churn", version, "run-2")


def _copy(
    dev: FakeRegistry,
    prod: FakeRegistry,
    wanted: Lineage,
    *,
    stop: threading.Event | None = None,
    full_check: bool = False,
) -> CopyResult:
    return ensure_copy(dev, prod, wanted, prod.read_versions("churn"), stop, full_check=full_check)


def test_describe_names_the_fake() -> None:
    assert FakeRegistry("prod").describe() == "fake://prod"
    assert FakeRegistry().describe() == "fake://fake"


def test_copies_files_with_lineage_in_one_write_then_finds_it(tmp_path: Path) -> None:
    dev, prod, wanted = _registries()
    result = _copy(dev, prod, wanted)
    assert result.copied
    assert result.bytes == sum(len(b) for b in FILES.values())
    assert (result.version.version, result.version.status) == ("1", READY)
    assert prod.artifacts[("churn", "1")] == FILES
    lineage = Lineage.of(result.version)
    assert lineage is not None
    assert lineage.names("fake://dev", "churn", "2")
    assert lineage.size == result.bytes
    assert lineage.run_id == "run-2"
    assert prod.download_version("churn", "1", tmp_path) == dev.version_artifacts("churn", "2")
    assert lineage.digest == content_digest(tmp_path)
    assert [w for w in prod.writes if w[0] == "register_copy"] == [
        ("register_copy", "churn", "churn", "2")
    ]
    # Once more: found by lineage, nothing uploaded or written.
    uploads, writes = prod.uploads, list(prod.writes)
    again = _copy(dev, prod, wanted)
    assert (again.copied, again.bytes, again.version.version) == (False, 0, "1")
    assert (prod.uploads, prod.writes) == (uploads, writes)


def test_the_copy_of_another_version_or_registry_is_not_this_one() -> None:
    dev, prod, wanted = _registries()
    _copy(dev, prod, wanted)
    older = _copy(dev, prod, Lineage("fake://dev", "churn", "1", None))
    assert older.copied
    assert older.version.version == "2"
    qa = FakeRegistry("qa")
    qa.create_version("churn", files=FILES)
    qa.create_version("churn", files=FILES)
    other = ensure_copy(
        qa, prod, Lineage("fake://qa", "churn", "2", None), prod.read_versions("churn")
    )
    assert other.copied
    assert other.version.version == "3"


def test_an_interrupted_upload_is_discarded_and_copied_again_once() -> None:
    dev, prod, wanted = _registries()
    prod.interrupt_upload_after = 1
    with pytest.raises(UploadInterrupted):
        _copy(dev, prod, wanted)
    assert prod.read_versions("churn") == {}  # nothing registered
    (half,) = prod.copy_runs.values()
    assert (half.status, len(half.files)) == ("RUNNING", 1)
    prod.interrupt_upload_after = None
    result = _copy(dev, prod, wanted)
    assert result.copied
    assert list(prod.read_versions("churn")) == ["1"]
    assert (half.status, half.deleted) == ("FAILED", True)
    assert prod.artifacts[("churn", "1")] == FILES


def test_a_checked_run_left_unregistered_is_registered_without_uploading_again() -> None:
    dev, prod, wanted = _registries()
    result = _copy(dev, prod, wanted)
    lineage = Lineage.of(result.version)
    assert lineage is not None
    # As if killed between the check and create_model_version: the run is there, no version.
    prod._models["churn"].versions.clear()
    uploads = prod.uploads
    again = _copy(dev, prod, wanted)
    assert again.copied
    assert prod.uploads == uploads
    assert [run.status for run in prod.copy_runs.values()] == ["FINISHED"]


def test_an_overwritten_upload_fails_the_check_and_registers_nothing() -> None:
    dev, prod, wanted = _registries()
    prod.after_upload = lambda files: files.update({"model.pkl": b"\x01" * 300})
    with pytest.raises(RegistryError, match=r"does not match: uploaded sha256:\w+, expected") as e:
        _copy(dev, prod, wanted)
    assert "\n" not in str(e.value)
    assert prod.read_versions("churn") == {}
    assert [run.deleted for run in prod.copy_runs.values()] == [True]


def test_an_existing_copy_missing_a_file_or_resized_is_refused() -> None:
    dev, prod, wanted = _registries()
    _copy(dev, prod, wanted)
    prod.remove_file("churn", "1", "sub/extra.txt")
    with pytest.raises(RegistryError) as error:
        _copy(dev, prod, wanted)
    assert str(error.value) == (
        "churn v1 in fake://prod, the copy of churn v2 of fake://dev, holds 312 bytes where "
        "its lineage records 317 (a file is missing or was changed): delete that version to "
        "copy again"
    )


def test_a_same_size_overwrite_shows_only_in_the_full_check() -> None:
    dev, prod, wanted = _registries()
    _copy(dev, prod, wanted)
    prod.overwrite_file("churn", "1", "model.pkl", b"\x02" * 300)
    assert not _copy(dev, prod, wanted).copied  # the listing check cannot see it
    with pytest.raises(RegistryError, match=r"holds content sha256:\w+ where its lineage"):
        _copy(dev, prod, wanted, full_check=True)


def test_a_pending_copy_is_waited_for_and_a_failed_one_named() -> None:
    dev, prod, wanted = _registries()
    prod.copy_status = "PENDING_REGISTRATION"
    assert _copy(dev, prod, wanted).version.status == READY
    # Found by lineage while MLflow still registers it (another apply's copy): waited for.
    versions = prod._models["churn"].versions
    versions["1"] = replace(versions["1"], status="PENDING_REGISTRATION")
    prod.pending_reads[("churn", "1")] = 2
    assert _copy(dev, prod, wanted).version.status == READY
    prod.copy_status = "FAILED_REGISTRATION"
    with pytest.raises(RegistryError, match="churn v2 in fake://prod: FAILED_REGISTRATION"):
        _copy(dev, prod, Lineage("fake://dev", "churn", "1", None))


def test_a_failed_registration_found_by_lineage_is_an_error_naming_it() -> None:
    dev, prod, wanted = _registries()
    prod.create_version("churn", status="FAILED_REGISTRATION", tags=wanted.tags())
    with pytest.raises(RegistryError) as error:
        _copy(dev, prod, wanted)
    assert str(error.value) == (
        "churn v1 in fake://prod is FAILED_REGISTRATION (delete it to copy again)"
    )


def test_a_stop_before_the_copy_makes_nothing() -> None:
    dev, prod, wanted = _registries()
    stop = threading.Event()
    stop.set()
    with pytest.raises(CopyStopped, match="stopped before downloading the copy of churn v2"):
        _copy(dev, prod, wanted, stop=stop)
    assert (prod.uploads, prod.copy_runs, prod.writes) == (0, {}, [])


def test_a_version_without_files_is_not_copied() -> None:
    dev, prod, _wanted = _registries()
    empty = dev.create_version("churn")
    with pytest.raises(RegistryError) as error:
        _copy(dev, prod, Lineage("fake://dev", "churn", empty, None))
    assert (
        str(error.value)
        == "churn v3 of fake://dev has no artifact files to copy (its source is empty)"
    )
    assert (prod.copy_runs, prod.writes) == ({}, [])
