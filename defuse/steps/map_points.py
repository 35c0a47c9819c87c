"""The latent map's points with what Explore filters, colours, sorts and exports them by.

Each point is a failure code (an unrestricted adversarial example) or a training image's code. Per
point: its 2-D coordinates, the source image's true label, the classifier's prediction and confidence
(max softmax) and confidence margin (top-1 minus top-2 probability) on the decoded image or the
training image, and its failure scenario (-1: none, or a training image).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, fields, replace
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.render import to_uint8

CSV_COLUMNS = ("id", "kind", "row", "true_label", "prediction", "confidence", "margin", "scenario", "x", "y")
KINDS = ("failure", "training image")


@dataclass(frozen=True)
class MapPoints:
    is_failure: np.ndarray   # (n,) bool: a failure code, else a training image's code
    row: np.ndarray          # (n,) int64: row in the failures, or in the training images
    x: np.ndarray            # (n,) float32: map coordinates
    y: np.ndarray
    true_label: np.ndarray   # (n,) int64: the (source) image's true label
    prediction: np.ndarray   # (n,) int64: the classifier's label on the (decoded) image
    confidence: np.ndarray   # (n,) float32: its max softmax probability
    margin: np.ndarray       # (n,) float32: top-1 minus top-2 probability (small: the classifier hesitates)
    scenario: np.ndarray     # (n,) int64: the failure's scenario; -1: none or a training image

    def __len__(self) -> int:
        return len(self.row)

    @property
    def ids(self) -> list[str]:
        """Stable names: ``failure-<row>`` or ``train-<row>``."""
        return [f"{'failure' if f else 'train'}-{r}" for f, r in zip(self.is_failure, self.row, strict=True)]

    def take(self, index) -> MapPoints:
        """The points at ``index`` (a bool mask or positions), in that order."""
        return MapPoints(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass(frozen=True)
class PointFilter:
    """Which points to keep; None keeps every value of that field."""

    kinds: Optional[tuple] = None          # subset of KINDS
    true_labels: Optional[tuple] = None
    predictions: Optional[tuple] = None
    scenarios: Optional[tuple] = None      # -1: failures outside any scenario
    min_confidence: float = 0.0
    max_confidence: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.min_confidence <= self.max_confidence <= 1.0:
            raise ValueError("confidence bounds must satisfy 0 <= min <= max <= 1; got "
                             f"min {self.min_confidence!r}, max {self.max_confidence!r}")
        if self.kinds is not None and not set(self.kinds) <= set(KINDS):
            raise ValueError(f"kinds must be among {list(KINDS)}; got {list(self.kinds)}")

    def mask(self, p: MapPoints) -> np.ndarray:
        keep = (p.confidence >= self.min_confidence) & (p.confidence <= self.max_confidence)
        if self.kinds is not None:
            keep &= np.isin(p.is_failure, [k == "failure" for k in self.kinds])
        for values, field in ((self.true_labels, p.true_label), (self.predictions, p.prediction),
                              (self.scenarios, p.scenario)):
            if values is not None:
                keep &= np.isin(field, np.asarray(values, dtype=np.int64))
        return keep


@torch.no_grad()
def classify(classifier: nn.Module, images: torch.Tensor, *, batch_size: int = 1024) -> tuple:
    """(prediction (n,) int64, confidence (n,) float32, margin (n,) float32) of ``classifier`` on images in [0, 1]."""
    classifier.eval()
    probs = [torch.softmax(classifier(images[i:i + batch_size]).float(), 1) for i in range(0, len(images), batch_size)]
    if not probs:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32)
    top = torch.cat(probs).topk(2, dim=1)
    return (top.indices[:, 0].numpy().astype(np.int64), top.values[:, 0].numpy().astype(np.float32),
            (top.values[:, 0] - top.values[:, 1]).numpy().astype(np.float32))


def by_margin(points: MapPoints) -> np.ndarray:
    """Positions of ``points`` from the smallest confidence margin (least sure) to the largest."""
    return np.argsort(points.margin, kind="stable")


def selection_csv(points: MapPoints) -> str:
    """The points as CSV (:data:`CSV_COLUMNS`), one row each, in order."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for i, pid in enumerate(points.ids):
        w.writerow([pid, "failure" if points.is_failure[i] else "training image", int(points.row[i]),
                    int(points.true_label[i]), int(points.prediction[i]), f"{points.confidence[i]:.4f}",
                    f"{points.margin[i]:.4f}", int(points.scenario[i]), f"{points.x[i]:.5g}", f"{points.y[i]:.5g}"])
    return buf.getvalue()


def selection_zip(points: MapPoints, images: torch.Tensor) -> bytes:
    """A zip of ``selection.csv`` and one PNG per point (``images/<id>.png``); ``images`` (n, C, H, W) in [0, 1]."""
    if len(images) != len(points):
        raise ValueError(f"one image per point: got {len(images)} images for {len(points)} points")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("selection.csv", selection_csv(points))
        for pid, img in zip(points.ids, to_uint8(images), strict=True):
            png = io.BytesIO()
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(png, format="PNG")
            z.writestr(f"images/{pid}.png", png.getvalue())
    return buf.getvalue()


# --- over a workspace (the Explore page and the `select-export` command) -------------------------------
def point_images(ws, is_failure: np.ndarray, row: np.ndarray, *, device="cpu") -> torch.Tensor:
    """Images (n, C, H, W) in [0, 1] of points: failures decoded from their codes, training images as they are."""
    from ..nets.inference import decode_latents
    from .identify import load_failures
    from .project import load_data, load_vae

    train = load_data(ws).train.images
    out = torch.empty((len(row), *train.shape[1:]), dtype=torch.float32)
    fail = np.asarray(is_failure, bool)
    if fail.any():
        out[torch.from_numpy(fail)] = decode_latents(load_vae(ws)[0], load_failures(ws).latents[row[fail]],
                                                     device=device)
    if (~fail).any():
        out[torch.from_numpy(~fail)] = train[torch.as_tensor(row[~fail])]
    return out


def workspace_points(ws, method: str, *, max_points: Optional[int] = None, device="cpu",
                     chunk: int = 4096) -> MapPoints:
    """The points of the workspace's ``method`` map, with the classifier's view of each (decoded in chunks).

    ``max_points``: a random subset (seed 0) of at most this many, as the page draws.
    """
    from .distill import SCENARIOS, load_scenarios
    from .embed import load_embedding
    from .identify import load_failures
    from .project import load_classifier, load_data

    found = load_embedding(ws, method)
    if found is None or not found[1]:
        why = "no" if found is None else "only an out-of-date (made before the last identify run)"
        raise ValueError(f"there is {why} {method} map: compute it first (Explore page, or "
                         f"`python -m defuse embed -w {ws.root} --method {method}`)")
    emb, classifier = found[0], load_classifier(ws)[0]
    if max_points is not None and len(emb) > max_points:
        keep = np.sort(np.random.default_rng(0).choice(len(emb), max_points, replace=False))
        emb = replace(emb, coords=emb.coords[keep], is_failure=emb.is_failure[keep], row=emb.row[keep])
    parts = [classify(classifier, point_images(ws, emb.is_failure[i:i + chunk], emb.row[i:i + chunk], device=device))
             for i in range(0, len(emb), chunk)]
    pred, conf, margin = (np.concatenate(p) for p in zip(*parts, strict=True))
    fail, rows = emb.is_failure, emb.row
    scenario = np.full(len(emb), -1, np.int64)
    if ws.exists(SCENARIOS):
        scenario[fail] = load_scenarios(ws).assignment[rows[fail]]
    true = load_data(ws).train.labels.numpy()[np.where(fail, 0, rows)]
    true[fail] = load_failures(ws).true_label[rows[fail]]
    return MapPoints(is_failure=fail, row=rows, x=emb.coords[:, 0], y=emb.coords[:, 1],
                     true_label=true.astype(np.int64), prediction=pred, confidence=conf,
                     margin=margin, scenario=scenario)
