"""Figures for issue 11 §1, printed (never asserted): apply throughput across a network.

120 promotions (v1 in Production → v2) through the loopback proxy with 30 ms added to every
request, in one run, two ways on two sets of models of one real `mlflow server`:

* naive: a loop of `MlflowClient.transition_model_version_stage(..., archive_existing_versions=
  True)`, one model after another (what a hand-written script does: no lease, no check, no audit);
* ours: `reconciler apply` (in process, after imports, like the loop): plan, lease per model
  (announcing its records), compare-and-set re-read, transition, verify, audit record (which
  completes the records and releases the lease), once per `--parallelism N` given (each on its
  own models).

Printed: both walls, the ratio, HTTP calls and registry writes per change, and which writes.

    .venv/test/bin/python benchmarks/bench_throughput.py [--models 120] [--latency-ms 30]
        [--parallelism 1 8 16] [--workers 4]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reconciler.apply.options import DEFAULT_PARALLELISM  # noqa: E402
from tests.support.proxy import RecordingProxy  # noqa: E402
from tests.support.server import start_server, stop_server  # noqa: E402


def seed(client: Any, names: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for name in names:
            client.create_registered_model(name)
            for _ in range(2):
                client.create_model_version(name, source=f"s3://bench/{name}")
            client.transition_model_version_stage(name, "1", "Production")


def git_repo(path: Path, names: list[str]) -> Path:
    path.mkdir(parents=True)
    for name in names:
        pin = path / "environments" / "production" / f"{name}.yaml"
        pin.parent.mkdir(parents=True, exist_ok=True)
        pin.write_text(f"model: {name}\nversion: 2\n")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "promote"]):
        subprocess.run(["git", *command], cwd=path, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
                            "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid",
                            "PATH": "/usr/bin:/bin"})  # fmt: skip
    return path


def measured(proxy: RecordingProxy, work: Any) -> tuple[float, int, int, str]:
    proxy.clear()
    start = time.perf_counter()
    work()
    wall = time.perf_counter() - start
    kinds = Counter("/".join(path.split("?")[0].split("/")[-2:]) for _m, path in proxy.writes())
    which = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    return wall, len(proxy.requests), len(proxy.writes()), which


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=120)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument(
        "--parallelism", type=int, nargs="+", default=sorted({1, DEFAULT_PARALLELISM, 16}),
        help="one measured apply per value, each on its own models",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=4,
        help="mlflow server workers (4: as a production registry runs; 1: the test fixture's)",
    )  # fmt: skip
    args = parser.parse_args()
    from mlflow import MlflowClient

    from reconciler import api
    from reconciler.apply.options import ApplyOptions
    from reconciler.registry.mlflow_registry import MlflowRegistry

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    delay = args.latency_ms / 1000
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, process = start_server(workdir, workers=args.workers)
        proxy = RecordingProxy(url)
        try:
            client = MlflowClient(tracking_uri=url, registry_uri=url)
            naive_names = [f"naive-{i:03d}" for i in range(args.models)]
            ours_names = {
                n: [f"ours-p{n}-{i:03d}" for i in range(args.models)] for n in args.parallelism
            }
            seed(client, naive_names + [name for names in ours_names.values() for name in names])
            repos = {n: git_repo(workdir / f"repo-{n}", names) for n, names in ours_names.items()}
            proxy.on_request = lambda _method, _path: time.sleep(delay)
            slow = MlflowClient(tracking_uri=proxy.url, registry_uri=proxy.url)

            def naive() -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    for name in naive_names:
                        slow.transition_model_version_stage(
                            name, "2", "Production", archive_existing_versions=True
                        )

            def ours(parallelism: int) -> None:
                options = ApplyOptions(commit=None, parallelism=parallelism)
                registry = MlflowRegistry(proxy.url)
                report = api.apply(repos[parallelism], lambda *_: registry, options=options)
                if report.failed:
                    raise SystemExit(f"apply failed: {report.bookkeeping_errors}")

            rows = [("naive transition loop", *measured(proxy, naive))]
            for parallelism in args.parallelism:
                label = f"reconciler apply, N={parallelism}"
                rows.append((label, *measured(proxy, lambda p=parallelism: ours(p))))
            again = measured(proxy, lambda: ours(args.parallelism[-1]))
        finally:
            proxy.close()
            stop_server(process)
    n = args.models
    print(
        f"{n} promotions, {args.latency_ms:g} ms added to every request, "
        f"mlflow server --workers {args.workers}:"
    )
    print(f"  {'':28} {'wall':>8} {'vs naive':>9} {'calls':>7} {'calls/change':>13} "
          f"{'writes/change':>14}")  # fmt: skip
    naive_wall = rows[0][1]
    for label, wall, calls, writes, _which in rows:
        print(f"  {label:28} {wall:7.2f}s {wall / naive_wall:8.2f}x {calls:7d} "
              f"{calls / n:13.2f} {writes / n:14.2f}")  # fmt: skip
    print("  writes:")
    for label, *_figures, which in rows:
        print(f"    {label}: {which}")
    print(f"  apply again (in sync): {again[0]:.2f}s, {again[1]} calls, {again[2]} writes")


if __name__ == "__main__":
    main()
