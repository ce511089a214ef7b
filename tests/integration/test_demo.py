"""The README's first command keeps working: the demo's story, end to end, on the embedded
sqlite registry (run with this environment's interpreter; `scripts/demo` adds only the install)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_its_story(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(REPO / "demo" / "demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "✓ production: churn-model v1 → Production" in out  # the first apply
    assert '"archived_version": "1"' in out  # the promotion, as JSON records
    assert "~ churn-model: v2 → v1 ROLLBACK (v1 → Production, archives v2" in out
    assert (
        "policy: accuracy of churn-model v4 is 0.72; gate in environments/production.yaml needs >= 0.8"
        in done.stderr
    )
    assert "production: v2 → v1 ROLLBACK  [applied]" in out
    assert "=== done;" in out
