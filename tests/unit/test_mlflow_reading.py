"""How the adapter reads MLflow 3's answers (registry/mlflow_reading): the LoggedModel a version
was registered from, as MLflow's own `_parse_model_uri` reads its source, and when a batch
search of LoggedModels beats one GET each."""

from __future__ import annotations

import pytest
from mlflow.store.artifact.utils.models import _parse_model_uri

from reconciler.registry.mlflow_reading import logged_model_id, worth_a_search


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "models:/m-1dde5bb024df426cab35d20b53a804d6",
            "m-1dde5bb024df426cab35d20b53a804d6",
            id="logged",
        ),
        pytest.param("models:/churn/3", None, id="copy-of-a-version"),
        pytest.param("models:/churn/Production", None, id="stage"),
        pytest.param("models:/churn@champion", None, id="alias"),
        pytest.param("runs:/0fa0324e/model", None, id="run"),
        pytest.param("s3://bucket/0/abc/artifacts/model", None, id="artifacts"),
        pytest.param("mlflow-artifacts:/0/abc/artifacts/model", None, id="proxied"),
        pytest.param("dummy-source", None, id="prompt"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_the_logged_model_a_version_names(source: str | None, expected: str | None) -> None:
    assert logged_model_id(source) == expected
    if source and source.startswith("models:/"):  # the same reading as MLflow's
        assert _parse_model_uri(source).model_id == expected


@pytest.mark.parametrize(
    ("experiments", "models", "search"),
    [
        (3, 3, True),  # 1 search against 3 GETs
        (0, 5, False),  # nothing to search in
        (5_000, 4, False),  # 5 searches against 4 GETs
        (5_000, 6, True),
        (1_000, 1_001, True),  # 2 searches
    ],
)
def test_a_search_only_when_it_is_cheaper(experiments: int, models: int, search: bool) -> None:
    assert worth_a_search(experiments, models) is search
