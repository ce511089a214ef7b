"""Issue 16: the released package, as a team adopts it. The wheel and sdist are built once per
run from a clean copy of the tree (tests/support/package.py), installed into a fresh virtualenv
outside any checkout from a local wheelhouse, and used from there: `init` a new promotion
repository, `validate`, `import` from a real server, `plan`, `apply`."""

from __future__ import annotations

import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

import reconciler
from tests.support import package

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> package.Dist:
    return package.build(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def wheelhouse(dist: package.Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package.wheelhouse(dist, tmp_path_factory.mktemp("index") / "wheelhouse")


@pytest.fixture(scope="module")
def tool(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `reconciler` of a fresh virtualenv holding the released wheel and its dependencies."""
    folder = tmp_path_factory.mktemp("user")
    bin_dir = package.fresh_venv(
        wheelhouse, folder / "venv", f"mlflow-reconciler=={reconciler.__version__}"
    )
    return bin_dir / "reconciler"


def test_the_wheel_and_sdist_carry_the_package_and_nothing_of_tests(dist: package.Dist) -> None:
    version = reconciler.__version__
    assert dist.wheel.name == f"mlflow_reconciler-{version}-py3-none-any.whl"
    assert dist.sdist.name == f"mlflow_reconciler-{version}.tar.gz"
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"mlflow_reconciler-{version}.dist-info/METADATA").decode()
    assert {name.split("/")[0] for name in names} == {
        "reconciler",
        f"mlflow_reconciler-{version}.dist-info",
    }
    for schema in ("pin", "environment", "defaults"):
        assert f"reconciler/schemas/{schema}.schema.json" in names
    assert "reconciler/py.typed" in names
    assert f"mlflow_reconciler-{version}.dist-info/licenses/LICENSE" in names
    assert f"Version: {version}" in metadata
    assert "Project-URL: Changelog, " in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata
    with tarfile.open(dist.sdist) as sdist:
        top = {Path(name).parts[1] for name in sdist.getnames() if len(Path(name).parts) > 1}
    assert top == {
        "reconciler", "README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml", "PKG-INFO",
        ".gitignore",
    }  # fmt: skip


def test_the_installed_wheel_runs_outside_any_checkout(tool: Path) -> None:
    version = subprocess.run(
        [str(tool), "--version"], cwd=tool.parent, capture_output=True, text=True, check=True
    )
    assert version.stdout == f"reconciler {reconciler.__version__}\n"
    where = subprocess.run(
        [str(tool.parent / "python"), "-c", "import reconciler; print(reconciler.__file__)"],
        cwd=tool.parent, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(tool.parent.parent / "lib"))


def test_the_changelog_has_a_section_for_this_version() -> None:
    changelog = (package.REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(reconciler.__version__)}\]$", changelog, re.M)
