"""The released package as a user gets it: the wheel and sdist built by `python -m build` from a
clean copy of the tree, a local wheelhouse standing in for the package index, and a fresh
virtualenv outside any checkout with the wheel installed from that wheelhouse alone.

The wheelhouse is filled once per run by `pip download`, constrained to the versions of the test
environment (so pip's cache answers and nothing newer sneaks in); after that every install is
`--no-index`: no network, and nothing from this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


def _run(
    args: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def clean_tree(dest: Path) -> Path:
    """The files git would commit (tracked, or new and not ignored), as they are on disk: no
    virtualenv, cache or build output of this checkout reaches the build."""
    listed = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO)
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet committed
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return dest


def build(workdir: Path) -> Dist:
    """`python -m build` (isolated, as the release workflow runs it): the sdist, then the wheel
    built from that sdist, so a file missing from the sdist breaks the wheel too."""
    tree = clean_tree(workdir / "tree")
    out = workdir / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(tree)])
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Dist(wheel, sdist)


def wheelhouse(dist: Dist, dest: Path) -> Path:
    """The wheel and every dependency it needs, as wheels, in one folder."""
    dest.mkdir(parents=True, exist_ok=True)
    frozen = _run([str(PYTHON_BIN / "pip"), "freeze", "--exclude-editable"])
    constraints = dest.parent / "constraints.txt"
    constraints.write_text(
        "".join(
            line + "\n"
            for line in frozen.splitlines()
            if not line.lower().startswith(("mlflow-reconciler", "mlflow_reconciler"))
        )
    )
    _run(
        [str(PYTHON_BIN / "pip"), "download", "--quiet", "--only-binary", ":all:",
         "--dest", str(dest), "--constraint", str(constraints), str(dist.wheel)]
    )  # fmt: skip
    return dest


def offline_pip_env(house: Path) -> dict[str, str]:
    """This process's environment for pip installs from the wheelhouse alone: this machine's
    pip settings (its extra indexes, find-links, constraints) are left out, the index is off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": str(house), "PIP_NO_INDEX": "1"}


def fresh_venv(house: Path, dest: Path, requirement: str) -> Path:
    """A new virtualenv at `dest` with `requirement` installed from the wheelhouse; its bin."""
    _run([sys.executable, "-m", "venv", str(dest)])
    _run([str(dest / "bin" / "pip"), "install", "--quiet", requirement], cwd=dest,
         env=offline_pip_env(house))  # fmt: skip
    return dest / "bin"
