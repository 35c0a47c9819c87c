"""benchmarks/gpu_session.sh --dry-run: the prepared GPU session's steps run on a CPU and leave their logs."""

import os
import subprocess
import sys

import pytest
from conftest import HAVE_DEMO, ROOT


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_DEMO, reason="demo models not built")
def test_the_dry_run_writes_every_log(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "WORK": str(tmp_path / "work"),
           "SKIP_TABLE": "1",   # the paper table's own smoke run is tests/test_paper_table.py
           "SKIP_SPEED": "1"}   # train_speed's quick path (every phase, the JSON) is tests/test_train_speed.py
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_session.sh"), "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    session = (out / "session.log").read_text()
    assert "train_speed skipped (SKIP_SPEED=1)" in session and "identify full done (rc 0)" in session, session
    full = (out / "identify-full.log").read_text()
    assert "64 real training images x Q=10" in full and "full_identify_seconds:" in full
    assert "dry_run=1 device=cpu" in (out / "env.log").read_text()
