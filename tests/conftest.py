"""Shared fixtures: the app tests' projects, built once per session with tiny settings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """Under pytest-xdist (make test: one worker per core) each worker keeps to one torch thread: two workers
    of two threads each would oversubscribe two cores (thread settings swung speed 6-20x on them)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
HAVE_DEMO = (ROOT / "models" / "demo-classifier.json").exists() and (ROOT / "models" / "demo-vae.json").exists()


def build_demo_like(root: Path, *, identify_cfg=None, distill_iters: int = 100, after_identify=None) -> Path:
    """The demo project with every step done, tiny: identify 64 images × Q=20, K=10, two annotators, λ=1, 1 epoch.

    ``identify_cfg`` replaces the tiny search and ``after_identify(ws)`` may change its results
    (benchmarks/page_render.py builds its projects here too).
    """
    import torch

    from defuse.correct.sweep import CorrectConfig
    from defuse.distill.embed import EmbedConfig
    from defuse.distill.sampling import ScenarioDraw
    from defuse.distill.scenarios import DistillConfig
    from defuse.identify.search import IdentifyConfig
    from defuse.runtime.progress import RunOptions
    from defuse.steps import correct
    from defuse.steps.demo import open_demo_project
    from defuse.steps.distill import distill_step, load_scenarios
    from defuse.steps.embed import embed_step
    from defuse.steps.export import export_step
    from defuse.steps.identify import identify_step
    from defuse.steps.label import label_store

    torch.set_num_threads(1)
    ws = open_demo_project(root, precomputed=False)
    cfg = identify_cfg or IdentifyConfig(samples_per_image=20, max_per_image=10, subset=64)
    identify_step(ws, cfg, run=RunOptions(device="cpu"))
    if after_identify is not None:
        after_identify(ws)
    distill_step(ws, DistillConfig(max_components=10, max_iter=distill_iters), on_progress=None)
    embed_step(ws, EmbedConfig(method="pca", train_points=200))
    n = len(load_scenarios(ws))
    with label_store(ws) as store:
        store.record(0, "alice", is_failure=True, label=6)
        store.record(0, "bob", is_failure=True, label=6)
        if n > 1:
            store.record(1, "alice", is_failure=False)
    correct.correct_step(ws, CorrectConfig(lambdas=(1.0,), epochs=1), draw=ScenarioDraw(16),
                         run=RunOptions(device="cpu"))
    export_step(ws)
    return ws.root


@pytest.fixture(autouse=True)
def own_trust_store(tmp_path_factory, monkeypatch):
    """Each test starts with an empty trust store of its own: nothing a test trusts reaches another, or the
    real user's ~/.config."""
    from defuse.nets import trust

    monkeypatch.setenv(trust.STORE_ENV, str(tmp_path_factory.mktemp("trust") / "trusted-files.json"))


@pytest.fixture(autouse=True)
def no_background_warmup(monkeypatch):
    """No app a test starts compiles UMAP in the background (defuse/ui/warmup.py)."""
    monkeypatch.setenv("DEFUSE_NO_WARMUP", "1")


@pytest.fixture(scope="session")
def demo_done(tmp_path_factory) -> Path:
    """A finished demo-like project (read-only for tests: copy it with `project_copy` to change it)."""
    if not HAVE_DEMO:
        pytest.skip("demo models not built (python -m defuse demo --rebuild)")
    return build_demo_like(tmp_path_factory.mktemp("app") / "demo")


@pytest.fixture()
def project_copy(demo_done, tmp_path):
    """A private copy of the finished demo-like project, and DEFUSE_HOME pointing at its folder."""
    def make(name: str = "demo") -> Path:
        dest = tmp_path / name
        shutil.copytree(demo_done, dest, ignore=shutil.ignore_patterns("jobs"))
        return dest
    return make


@pytest.fixture(scope="session")
def fresh_demo(tmp_path_factory) -> Path:
    """The demo project with models imported and no step run (`make run` also installs the precomputed steps)."""
    if not HAVE_DEMO:
        pytest.skip("demo models not built (python -m defuse demo --rebuild)")
    from defuse.steps.demo import open_demo_project

    return open_demo_project(tmp_path_factory.mktemp("fresh") / "demo", precomputed=False).root


@pytest.fixture(scope="session")
def empty_project(tmp_path_factory) -> Path:
    """A project with data only: no classifier, no VAE."""
    from defuse.data.datasets import DatasetSpec
    from defuse.steps.project import init_project

    return init_project(tmp_path_factory.mktemp("empty") / "empty", DatasetSpec(source="mnist-sample")).root


@pytest.fixture()
def run_page(tmp_path, monkeypatch):
    """Run one page script with AppTest on a project: ``run_page("identify", project_path)``."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DEFUSE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(ROOT)

    def run(page: str, project: Path, **state):
        at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=180)
        at.session_state["project"] = str(project)
        for key, value in state.items():
            at.session_state[key] = value
        return at.run()
    return run


@pytest.fixture()
def job_config():
    """``read(args, cls) -> (config, other args)``: the frozen config a page handed a job (``--config`` JSON),
    rebuilt as the CLI builds it, and the job's other arguments."""
    import json

    def read(args, cls):
        i = args.index("--config")
        return cls(**json.loads(args[i + 1])), args[:i] + args[i + 2:]
    return read


@pytest.fixture()
def started(monkeypatch):
    """Jobs the pages start, recorded instead of run: a list of (step, args)."""
    from defuse.cli import jobs

    calls = []

    def fake(ws, step, args, *, threads=None):
        calls.append((step, list(args)))
    monkeypatch.setattr(jobs, "start_job", fake)
    return calls


@pytest.fixture()
def navigation_mode(monkeypatch):
    """Start every AppTest run of the whole app in navigation mode, as a server is after its first script run.

    AppTest resets Streamlit's old `pages/` folder mode before every run, which a server does once; the router
    leaves that mode by rerunning, which would drop a click (the browser test covers that first run).
    """
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False
    monkeypatch.setattr(PagesManager, "__init__", patched)
