"""Do the app's pages stay responsive while a job runs? Render time of every page, idle and during a job.

Builds a finished demo-like project under a temporary DEFUSE_HOME (identify with the CPU-friendly preset,
distill, a PCA map, two annotators, a one-λ sweep, export), renders each page through the router (sidebar
included) with Streamlit's AppTest ``--renders`` times with no job running, then starts a real background job
the way the app does (``defuse.jobs.start_job`` with the app's thread count) and renders every page again while
it runs. ``--failures N`` tiles the failures found up to N (re-distilled, re-mapped) and ``--history N`` adds N
long finished jobs, to see what grows with the data and with the project's history. Prints the median and max
per page, then ``idle_max_page_render_s``, ``job_vs_idle_ratio`` and ``max_page_render_s`` (while the job runs).

    python benchmarks/page_render.py [--renders 5] [--job identify|correct] [--failures 1000000] [--history 30]
                                     [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

PAGES = ["home", "setup", "identify", "explore", "label", "correct", "report"]
JOBS = {"identify": ["--samples-per-image", "4000", "--max-per-image", "20", "--batch-size", "4096"],  # minutes
        "correct": ["--lambdas", "0.01,0.1,1,10,100", "--epochs", "3", "--samples", "256"]}


def build_project(root: Path, *, quick: bool, failures: int) -> Path:
    """A finished project: every page has something to show (the tests' demo-like project, larger)."""
    from defuse.identify.search import IdentifyConfig
    from defuse.steps.presets import QUICK
    from tests.conftest import build_demo_like

    cfg = IdentifyConfig(samples_per_image=20, max_per_image=10, subset=64) if quick else QUICK.identify
    return build_demo_like(root, identify_cfg=cfg, distill_iters=20 if quick else 100,
                           after_identify=(lambda ws: _tile_failures(ws, failures)) if failures else None)


def _tile_failures(ws, n: int) -> None:
    """Repeat the failures found (latents jittered) up to ``n``, as if identify had found that many."""
    from dataclasses import fields, replace

    from defuse.identify.search import Failures
    from defuse.steps.identify import load_failures, save_failures

    f = load_failures(ws)
    rows = np.resize(np.arange(len(f)), n)
    arrays = {x.name: getattr(f, x.name)[rows] for x in fields(Failures) if x.name != "metrics"}
    arrays["latents"] = arrays["latents"] + np.random.default_rng(0).normal(0, 0.01, arrays["latents"].shape) \
        .astype(arrays["latents"].dtype)
    save_failures(ws, replace(f, **arrays, metrics={**f.metrics, "tiled_to": n}))
    ws.record_step("identify", config=ws.step_record("identify")["config"], metrics={**f.metrics, "n_failures": n})


def _add_history(ws, n: int, events: int = 2000) -> None:
    """``n`` finished jobs in the project's history, ``events`` progress events each (a long training's worth)."""
    import json

    ws.path("jobs").mkdir(exist_ok=True)
    for i in range(n):
        job_id = f"20200101-{i:06d}-{i:06x}"
        ws.save_json(f"jobs/{job_id}.json", {"id": job_id, "command": ["train-classifier", "--workspace",
                                                                       str(ws.root)], "pid": None, "started": 0.0})
        lines = [json.dumps({"time": 0.0, "step": "train-classifier", "done": k, "total": events, "eta_s": 1.0,
                             "metrics": {"epoch": 1, "loss": 0.5}}) for k in range(events)]
        lines.append(json.dumps({"time": 1.0, "event": "finished", "result": {}}))
        ws.path(f"jobs/{job_id}.jsonl").write_text("\n".join(lines) + "\n")


def _navigation_mode() -> None:
    """Start every AppTest run in navigation mode, as a server is after its first run (see tests/test_app.py)."""
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def navigation_mode(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False
    PagesManager.__init__ = navigation_mode


def render_times(root: Path, renders: int) -> dict[str, list[float]]:
    """Seconds per full rerun (router, sidebar, page) of each page; the first visit (cold caches) is left out."""
    from streamlit.testing.v1 import AppTest

    times = {}
    for page in PAGES:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
        at.session_state["project"] = str(root)
        at.session_state["annotator"] = "carol"  # the Label page shows a scenario's samples, not the name box
        at.run()
        at.switch_page(f"pages/{page}.py").run()  # the first visit: models and data into the caches
        assert page == "home" or at.title[0].value.lower() == page, (page, at.title[0].value)
        took = []
        for _ in range(renders):
            t0 = time.perf_counter()
            at.run()
            took.append(time.perf_counter() - t0)
            if at.exception:
                raise RuntimeError(f"page {page} raised: {at.exception[0].value}")
        times[page] = took
    return times


def main() -> int:
    import streamlit.runtime.scriptrunner_utils.script_run_context as ctx

    # cached helpers warn "missing ScriptRunContext" outside AppTest, dozens of times: noise here (a filter,
    # since Streamlit resets its loggers' levels when AppTest loads its config)
    ctx._LOGGER.addFilter(lambda record: "missing ScriptRunContext" not in record.getMessage())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--renders", type=int, default=5, help="timed reruns per page (after a first visit)")
    parser.add_argument("--job", choices=sorted(JOBS), default="identify", help="the background job to run")
    parser.add_argument("--failures", type=int, default=0, help="tile the failures found up to this many")
    parser.add_argument("--history", type=int, default=0, help="finished jobs (2,000 events each) already listed")
    parser.add_argument("--quick", action="store_true", help="a tiny identify (64 images) to build the project")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project folder")
    args = parser.parse_args()

    from defuse.cli import jobs
    from defuse.ui.jobs import app_threads
    from defuse.workspace import Workspace

    torch.set_num_threads(app_threads())  # the server's own setting (streamlit_app.py)
    home = Path(tempfile.mkdtemp(prefix="defuse-render-"))
    os.environ["DEFUSE_HOME"] = str(home)
    os.chdir(ROOT)
    _navigation_mode()
    try:
        t0 = time.perf_counter()
        root = build_project(home / "demo", quick=args.quick, failures=args.failures)
        ws = Workspace(root)
        _add_history(ws, args.history)
        n_failures = ws.step_record("identify")["metrics"]["n_failures"]
        print(f"project: {root} ({n_failures:,} failures, {args.history} earlier jobs) built in "
              f"{time.perf_counter() - t0:.0f} s; "
              f"{os.cpu_count()} CPU(s), job threads {app_threads()}", flush=True)
        idle = render_times(root, args.renders)
        job = jobs.start_job(ws, args.job, JOBS[args.job], threads=app_threads())
        deadline, state = time.time() + 300, jobs.job_state(ws, job.id)
        while state.running and state.progress is None and time.time() < deadline:
            time.sleep(0.5)  # until the job is past its start-up (imports, loading) and computing
            state = jobs.job_state(ws, job.id)
        if not state.running:
            print(f"the {args.job} job {state.status}: {state.error}\n{jobs.job_log(ws, job.id, 2000)}")
            return 1
        try:
            busy = render_times(root, args.renders)
            state = jobs.job_state(ws, job.id)
        finally:
            jobs.cancel_job(ws, job.id)
            jobs.wait(ws, job.id, timeout=120)
        if not state.running:
            print(f"warning: the {args.job} job ended ({state.status}) before the renders did", flush=True)
        print(f"\n{'page':<10} {'idle median':>12} {'idle max':>9} {'job median':>11} {'job max':>8}  "
              f"(s, {args.renders} renders each; job: {args.job}, {state.fraction:.0%} done at the end)")
        for page in PAGES:
            print(f"{page:<10} {statistics.median(idle[page]):>12.3f} {max(idle[page]):>9.3f} "
                  f"{statistics.median(busy[page]):>11.3f} {max(busy[page]):>8.3f}")
        idle_max = max(max(v) for v in idle.values())
        busy_max = max(max(v) for v in busy.values())
        print(f"\nidle_max_page_render_s: {idle_max:.3f}")
        print(f"job_vs_idle_ratio: {busy_max / idle_max:.2f}")
        print(f"max_page_render_s: {busy_max:.3f}")
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
