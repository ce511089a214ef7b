"""Real sklearn models for the copy tests (issue 17), made and scored in a subprocess: MLflow's
fluent API keeps a tracking URI, run and model per process, which must not leak into the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

LOG = textwrap.dedent(
    """
    import json, sys, tempfile, warnings
    warnings.simplefilter("ignore")
    import mlflow, mlflow.sklearn, numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    uri, name, extra = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 0, 1, 1])
    # v1, MLflow 2 style: the model saved into a run's artifacts (plus an extra file of `extra`
    # bytes, to make an upload take long enough to be killed), registered from that folder.
    with mlflow.start_run(experiment_id="0") as run:
        folder = tempfile.mkdtemp() + "/model"
        mlflow.sklearn.save_model(model, folder, pip_requirements=["scikit-learn"])
        if extra:
            with open(folder + "/weights.bin", "wb") as out:
                out.write(np.random.default_rng(0).bytes(extra))
        mlflow.log_artifacts(folder, "model")
    client.create_registered_model(name)
    client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    # v2, MLflow 3 style: log_model(name=...) makes a LoggedModel; the version's source is
    # models:/<model_id>. A different model, so predictions tell the versions apart.
    other = LogisticRegression().fit(x, [0, 1, 1, 1])
    with mlflow.start_run(experiment_id="0"):
        info = mlflow.sklearn.log_model(
            other, name="model", registered_model_name=name, pip_requirements=["scikit-learn"]
        )
    # v3: v1's files again, registered from a `runs:/` URI (the server keeps it as the source).
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    print(json.dumps({
        mv.version: {"run_id": mv.run_id, "source": mv.source}
        for mv in client.search_model_versions(f"name = '{name}'")
    }))
    """
)

PREDICT = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("ignore")
    import mlflow, numpy as np

    x = np.array([[0.0], [0.6], [1.2], [2.5], [3.0]])
    found = {}
    for uri, model_uri in json.loads(sys.argv[1]):
        mlflow.set_registry_uri(uri)
        mlflow.set_tracking_uri(uri)
        probabilities = mlflow.sklearn.load_model(model_uri).predict_proba(x)[:, 1]
        predictions = mlflow.pyfunc.load_model(model_uri).predict(x)
        found[f"{uri} {model_uri}"] = [list(map(float, probabilities)), list(map(int, predictions))]
    print(json.dumps(found))
    """
)


def _run(script: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"the model script failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def log_models(uri: str, name: str, extra_bytes: int = 0) -> dict[str, dict[str, str]]:
    """Versions 1 (a run's artifacts, with `extra_bytes` of weights), 2 (a LoggedModel) and 3
    (v1's files from a `runs:/` source) of `name`: version → run_id and source, as the registry
    reports them."""
    found: dict[str, dict[str, str]] = json.loads(_run(LOG, uri, name, str(extra_bytes)))
    return found


def predictions(models: list[tuple[str, str]]) -> dict[str, object]:
    """What each (registry URI, `models:/...` URI) predicts on the same rows, loaded the way a
    serving job would (mlflow.pyfunc.load_model), with the sklearn probabilities beside."""
    found: dict[str, object] = json.loads(_run(PREDICT, json.dumps(models)))
    return found


COPY = textwrap.dedent(
    """
    import sys
    from reconciler.apply.copying import ensure_copy
    from reconciler.registry.lineage import Lineage
    from reconciler.registry.mlflow_registry import MlflowRegistry

    source_uri, target_uri, name, version, into = sys.argv[1:6]
    source, target = MlflowRegistry(source_uri), MlflowRegistry(target_uri)
    wanted = Lineage(source.describe(), name, version, None)
    result = ensure_copy(source, target, wanted, target.read_versions(into), model=into)
    print(result.version.version)
    """
)


def start_copy(
    source: str, target: str, name: str, version: str, into: str
) -> subprocess.Popen[str]:
    """ensure_copy of `name` v`version` into the model `into`, in its own process (as a
    `reconciler apply` would, and a test can SIGKILL it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    return subprocess.Popen(
        [sys.executable, "-c", COPY, source, target, name, version, into],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
