"""The server answers the adapter acts on, as `mlflow server` 3.17.2 sends them on PostgreSQL 15
(DESIGN §6): "cannot archive atomically" (psycopg 3), and the refused insert of racing first-time
alias or tag writes, which is retried once. Checked against the exact texts and near misses."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

from reconciler.registry.messages import refuses_atomic_archive
from reconciler.registry.mlflow_registry import _once_more_on_insert_race

# str(RestException) for transition_model_version_stage(..., archive_existing_versions=True) on a
# `postgresql://` backend, as measured (first lines; the SQL statement follows).
PSYCOPG3_ANSWER = (
    "BAD_REQUEST: (psycopg.errors.UndefinedFunction) operator does not exist: integer <> "
    "character varying\n"
    "LINE 3: ...ons.name = $2::VARCHAR AND model_versions.version != $3::VAR...\n"
    "                                                             ^\n"
    "HINT:  No operator matches the given name and argument types. You might need to add "
    "explicit type casts.\n"
    "[SQL: SELECT model_versions.workspace AS model_versions_workspace, model_versions.name AS "
    "model_versions_name FROM model_versions WHERE model_versions.version != "
    "%(version_1)s::VARCHAR]\n"
    "(Background on this error at: https://sqlalche.me/e/21/f405)"
)


def test_the_psycopg3_answer_is_recognised() -> None:
    assert refuses_atomic_archive("BAD_REQUEST", PSYCOPG3_ANSWER)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        # Same words under another error code: not the server's answer we measured.
        ("INVALID_PARAMETER_VALUE", PSYCOPG3_ANSWER),
        ("INTERNAL_ERROR", PSYCOPG3_ANSWER),
        # Another type mismatch is another bug: fail loudly rather than take the fallback.
        (
            "BAD_REQUEST",
            "BAD_REQUEST: (psycopg.errors.UndefinedFunction) operator does not exist: "
            "integer = text",
        ),
        ("BAD_REQUEST", "BAD_REQUEST: operator does not exist: integer <> character varying"),
        ("RESOURCE_DOES_NOT_EXIST", "RESOURCE_DOES_NOT_EXIST: Model Version (name=m, version=7)"),
        ("BAD_REQUEST", "BAD_REQUEST: (psycopg2.errors.UniqueViolation) duplicate key value"),
        ("BAD_REQUEST", ""),
    ],
)
def test_anything_else_is_not(code: str, message: str) -> None:
    assert not refuses_atomic_archive(code, message)


# The loser of two processes creating the same alias at once, per database (DESIGN §6).
INSERT_RACES = [
    "INVALID_PARAMETER_VALUE: (psycopg.errors.UniqueViolation) duplicate key value violates "
    'unique constraint "registered_model_alias_pk"\nDETAIL:  Key (workspace, name, alias)='
    "(default, m, champion) already exists.",
    "INVALID_PARAMETER_VALUE: (psycopg2.errors.UniqueViolation) duplicate key value violates "
    'unique constraint "registered_model_alias_pk"',
    "INVALID_PARAMETER_VALUE: (sqlite3.IntegrityError) UNIQUE constraint failed: "
    "registered_model_aliases.workspace, registered_model_aliases.name, "
    "registered_model_aliases.alias",
]


class Flaky:
    """A write whose first attempt the database refuses with `message`."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == 1:
            raise MlflowException(self.message)


@pytest.mark.parametrize("message", INSERT_RACES)
def test_a_refused_insert_is_retried_once(message: str) -> None:
    write = Flaky(message)
    _once_more_on_insert_race(write)
    assert write.calls == 2


def test_other_failures_are_not_retried() -> None:
    write = Flaky("RESOURCE_DOES_NOT_EXIST: Registered Model with name=m not found")
    with pytest.raises(MlflowException):
        _once_more_on_insert_race(write)
    assert write.calls == 1
