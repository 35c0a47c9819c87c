"""benchmarks/memory_bounds.py at tiny scale (every stage in its own process, parseable figures), and the
core changes it led to (fewer copies of the failures) giving the same results as before."""

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from defuse.distill.scenarios import DistillConfig, DistillConvergenceWarning, distill
from defuse.identify.search import Failures
from defuse.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "memory_bounds.py"
STAGES = ("init", "identify", "distill", "embed", "explore")
HAVE_DEMO = (ROOT / "models" / "demo-classifier.json").exists() and (ROOT / "models" / "demo-vae.json").exists()


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_DEMO, reason="demo models not built (python -m defuse demo --rebuild)")
def test_memory_bounds_reports_every_stage(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DEFUSE_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--sources", "120", "--uaes", "1500", "--threads", "1",
                           "--workdir", str(tmp_path / "work")], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    rows = {m.group(1): m for line in lines
            if (m := re.match(r"^(\w+)\s+(\d+)\s+(\d+)\s+(-?\d+)\s+([\d.]+)  (.+)$", line))}
    assert set(STAGES) <= set(rows), proc.stdout
    for stage in STAGES:
        peak, idle = int(rows[stage].group(2)), int(rows[stage].group(3))
        assert 0 < idle <= peak < 3072, rows[stage].group(0)         # generous: tiny data
    assert "120 sources x Q" in rows["identify"].group(6)
    failures = int(re.search(r"-> ([\d,]+) failures", rows["identify"].group(6)).group(1).replace(",", ""))
    assert failures >= 1500
    assert "down-sampled at random where there were more" in rows["explore"].group(6)
    assert lines[-2] == "limit_mb: 4096"
    worst = re.fullmatch(r"max_peak_rss_mb: (\d+)", lines[-1])
    assert worst and int(worst.group(1)) == max(int(rows[s].group(2)) for s in STAGES)


# --- the core changes the benchmark led to: fewer copies, identical results ----------------------------
def _parts(seed: int = 0, sizes=(7, 0, 13, 5), k: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"latents": rng.normal(size=(n, k)).astype(np.float32), "source_index": rng.integers(0, 99, n),
             "true_label": rng.integers(0, 10, n), "pred_label": rng.integers(0, 10, n),
             "noise_norm": rng.random(n, dtype=np.float32)} for n in sizes]


def test_concatenate_releases_the_chunks_and_keeps_the_rows():
    parts, expected = _parts(), _parts()
    f = Failures.concatenate(parts, latent_dim=3)
    for name, got in f.to_arrays().items():
        want = np.concatenate([p[name] for p in expected])
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert parts == [{}, {}, {}, {}]                   # each chunk array dropped once copied
    empty = Failures.concatenate([], latent_dim=3)
    assert empty.latents.shape == (0, 3) and empty.latents.dtype == np.float32 and len(empty) == 0


def test_save_arrays_streams_to_disk_atomically(tmp_path):
    ws = Workspace(tmp_path / "ws")
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([True, False]), "n": np.int64(7)}
    ws.save_arrays("x/arrays.npz", **arrays)
    back = ws.load_arrays("x/arrays.npz")
    assert sorted(back) == ["a", "b", "n"]
    for name, value in arrays.items():
        assert back[name].dtype == np.asarray(value).dtype and np.array_equal(back[name], value)

    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        ws.save_arrays("x/arrays.npz", a=np.zeros(2), b=Broken())
    assert np.array_equal(ws.load_arrays("x/arrays.npz")["a"], arrays["a"])     # the old file is intact
    assert [p.name for p in (tmp_path / "ws" / "x").iterdir()] == ["arrays.npz"]  # no temp file left


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_distill_of_float32_codes_matches_a_float64_copy(monkeypatch, backend):
    import defuse.distill.scenarios as distill_module

    monkeypatch.setattr(distill_module, "_PREDICT_BATCH", 64)        # several assignment blocks
    rng = np.random.default_rng(1)
    n = 400
    centres = rng.normal(0, 3, (4, 3))
    latents = (centres[rng.integers(0, 4, n)] + rng.normal(0, 0.3, (n, 3))).astype(np.float32)
    labels = rng.integers(0, 10, n), rng.integers(0, 10, n)
    cfg = DistillConfig(max_components=6, max_samples=250, max_iter=30, backend=backend)
    runs = []
    for codes in (latents, latents.astype(np.float64)):               # the latter: what distill used to fit
        f = Failures(codes, np.arange(n), *labels, np.ones(n, np.float32))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DistillConvergenceWarning)
            runs.append(distill(f, cfg, num_classes=10).to_arrays())
    (a32, m32), (a64, m64) = runs
    assert sorted(a32) == sorted(a64)
    for name in a32:
        assert np.array_equal(a32[name], a64[name]), name
    assert {k: v for k, v in m32.items() if k != "fit_seconds"} == {k: v for k, v in m64.items() if k != "fit_seconds"}


@pytest.mark.skipif(not HAVE_DEMO, reason="demo models not built (python -m defuse demo --rebuild)")
def test_the_map_counts_every_training_image(tmp_path):
    from defuse.distill.embed import EmbedConfig
    from defuse.steps.demo import open_demo_project
    from defuse.steps.embed import embed_step, load_embedding
    from defuse.steps.identify import save_failures
    from defuse.steps.project import load_data

    ws = open_demo_project(tmp_path / "demo")
    rng = np.random.default_rng(0)
    n = 300
    save_failures(ws, Failures(rng.normal(size=(n, 10)).astype(np.float32), np.arange(n),
                                        rng.integers(0, 10, n), rng.integers(0, 10, n), np.ones(n, np.float32)))
    ws.record_step("identify", config={})
    embed_step(ws, EmbedConfig(method="pca", train_points=50, max_points=200))
    emb, current = load_embedding(ws, "pca")
    assert current and emb.n_failures_total == n and int((~emb.is_failure).sum()) == 50
    assert emb.n_train_total == len(load_data(ws).train) > 50        # the note's "50 of N training codes"
