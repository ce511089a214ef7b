"""The guided tour: a promotion and its rollback on MLflow's embedded default registry.

Run through `scripts/demo` (which installs the tool first). Works in a temporary copy of this
repository's `environments/`, in a fresh git repository, with MLflow's default tracking URI
(`sqlite:///mlflow.db` in that folder): no server, nothing touched outside the temp folder.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = "churn-model"
ACCURACIES = (0.81, 0.86, 0.91, 0.72)


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def shell(workdir: Path, *command: str, check: bool = True) -> int:
    print(f"$ {shlex.join(command)}", flush=True)
    done = subprocess.run(command, cwd=workdir, env=_env(), check=False)
    if check and done.returncode not in (0, 2):
        sys.exit(f"demo: `{shlex.join(command)}` failed with exit code {done.returncode}")
    return done.returncode


def _env() -> dict[str, str]:
    # The embedded default registry: no tracking URI, so MLflow uses sqlite:///mlflow.db here.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    env.update(GIT_AUTHOR_NAME="Demo", GIT_AUTHOR_EMAIL="demo@example.invalid")
    env.update(GIT_COMMITTER_NAME="Demo", GIT_COMMITTER_EMAIL="demo@example.invalid")
    return env


def git(workdir: Path, *args: str) -> None:
    shell(workdir, "git", *args)


def create_model(workdir: Path) -> None:
    """What a training pipeline does: a run per candidate, its accuracy, a registered version."""
    os.chdir(workdir)
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # database creation chatter
    client = MlflowClient()
    experiment = client.create_experiment("churn-training")
    client.create_registered_model(MODEL)
    for accuracy in ACCURACIES:
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "accuracy", accuracy)
        client.set_terminated(run.info.run_id)
        version = client.create_model_version(
            MODEL, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        run_id = run.info.run_id[:8]
        print(f"registered {MODEL} v{version.version} (run {run_id}, accuracy {accuracy})")


def show_registry() -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(MODEL).aliases.items():
        aliases.setdefault(str(version), []).append(f"@{alias}")
    print(f"registry: {MODEL}")
    print("  version  accuracy  stage       aliases")
    versions = client.search_model_versions(f"name = '{MODEL}'", order_by=["version_number ASC"])
    for mv in versions:
        accuracy = client.get_run(str(mv.run_id)).data.metrics["accuracy"]
        alias_text = " ".join(aliases.get(str(mv.version), []))
        print(f"  v{mv.version:<7} {accuracy:<9} {mv.current_stage:<11} {alias_text}")


def edit_pin(workdir: Path, environment: str, version: int) -> None:
    path = workdir / "environments" / environment / f"{MODEL}.yaml"
    lines = path.read_text().splitlines()
    path.write_text(
        "\n".join(f"version: {version}" if line.startswith("version:") else line for line in lines)
        + "\n"
    )
    print(f"edited environments/{environment}/{MODEL}.yaml: version: {version}")


def main() -> None:
    warnings.filterwarnings("ignore", message=".*Model registry stages will be removed.*")
    reconciler = shutil.which("reconciler")
    if reconciler is None:
        sys.exit("demo: `reconciler` is not installed; run scripts/demo")
    workdir = Path(tempfile.mkdtemp(prefix="reconciler-demo-"))
    print(f"demo workspace: {workdir}")
    shutil.copytree(REPO / "environments", workdir / "environments")

    banner("1. a git repository with the example pins")
    git(workdir, "init", "-q", "-b", "main")
    git(workdir, "add", "environments")
    git(workdir, "commit", "-q", "-m", "Pin churn-model: production v1, staging v2")

    banner("2. a training pipeline registers four versions (embedded sqlite registry)")
    create_model(workdir)
    show_registry()

    banner("3. validate the pins (offline, no registry)")
    shell(workdir, "reconciler", "validate")

    banner("4. plan: what apply would change")
    shell(workdir, "reconciler", "plan", "--detailed-exitcode")

    banner("5. apply: make the registry match the pins")
    shell(workdir, "reconciler", "apply")
    show_registry()
    shell(workdir, "reconciler", "plan", "--detailed-exitcode")

    banner("6. a pull request promotes v2 to production and v3 to staging")
    edit_pin(workdir, "production", 2)
    edit_pin(workdir, "staging", 3)
    git(workdir, "commit", "-q", "-am", "Promote churn-model v2 to production")
    shell(workdir, "reconciler", "plan", "--format", "markdown")

    banner("7. merging it applies the promotion")
    shell(workdir, "reconciler", "apply", "--format", "json")
    show_registry()

    banner("8. v2 misbehaves: `git revert` is the rollback")
    git(workdir, "revert", "--no-edit", "HEAD")
    shell(workdir, "reconciler", "plan")
    shell(workdir, "reconciler", "apply")
    show_registry()
    code = shell(workdir, "reconciler", "plan", "--detailed-exitcode")
    if code != 0:
        sys.exit("demo: the registry should be in sync after the rollback")

    banner("9. a pull request tries v4 (accuracy 0.72) in production: the gate refuses it")
    edit_pin(workdir, "production", 4)
    code = shell(workdir, "reconciler", "plan", check=False)
    if code != 1:
        sys.exit("demo: the accuracy gate should have refused v4")
    git(workdir, "checkout", "--", "environments")
    shell(workdir, "reconciler", "history", MODEL, "--env", "production")
    banner(f"done; the workspace stays in {workdir} for a look around")


if __name__ == "__main__":
    main()
