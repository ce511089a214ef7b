"""Figures for issue 2, printed (never asserted):

1. `reconciler validate` on 1,000 pin files against `check-jsonschema` on the same files.
2. `reconciler plan` for 200 models against a local `mlflow server`, with the HTTP calls it made.

Run from the repository root with the test extra installed:
    .venv/test/bin/python benchmarks/bench_validate_plan.py [--models 200] [--pins 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.proxy import RecordingProxy  # noqa: E402
from tests.support.server import start_server, stop_server  # noqa: E402

BIN = Path(sys.executable).parent


def timed(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, runs: int = 3
) -> tuple[float, int]:
    """Median wall time of `runs` runs, and the exit code of the last."""
    times = []
    code = 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        code = done.returncode
        if code not in (0, 2):
            sys.exit(f"{command[0]} failed ({code}): {done.stderr[-2000:]}")
    return statistics.median(times), code


def write_pins(
    root: Path, count: int, envs: tuple[str, ...] = ("production", "staging")
) -> list[Path]:
    files = []
    for i in range(count):
        env = envs[i % len(envs)]
        path = root / "environments" / env / f"model-{i:04d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# yaml-language-server: $schema=../../schemas/pin.schema.json\n"
            f"model: model-{i:04d}\nversion: {i % 7 + 1}\nnote: benchmark pin {i}\n"
        )
        files.append(path)
    return files


def bench_validate(pins: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        files = write_pins(root, pins)
        ours, code = timed([str(BIN / "reconciler"), "validate"], root)
        assert code == 0
        schema = str(REPO / "schemas" / "pin.schema.json")
        theirs, code = timed(
            [str(BIN / "check-jsonschema"), "--schemafile", schema, *map(str, files)], root
        )
        assert code == 0
        print(f"validate, {pins} pin files (median of 3 runs, wall time incl. interpreter start):")
        print(
            f"  reconciler validate     {ours:6.2f} s  (schema + names + duplicates + line numbers)"
        )
        print(f"  check-jsonschema        {theirs:6.2f} s  (schema only)")
        print(f"  ratio                   {theirs / ours:6.2f}x")


def bench_plan(models: int) -> None:
    import logging

    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # one INFO line per created version
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, process = start_server(workdir)
        try:
            client = MlflowClient(tracking_uri=url, registry_uri=url)
            started = time.perf_counter()
            for i in range(models):
                name = f"model-{i:04d}"
                client.create_registered_model(name)
                for _ in range(3):
                    client.create_model_version(name, source=f"s3://benchmark-bucket/{name}")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    client.transition_model_version_stage(name, "1", "Production")
            print(
                f"\nplan, {models} models x 3 versions on a local mlflow server "
                f"(seeded in {time.perf_counter() - started:.1f} s)"
            )
            repo = workdir / "repo"
            repo.mkdir()
            subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
            for i in range(models):
                # Half in sync (v1), half a pending promotion (v2).
                version = 1 if i % 2 == 0 else 2
                path = repo / "environments" / "production" / f"model-{i:04d}.yaml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"model: model-{i:04d}\nversion: {version}\n")
            proxy = RecordingProxy(url)
            env = {**os.environ, "MLFLOW_TRACKING_URI": proxy.url}
            try:
                seconds, code = timed(
                    [str(BIN / "reconciler"), "plan", "--detailed-exitcode"], repo, env
                )
                calls = len(proxy.requests) // 3
                methods = sorted({f"{m} {p.split('?')[0]}" for m, p in proxy.requests})
            finally:
                proxy.close()
            assert code == 2
            print(f"  reconciler plan         {seconds:6.2f} s  wall (median of 3, with imports)")
            print(f"  HTTP calls per plan     {calls:6d}    ({', '.join(methods)})")
            print(f"  writes during plan      {len(proxy.writes()):6d}")
        finally:
            stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pins", type=int, default=1000)
    parser.add_argument("--models", type=int, default=200)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    bench_validate(args.pins)
    bench_plan(args.models)


if __name__ == "__main__":
    main()
