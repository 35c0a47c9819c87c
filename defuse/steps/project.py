"""Steps over a workspace: load inputs from it, call the pure step, save the result and its record.

The CLI (and through it the app's jobs) calls these; they hold no argument parsing and no printing.
"""

from __future__ import annotations

import shutil
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from torch import nn

from ..data.datasets import DatasetSpec, ImageData, load_dataset
from ..nets import checkpoints
from ..nets.early_stop import FidelityStop
from ..nets.preflight import check_pipeline_ready
from ..nets.train import (
    TrainConfig,
    VAEConfig,
    fidelity_split,
    train_classifier,
    train_vae,
    vae_architecture,
    vae_fidelity,
)
from ..runtime.progress import ProgressFn
from ..workspace import CLASSIFIER, CLASSIFIER_HISTORY, VAE, VAE_FIDELITY, VAE_HISTORY, Workspace

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEMO_CLASSIFIER = MODELS_DIR / "demo-classifier.json"
DEMO_VAE = MODELS_DIR / "demo-vae.json"
DEMO_DATASET = DatasetSpec(source="mnist-sample")   # the demo models' data

# The process's one data cache, by dataset spec: the steps of one `run` and the app's sessions share it.
# A few entries: the app may show a few projects at once; the lock keeps two sessions from loading twice.
DATA_CACHE_ENTRIES = 3
_data_cache: OrderedDict[str, ImageData] = OrderedDict()
_data_lock = threading.Lock()


def load_data(ws: Workspace) -> ImageData:
    """The workspace's dataset, loaded once per process and spec."""
    return _cached_data(ws.dataset)


def _cached_data(spec: DatasetSpec, data: Optional[ImageData] = None) -> ImageData:
    """The cached data of ``spec`` (loaded when missing), or ``data`` stored as its data."""
    key = repr(spec)
    with _data_lock:
        if data is not None or key not in _data_cache:
            _data_cache[key] = load_dataset(spec) if data is None else data
            while len(_data_cache) > DATA_CACHE_ENTRIES:
                _data_cache.popitem(last=False)
        _data_cache.move_to_end(key)
        return _data_cache[key]


def load_classifier(ws: Workspace) -> tuple[nn.Module, dict]:
    if not ws.exists(CLASSIFIER):
        raise ValueError(f"project {ws.name} has no classifier yet: run train-classifier first, or import one "
                         "(`init --classifier`, the Setup page)")
    return checkpoints.load_model(ws.path(CLASSIFIER), kind="classifier")


def load_vae(ws: Workspace) -> tuple[nn.Module, dict]:
    if not ws.exists(VAE):
        raise ValueError(f"project {ws.name} has no VAE yet: run train-vae first, or import one (`init --vae`, "
                         "the Setup page)")
    return checkpoints.load_model(ws.path(VAE), kind="vae")


def _copy_checkpoint(src_json: Path, ws: Workspace, rel_json: str) -> None:
    meta = checkpoints.read_meta(src_json)
    dest = ws.path(rel_json)
    dest.parent.mkdir(parents=True, exist_ok=True)
    weights = src_json.with_name(meta["weights_file"])
    tmp = dest.with_name(meta["weights_file"] + ".tmp")
    shutil.copyfile(weights, tmp)
    tmp.replace(dest.with_name(meta["weights_file"]))
    ws.save_json(rel_json, meta)


def import_classifier(ws: Workspace, path, *, architecture: Optional[str] = None,
                      arch_kwargs: Optional[dict] = None, trust_code: bool = False, device="auto") -> dict:
    """Check a user's classifier against the workspace data and store it as the project's classifier.

    The check is a dry run of every step the pipeline will ask of it (:mod:`defuse.nets.preflight`), so a
    network that cannot be searched, fine-tuned or exported is refused here, in seconds.
    """
    data = load_data(ws)
    geometry = dict(channels=data.channels, image_size=data.image_size, num_classes=data.num_classes)
    model, meta = checkpoints.load_classifier(path, architecture=architecture, geometry=geometry,
                                              arch_kwargs=arch_kwargs, trust_code=trust_code)
    checkpoints.check_compatible(meta, what="classifier", **geometry)
    split = data.val if len(data.val) >= 2 else data.train
    checks = check_pipeline_ready(model, split.images[:4], split.labels[:4], num_classes=data.num_classes,
                                  device=device, architecture=meta["architecture"])
    extra = {"source": str(path), "pipeline_checks": checks}
    if meta["architecture"] in checkpoints.EXTERNAL_FORMATS:
        checkpoints.import_external(path, ws.path(CLASSIFIER), architecture=meta["architecture"],
                                    class_names=data.class_names, extra=extra)
    else:
        checkpoints.save_model(model, ws.path(CLASSIFIER), kind="classifier", architecture=meta["architecture"],
                               arch_kwargs=meta.get("arch_kwargs", geometry), class_names=data.class_names,
                               config=meta.get("config"), metrics=meta.get("metrics"), extra=extra)
    return ws.record_step("classifier", config={"imported_from": str(path)}, metrics=meta.get("metrics"))


def convert_classifier_in_place(ws: Workspace, architecture: str, *, arch_kwargs: Optional[dict] = None,
                                trust_code: bool = False, device="auto") -> dict:
    """Replace the project's code-bearing classifier by safetensors + ``architecture`` (same outputs, checked)."""
    from ..nets.convert import convert_classifier

    data, old = load_data(ws), ws.load_json(CLASSIFIER, {})
    dest = ws.path("classifier/converted")
    convert_classifier(ws.path(CLASSIFIER), dest, architecture=architecture,
                       input_shape=(data.channels, data.image_size, data.image_size), arch_kwargs=arch_kwargs,
                       class_names=data.class_names, trust_code=trust_code)
    try:
        record = import_classifier(ws, dest.with_suffix(".json"), device=device)
    finally:
        for suffix in (".json", ".safetensors"):
            dest.with_suffix(suffix).unlink(missing_ok=True)
    if old.get("weights_file") not in (None, "model.safetensors"):  # the code-bearing original goes
        ws.path(f"classifier/{old['weights_file']}").unlink(missing_ok=True)
    return record


def import_vae(ws: Workspace, path) -> dict:
    data = load_data(ws)
    vae, meta = checkpoints.load_model(path, kind="vae")
    checkpoints.check_compatible(meta, what="VAE", channels=data.channels, image_size=data.image_size,
                                 num_classes=data.num_classes)
    _copy_checkpoint(Path(path).with_suffix(".json"), ws, VAE)
    return ws.record_step("vae", config={"imported_from": str(path)}, metrics=meta.get("metrics"))


def init_project(root, spec: DatasetSpec, *, classifier=None, architecture=None, arch_kwargs=None, vae=None,
                 trust_code: bool = False, force: bool = False) -> Workspace:
    """Create a workspace for ``spec`` (loading the data once to check it) and import models given."""
    data = _cached_data(spec, load_dataset(spec))  # loaded again: the files may have changed since
    existed = Path(root).exists()
    ws = Workspace.create(root, {"dataset": spec.to_dict(), "class_names": data.class_names}, overwrite=force)
    try:
        if classifier:
            import_classifier(ws, classifier, architecture=architecture, arch_kwargs=arch_kwargs,
                              trust_code=trust_code)
        if vae:
            import_vae(ws, vae)
    except Exception:
        if not existed:  # a failed init leaves no half-made project behind
            shutil.rmtree(ws.root, ignore_errors=True)
        raise
    return ws


def train_classifier_step(ws: Workspace, cfg: TrainConfig, *, device="auto",
                          on_progress: ProgressFn = None) -> dict:
    data = load_data(ws)
    result = train_classifier(data, cfg, device=device, on_progress=on_progress)
    ws.save_json(CLASSIFIER_HISTORY, result.history)
    checkpoints.save_model(result.model, ws.path(CLASSIFIER), kind="classifier", architecture=cfg.architecture,
                           arch_kwargs=result.arch_kwargs, class_names=data.class_names,
                           config=asdict(cfg), metrics=result.metrics)
    return ws.record_step("classifier", config=asdict(cfg), metrics=result.metrics)


def train_vae_step(ws: Workspace, cfg: VAEConfig, *, device="auto", on_progress: ProgressFn = None) -> dict:
    """Train the VAE; when the project has a classifier, measure and record its fidelity."""
    data = load_data(ws)
    classifier = load_classifier(ws)[0] if ws.exists(CLASSIFIER) else None
    # with a classifier, training ends once the validation fidelity passes the gate and stops improving
    stop = FidelityStop(classifier, data) if classifier is not None and cfg.early_stop else None
    result = train_vae(data, cfg, device=device, on_progress=on_progress, classifier=classifier, stop=stop)
    ws.save_json(VAE_HISTORY, result.history)
    checkpoints.save_model(result.model, ws.path(VAE), kind="vae", architecture=vae_architecture(cfg),
                           arch_kwargs=result.arch_kwargs, config=asdict(cfg), metrics=result.metrics)
    return ws.record_step("vae", config=asdict(cfg), metrics=result.metrics)


def measure_fidelity(ws: Workspace, *, device="auto") -> dict:
    """(Re-)measure the VAE's fidelity against the current classifier and store it in vae/fidelity.json."""
    vae, meta = load_vae(ws)
    split, unseen = fidelity_split((meta.get("config") or {}).get("train_on"))
    fidelity = {**vae_fidelity(vae, load_classifier(ws)[0], load_data(ws), split=split, device=device),
                "fidelity_split_unseen_by_vae": unseen}
    ws.save_json(VAE_FIDELITY, fidelity)
    return fidelity
