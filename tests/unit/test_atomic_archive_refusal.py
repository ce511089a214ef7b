"""Which server answer means "cannot archive atomically" (DESIGN §6), checked against the exact
text `mlflow server` 3.17.2 on PostgreSQL 15 with psycopg 3 sends, and against near misses."""

from __future__ import annotations

import pytest

from reconciler.registry.mlflow_registry import refuses_atomic_archive

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
