"""The Home page's content: the project's pipeline status, one click to the next step, recent jobs."""

from __future__ import annotations

import time

import streamlit as st

from ..cli import jobs
from ..runtime.progress import fmt_seconds
from ..steps.status import project_info
from ..workspace import CLASSIFIER, Workspace
from .fidelity import fidelity_banner
from .nav import JOB_WORDS, STEP_TITLES, link

STATUS_ICONS = {"done": "✅", "stale": "⚠️", "corrupt": "❌", "missing": "⬜"}


def next_step(status: dict, n_scenarios: int | None = None) -> str | None:
    """The first step that is not done, in pipeline order (labeling is a step between distill and correct);
    when distillation kept no scenario (``n_scenarios`` 0), distilling again comes before labeling."""
    for step, s in status.items():
        if s != "done":
            if step in ("label", "correct") and s == "missing" and n_scenarios == 0:
                return "distill"
            return step
    return "report"


def render_status(ws: Workspace) -> None:
    info = project_info(ws)
    status = info["status"]
    blurry = fidelity_banner(ws)
    cols = st.columns(len(status))
    for col, (step, s) in zip(cols, status.items(), strict=True):
        with col.container(border=True):
            st.markdown(f"**{STEP_TITLES.get(step, step)}**  \n{STATUS_ICONS.get(s, '')} {s}")
    step = next_step(status, ((ws.step_record("distill") or {}).get("metrics") or {}).get("n_scenarios"))
    if blurry and step == "identify":
        step = "vae"
    words = {"report": "Everything is done: read the report", "label": "Next: label the failure scenarios",
             "distill": "Next: distill again: no scenario is above ε (lower it, or find more failures)",
             "vae": "Next: retrain the β-VAE (Setup)"}
    link(step, words.get(step, f"Next: {STEP_TITLES.get(step, step)}"))
    if any(s == "stale" for s in status.values()):
        st.caption("⚠️ stale: an input changed after the step ran; re-run it to bring it up to date.")
    _models(ws, info)
    for warning in info["warnings"][1 if blurry else 0:]:  # the fidelity warning comes first, shown above
        st.warning(warning)


def _models(ws: Workspace, info: dict) -> None:
    if "data" in info:
        d = info["data"]
        counts = ", ".join(f"{k} {v['count']:,}" for k, v in d.get("splits", {}).items())
        st.write(f"Data: **{info['dataset']['source']}** — {counts}; {d.get('num_classes', '?')} classes, "
                 f"{d.get('channels', '?')}×{d.get('image_size', '?')}² images")
    elif "data_error" in info:
        st.error(f"The data could not be loaded: {info['data_error']}")
    clf, vae = info.get("classifier_metrics", {}), info.get("vae_metrics", {})
    if "test_acc" not in clf and ws.exists(CLASSIFIER):  # an imported model: its own sidecar has the figures
        clf = ws.load_json(CLASSIFIER).get("metrics", {})
    if "test_acc" in clf:
        st.write(f"Classifier test accuracy: **{clf['test_acc']:.1%}**")
    if "acc_reconstruction" in vae:
        st.write(f"VAE fidelity: the classifier recognises **{vae['acc_reconstruction']:.1%}** of reconstructions "
                 f"({vae['acc_original']:.1%} of originals); {vae['active_dims']} of {vae['latent_dim']} "
                 "latent dimensions active.")


def render_recent_jobs(ws: Workspace, n: int = 5) -> None:
    recent = jobs.list_jobs(ws, limit=n)
    if not recent:
        return
    st.subheader("Recent jobs")
    icons = {"running": "⏳", "finished": "✅", "failed": "❌", "cancelled": "⏹️"}
    for job in recent:
        took = fmt_seconds((job.ended or time.time()) - job.started)
        title = (f"{icons.get(job.status, '')} {JOB_WORDS.get(job.command[0], job.command[0])} — {job.status}, "
                 f"{time.strftime('%d %b %H:%M', time.localtime(job.started))}, {took}")
        with st.expander(title):
            if job.error:
                st.error(job.error)
            st.code(jobs.job_log(ws, job.id, max_chars=4000) or "(empty log)", language="text")
