"""How a parallel run (pytest-xdist; `scripts/test` passes `-n 3 --dist loadfile
--no-loadscope-reorder`) cuts the suite into units of work and in which order it hands them out.

* One test file is one unit: its module fixtures (a server of its own) start once, and tests that
  watch each other's timing (signals, leases, a killed server) run one after another as written.
* Every test on PostgreSQL (test_postgres.py, and the `pg-` cases of the registry contract) is one
  unit: one worker starts the PostgreSQL cluster and its two `mlflow server`s, not each worker
  that meets one.
* Units go out longest first (measured serially, docs/design-notes.md "Test run time"): a long
  unit handed out last keeps one worker busy while the others idle. The rest keep file order.

Units are told apart by node id, because the controller that hands them out sees only ids (and
xdist's own `loadgroup` is no help: under pytest 9.2 its group suffix never reaches the ids).
Without xdist only the order changes (still whole files, one after another).
"""

from __future__ import annotations

import re

import pytest
from xdist.scheduler import LoadScopeScheduling

POSTGRES_GROUP = "postgres"
POSTGRES_FILE = "tests/integration/test_postgres.py"
# The ids of tests/integration/conftest.py's PostgreSQL backends, wherever they sit in a case id.
POSTGRES_CASE = re.compile(r"[\[-]pg-psycopg\d(?:[\]-])")

# Longest first: seconds of a serial run on the 2-core machine (setup included), rounded.
LONGEST_FIRST = [
    POSTGRES_GROUP,  # ~140: the cluster, two servers with 4 workers each, racing processes
    "tests/integration/test_auth.py",  # ~85: a basic-auth server of its own
    "tests/integration/test_review_and_ci.py",  # ~70: the workflows' jobs through the action
    "tests/integration/test_package.py",  # ~65: build, wheelhouse, the action's real install
    "tests/integration/test_registries_loop.py",  # ~65: two registries, serving, four applies
    "tests/integration/test_workspaces.py",  # ~60: a workspaces server, the CLI as processes
    "tests/integration/test_connections.py",  # ~60: two basic-auth servers, eight threads
    "tests/integration/test_serving_tour.py",  # ~65: the README's tour, trains three models
    "tests/integration/test_concurrency.py",  # ~60: a server killed and restarted mid-apply
    "tests/integration/test_outcomes.py",  # ~60: a silent registry (3 attempts x 10 s)
    "tests/integration/test_refused_apply.py",  # ~60: 61 models, three applies of them
    "tests/integration/test_faults.py",  # ~60
    "tests/integration/test_demo.py",  # ~55: the README's demo
    "tests/integration/test_pre_commit_hook.py",  # ~50: pre-commit installs this repository
    "tests/integration/test_serving.py",  # ~40
    "tests/integration/test_copy.py",  # ~35: a proxied second server, sklearn in subprocesses
    "tests/unit/test_fuzz.py",  # ~30: hypothesis
    "tests/integration/test_signals.py",  # ~30
]


def group_of(nodeid: str) -> str:
    """The unit of work of the test `nodeid`: PostgreSQL's, else its file's."""
    path, _, rest = nodeid.partition("::")
    if path == POSTGRES_FILE or POSTGRES_CASE.search(rest):
        return POSTGRES_GROUP
    return path


def rank(group: str) -> int:
    return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)


def order_longest_first(items: list[pytest.Item]) -> None:
    """Order the units longest first; a stable sort, so within a unit, and among the short ones,
    collection order stays. A test marked `postgres` that its id would put in another unit is a
    usage error: that worker would start a second cluster."""
    for item in items:
        if item.get_closest_marker("postgres") and group_of(item.nodeid) != POSTGRES_GROUP:
            raise pytest.UsageError(
                f"{item.nodeid} is marked postgres but its id names no pg- backend: "
                "tests/support/scheduling.py would run it outside the PostgreSQL unit"
            )
    items.sort(key=lambda item: rank(group_of(item.nodeid)))


class FileOrPostgresScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    """xdist's loadfile, but with every PostgreSQL test in one unit."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)
