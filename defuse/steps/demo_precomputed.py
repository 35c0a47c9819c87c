"""The demo's first look, made ahead: identify, distill, the latent maps and a reviewer, shipped in ``models/``.

`python -m defuse demo --rebuild` runs those steps once on the demo models and copies their artifacts into
``models/demo-precomputed/`` with a manifest of sha256s. A fresh demo project copies them in when it is
created, so the app's first look (Identify, Explore, Label) answers in seconds instead of minutes; every
step can still be recomputed from its page. Nothing is installed unless its bytes match the manifest and
the manifest was made from the very demo models the project imports (their weights' sha256); what does
not match is left out, and its step shows as not done.

The artifacts are plain arrays (npz without pickles), JSON and safetensors: no code is loaded from them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..distill.embed import EmbedConfig
from ..distill.scenarios import DistillConfig
from ..identify.search import IdentifyConfig
from ..label.reviewer import ReviewerConfig
from ..runtime import atomic
from ..runtime.progress import ProgressFn, RunOptions
from ..runtime.words import option
from ..workspace import FAILURES, IDENTIFY_METRICS, Workspace
from .distill import distill_step
from .embed import EMBEDDING, embed_step
from .identify import identify_step
from .label import REVIEWER_DIR, get_reviewer
from .precomputed_record import INSTALLED, files_intact  # noqa: F401  (files_intact re-exported)
from .presets import QUICK
from .project import DEMO_DATASET, MODELS_DIR, init_project

PRECOMPUTED_DIR = MODELS_DIR / "demo-precomputed"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FirstLook:
    """The settings of the precomputed first-look steps."""

    identify: IdentifyConfig
    distill: DistillConfig
    maps: tuple                 # projections of the Explore page's map, e.g. ("umap", "pca")
    reviewer: ReviewerConfig


# The app's own defaults, so the shipped results are what its first click would have made.
DEMO_FIRST_LOOK = FirstLook(
    identify=QUICK.identify,            # the Identify page's "CPU-friendly" settings
    distill=DistillConfig(),
    maps=("umap", "pca"),               # the Explore page's default projection, and the instant one
    # Three members of the paper's CNN: the default ensemble swaps one for a 4 MB wide CNN; this keeps models/ small.
    reviewer=ReviewerConfig(architectures=("paper-cnn",)))

# group -> the groups it needs first (identify also needs the demo models the manifest names)
GROUPS = {"identify": (), "distill": ("identify",), "map": ("identify",), "reviewer": ()}
RECORDED_STEPS = ("identify", "distill")            # groups that are workspace steps with a step record


def _group_files(ws: Workspace, group: str, maps) -> list[str]:
    if group == "identify":
        return [FAILURES, IDENTIFY_METRICS]
    if group == "distill":
        return ["distill/scenarios.npz", "distill/meta.json"]
    if group == "map":
        npz = [EMBEDDING.format(method=m) for m in maps]
        return npz + [rel.replace(".npz", ".json") for rel in npz]
    folder = ws.path(REVIEWER_DIR)
    return sorted(str(p.relative_to(ws.root)) for p in folder.iterdir() if p.is_file())


def _model_shas(models_dir: Path) -> dict:
    from ..nets import checkpoints

    return {kind: checkpoints.read_meta(models_dir / f"demo-{kind}.json")["sha256"] for kind in ("classifier", "vae")}


def build_precomputed(models_dir=None, *, out=None, first_look: FirstLook = DEMO_FIRST_LOOK, device="auto",
                      on_progress: ProgressFn = None, only: Optional[tuple] = None) -> dict:
    """Run the first-look steps on the demo models in ``models_dir``; write ``out`` (default
    ``<models_dir>/demo-precomputed``) with the artifacts and their manifest. Returns the manifest.

    ``only``: remake just these groups (e.g. ("reviewer",) after the reviewer gained its grader) and keep
    the others from the existing ``out``, verified against its manifest; refused where one does not verify.
    """
    models_dir = Path(models_dir) if models_dir else MODELS_DIR
    out = Path(out) if out else models_dir / PRECOMPUTED_DIR.name
    unknown = sorted(set(only or ()) - set(GROUPS))
    if unknown:
        raise ValueError(f"{option('only')} takes the groups {', '.join(GROUPS)}; got {', '.join(unknown)}")
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="defuse-demo-") as tmp:
        ws = init_project(Path(tmp) / "demo", DEMO_DATASET, classifier=models_dir / "demo-classifier.json",
                          vae=models_dir / "demo-vae.json")
        look = first_look
        if only:
            kept = install_precomputed(ws, out, models_dir)
            broken = {g: why for g, why in kept.items() if g not in only and why != "installed"}
            if broken:
                raise ValueError("cannot keep the other groups of " + str(out) + ": " + "; ".join(
                    f"{g}: {why}" for g, why in broken.items()) + f" (rebuild them too, or drop {option('only')})")
            old = atomic.read_json(out / MANIFEST, fix="rebuild it whole: `python -m defuse demo --rebuild`")
            seconds.update({g: t for g, t in old.get("seconds", {}).items() if g not in only})
            for group in only:   # made anew, not reused (a reviewer found in the project would be)
                for rel in old["groups"].get(group, {}).get("files", {}):
                    ws.path(rel).unlink(missing_ok=True)
        runs = {"identify": lambda: identify_step(ws, look.identify,
                                                  run=RunOptions(device=device, on_progress=on_progress)),
                "distill": lambda: distill_step(ws, look.distill, on_progress=on_progress),
                "map": lambda: [embed_step(ws, EmbedConfig(method=m), on_progress=on_progress) for m in look.maps],
                "reviewer": lambda: get_reviewer(ws, "auto", cfg=look.reviewer, device=device,
                                                 on_progress=on_progress)}
        for group, run in runs.items():
            if only and group not in only:
                continue
            t = time.perf_counter()
            run()
            seconds[group] = round(time.perf_counter() - t, 2)
        manifest = {"format_version": FORMAT_VERSION, "made_from": _model_shas(models_dir),
                    "dataset": DEMO_DATASET.to_dict(), "seconds": seconds, "groups": {}}
        staging = out.with_name(out.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for group in GROUPS:
            files = _group_files(ws, group, first_look.maps)
            entry = {"files": {rel: ws.fingerprint(rel) for rel in files}}
            if group in RECORDED_STEPS:
                record = ws.step_record(group)
                entry.update(config=record["config"],
                             metrics={k: v for k, v in record["metrics"].items() if k != "precomputed"})
            manifest["groups"][group] = entry
            for rel in files:
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ws.path(rel), staging / rel)
    atomic.write_json(staging / MANIFEST, manifest)
    shutil.rmtree(out, ignore_errors=True)   # replaced whole, so no file of an older build lingers
    staging.replace(out)
    return manifest


def _verify_source(src: Path, files: dict) -> Optional[str]:
    """None when every file is there with its sha256, else what is wrong."""
    for rel, digest in files.items():
        if not (src / rel).is_file():
            return f"{rel} is missing"
        if atomic.sha256_file(src / rel) != digest:
            return f"{rel} does not match its sha256 in the manifest (changed or corrupt)"
    return None


def install_precomputed(ws: Workspace, src=None, models_dir=None) -> dict[str, str]:
    """Copy the verified precomputed artifacts into a fresh demo workspace and record their steps.

    Returns group -> "installed" or why it was left out (the step then simply has not run yet)."""
    src, models_dir = Path(src) if src else PRECOMPUTED_DIR, Path(models_dir) if models_dir else MODELS_DIR
    try:
        manifest = atomic.read_json(src / MANIFEST, fix="rebuild it with `python -m defuse demo --rebuild`")
    except (ValueError, OSError) as e:
        return dict.fromkeys(GROUPS, f"no usable manifest ({e})")
    if manifest.get("format_version") != FORMAT_VERSION or manifest.get("dataset") != ws.project["dataset"]:
        return dict.fromkeys(GROUPS, "made for another format or dataset")
    models_match = manifest.get("made_from") == _model_shas(models_dir)
    result, installed = {}, {}
    for group, needs in GROUPS.items():
        entry = manifest["groups"].get(group, {})
        why = next((f"needs {n}, which was left out" for n in needs if result.get(n) != "installed"), None)
        if why is None and group != "reviewer" and not models_match:
            why = "made from other demo models than those in models/"
        why = why or _verify_source(src, entry.get("files", {}))
        result[group] = why or "installed"
        if why:
            continue
        for rel in entry["files"]:
            with atomic.atomic_path(ws.path(rel)) as tmp:
                shutil.copyfile(src / rel, tmp)
        installed[group] = entry["files"]
        if group in RECORDED_STEPS:
            ws.record_step(group, config=entry["config"], metrics={**entry["metrics"], "precomputed": True})
    ws.save_json(INSTALLED, {"source": str(src), "installed": installed, "result": result})
    return result

