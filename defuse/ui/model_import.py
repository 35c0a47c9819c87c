"""Setup's classifier import: a file (uploaded or on this machine), the network of bare weights (built-in or
the user's own ``module:Class``), the explicit trust step for files that carry code, and conversion of a
project's code-bearing classifier to safetensors + its class."""

from __future__ import annotations

import json

import streamlit as st

from ..nets import trust
from ..nets.checkpoints import EXTERNAL_FORMATS
from ..nets.model_files import FORMAT_WORDS, RISK_WORDS
from ..runtime import atomic
from ..steps.project import convert_classifier_in_place, import_classifier
from ..workspace import CLASSIFIER, Workspace
from .sidebar import safe_file_name

MAX_MODEL_UPLOAD_MB = 200
MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".pt2", ".ts")
ARCHITECTURES = ("paper-cnn", "resnet18")
PENDING = "clf-pending-trust"  # a refused code-bearing file waiting for the user's decision (never on disk)


def import_form(ws: Workspace, *, upload: bool) -> None:
    with st.form("clf-import", enter_to_submit=True):
        if upload:
            f = st.file_uploader(f"Classifier ({', '.join(MODEL_SUFFIXES)}; at most {MAX_MODEL_UPLOAD_MB} MB)",
                                 type=[s[1:] for s in MODEL_SUFFIXES])
        else:
            path = st.text_input("Path of the classifier file on this machine")
        arch = st.selectbox("Network of bare weights (.safetensors without sidecar, .pt state dicts)",
                            ARCHITECTURES)
        own = st.text_input("…or your own network class, as module:Class (e.g. my_nets:SignNet)",
                            help="Its module must be importable where the app runs (installed, or on PYTHONPATH).")
        kwargs = st.text_input("Its constructor arguments beyond channels, image size and classes (JSON)", "")
        go = st.form_submit_button("Import the classifier")
    if go:
        st.session_state.pop(PENDING, None)
        architecture, arch_kwargs = own.strip() or arch, _json_kwargs(kwargs)
        if upload:
            if f is None:
                raise ValueError("choose a file to upload first")
            if f.size > MAX_MODEL_UPLOAD_MB * 2**20:
                raise ValueError(f"the file is {f.size / 2**20:.0f} MB; at most {MAX_MODEL_UPLOAD_MB} MB")
            _import(ws, name=safe_file_name(f.name, MODEL_SUFFIXES), data=f.getvalue(), architecture=architecture,
                    arch_kwargs=arch_kwargs)
        else:
            if not path.strip():
                raise ValueError("give the path of a classifier file")
            _import(ws, path=path.strip(), architecture=architecture, arch_kwargs=arch_kwargs)
    _trust_step(ws)


def _json_kwargs(text: str) -> dict | None:
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"the constructor arguments are not JSON ({e.msg}); write e.g. {{\"width\": 64}}") from e
    if not isinstance(value, dict):
        raise ValueError('the constructor arguments must be a JSON object, e.g. {"width": 64}')
    return value


def _import(ws: Workspace, *, architecture, arch_kwargs, path=None, name=None, data=None, trust_code=False):
    """Import from ``path``, or from uploaded bytes, which reach the uploads folder only once accepted."""
    dest = ws.path("uploads") / name if data is not None else None
    before = dest.read_bytes() if dest is not None and dest.exists() else None
    try:
        if dest is not None:
            atomic.write_bytes(dest, data)
        with st.spinner("Checking the classifier on this project's images: every step the pipeline will ask…"):
            import_classifier(ws, str(dest or path), architecture=architecture, arch_kwargs=arch_kwargs,
                              trust_code=trust_code)
    except trust.UntrustedCodeError as e:
        st.session_state[PENDING] = {"path": path, "name": name, "data": data, "fmt": e.fmt, "sha256": e.sha256,
                                     "architecture": architecture, "arch_kwargs": arch_kwargs}
        _restore(dest, before)
        return
    except Exception:
        _restore(dest, before)  # a refused upload leaves the uploads as they were
        raise
    st.success("Imported: the classifier runs on this data, has the right number of classes, and passed a dry "
               "run of identify, fine-tuning and export.")


def _restore(dest, before) -> None:
    if dest is not None and before is not None:
        dest.write_bytes(before)
    elif dest is not None:
        dest.unlink(missing_ok=True)


def _trust_step(ws: Workspace) -> None:
    pending = st.session_state.get(PENDING)
    if not pending:
        return
    label = pending["name"] or pending["path"]
    st.warning(f"**{label}** is a {FORMAT_WORDS[pending['fmt']]}: {RISK_WORDS[pending['fmt']]}. Defuse read "
               "nothing from it. The safe way: save the weights as .safetensors and name the network above "
               "(your own class as module:Class). Trust it only if you know where it comes from.")
    ok = st.checkbox(f"I trust {label} (sha256 {pending['sha256']}) and let Defuse load it", key="clf-trust-box")
    if st.button("Import it, trusting this file", disabled=not ok):
        if pending["data"] is None and atomic.sha256_file(pending["path"]) != pending["sha256"]:
            st.session_state.pop(PENDING)
            raise ValueError(f"{label} changed since you were asked: import it again")
        st.session_state.pop(PENDING)
        _import(ws, path=pending["path"], name=pending["name"], data=pending["data"], trust_code=True,
                architecture=pending["architecture"], arch_kwargs=pending["arch_kwargs"])


def convert_form(ws: Workspace) -> None:
    """For a project whose classifier carries code: turn it into safetensors + its class, once."""
    meta = ws.load_json(CLASSIFIER, {}) if ws.exists(CLASSIFIER) else {}
    if meta.get("architecture") not in EXTERNAL_FORMATS:
        return
    with st.expander(f"Make this classifier safe to load: it is a {FORMAT_WORDS[meta['architecture']]}"):
        st.write("Every load of it runs the code it carries, and a torch.export program can only be fine-tuned "
                 "in the mode it was exported in. Name the class it was made from and Defuse rewrites it as "
                 "safetensors + that class, after checking both compute the same outputs.")
        with st.form("clf-convert", enter_to_submit=True):
            arch = st.text_input("Its network class, as module:Class (or paper-cnn, resnet18)")
            kwargs = st.text_input("Constructor arguments beyond channels, image size and classes (JSON)", "")
            go = st.form_submit_button("Convert to safetensors")
        if go:
            if not arch.strip():
                raise ValueError("name the network class the file was made from, as module:Class")
            with st.spinner("Converting and checking the outputs…"):
                convert_classifier_in_place(ws, arch.strip(), arch_kwargs=_json_kwargs(kwargs))
            st.success(f"Converted: the classifier is now safetensors + {arch.strip()}.")
