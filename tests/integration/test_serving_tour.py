"""The README's serving tour keeps working: its story end to end, with this environment's
interpreter (`scripts/serving-tour` adds only the install)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_serving_tour_runs_its_story(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(REPO / "demo" / "serving_tour.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "registered churn-model v3 (y = 3 * x)" in out
    assert out.count("ok    churn-model in production: serves v1") == 2  # before and after
    assert "ok    churn-model in production: serves v2" in out
    # v2 predicts y = 2 * x (to float precision)
    assert re.search(r'"version": "2", "predictions": \[(2\.0|1\.99999)', out), out
    assert "FAIL  churn-model in production: pinned v3, serves v1" in out
    assert "=== done;" in out
