"""Model versions made the MLflow 3 way, in a subprocess (MLflow's fluent API keeps an active
run, experiment and model per process): `log_model(name=...)` with metrics logged per dataset
with `log_metric(model_id=..., dataset=...)`, a LoggedModel with no run
(`initialize_logged_model`), and, for contrast, an MLflow 2 style version from a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("ignore")
    import mlflow, mlflow.sklearn, pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus
    from sklearn.linear_model import LogisticRegression

    uri, name = sys.argv[1], sys.argv[2]
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    client.create_registered_model(name)
    rows = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
    model = LogisticRegression().fit(rows[["x"]], rows["y"])

    # v1, MLflow 2 style: metrics on the run, the version registered from the run's artifacts.
    with mlflow.start_run(experiment_id="0") as run:
        mlflow.log_metric("accuracy", 0.85)
    client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)

    # v2: log_model(name=...) registers it; accuracy 0.80 on eval, then 0.99 on train (last).
    with mlflow.start_run(experiment_id="0") as run:
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name,
            pip_requirements=["scikit-learn", "pandas"],  # inferring them is slow
        )
        for value, dataset in ((0.80, rows.assign(split="eval")), (0.99, rows[:3])):
            named = "eval" if value < 0.9 else "train"
            mlflow.log_metric(
                "accuracy", value, model_id=info.model_id,
                dataset=mlflow.data.from_pandas(dataset, name=named),
            )
    run_accuracy = client.get_run(run.info.run_id).data.metrics["accuracy"]

    # v3: a LoggedModel with no run (made outside one); a metric still needs some run.
    external = mlflow.initialize_logged_model(name="external", experiment_id="0")
    mlflow.finalize_logged_model(external.model_id, LoggedModelStatus.READY)
    metric_run = client.create_run("0")
    client.log_metric(metric_run.info.run_id, "accuracy", 0.93, model_id=external.model_id)
    client.set_terminated(metric_run.info.run_id)
    client.create_model_version(
        name, f"models:/{external.model_id}", model_id=external.model_id
    )
    versions = {
        mv.version: {"run_id": mv.run_id, "source": mv.source}
        for mv in client.search_model_versions(f"name = '{name}'")
    }
    print(json.dumps({"versions": versions, "run_accuracy_v2": run_accuracy,
                      "model_v2": info.model_id, "model_v3": external.model_id}))
    """
)


def log_mlflow3_versions(uri: str, name: str) -> dict[str, object]:
    """Versions 1 (run only), 2 (log_model, eval/train) and 3 (run-less LoggedModel) of `name`;
    what the script read back, for the test to check its premises."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, uri, name],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
    )
    if done.returncode != 0:
        raise RuntimeError(f"logging models failed:\n{done.stderr[-3000:]}")
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found
