"""A regression suite: the confirmed failure scenarios frozen as portable, versioned test data.

Defuse's failure scenarios live in a workspace next to a VAE; a suite takes them out of it. Per
confirmed scenario it holds decoded samples drawn for testing only, from their own stream
(``scenario_stream(seed, j, "suite")`` of :mod:`defuse.distill.sampling`, apart from the annotators',
D_f's, failure validation's and failure test's streams), the scenario's label and description, the
automatic reviewer's per-sample labels where the project has one, and the original classifier's
predictions. Optionally the project's test split. ``manifest.json`` lists the sha256 of every file,
the format version and the settings and fingerprints that made it; :func:`read_suite` refuses a
suite whose files no longer match. Images are stored as uint8 (what a PNG would hold), and the
original predictions are taken on those stored images, so checking the original classifier
reproduces them exactly.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..data import render
from ..runtime import atomic
from ..runtime.words import option

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SAMPLES_FILE = "scenarios.npz"
TEST_FILE = "test.npz"
INFO_FILE = "scenarios.json"
_SAMPLE_ARRAYS = ("images", "labels", "sample_labels", "scenario_ids", "original_predictions", "original_confidence")
_TEST_ARRAYS = ("images", "labels", "original_predictions")


@dataclass(frozen=True)
class SuiteScenario:
    """One confirmed failure scenario in a suite."""

    id: int            # the scenario's row j in the project's distilled scenarios
    label: int         # its true label (the annotators' majority)
    description: str   # in words: what the classifier does wrong there
    n: int             # samples of it in the suite


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare fields, not suites
class RegressionSuite:
    """The contents of a suite folder. Images are (n, C, H, W) uint8; labels are class indices."""

    images: np.ndarray                # (n, C, H, W) uint8: decoded samples of the scenarios
    labels: np.ndarray                # (n,) int64: each sample's scenario label
    sample_labels: np.ndarray         # (n,) int64: the automatic reviewer's label per sample, -1: none
    scenario_ids: np.ndarray          # (n,) int64: the scenario each sample was drawn from
    original_predictions: np.ndarray  # (n,) int64: the debugged classifier's label on each stored image
    original_confidence: np.ndarray   # (n,) float32: its max softmax probability
    scenarios: tuple[SuiteScenario, ...]
    class_names: tuple[str, ...]
    settings: dict = field(default_factory=dict, compare=False)  # how it was made (seed, τ, fingerprints, ...)
    test_images: Optional[np.ndarray] = None       # (n_test, C, H, W) uint8: the project's test split
    test_labels: Optional[np.ndarray] = None       # (n_test,) int64
    test_original_predictions: Optional[np.ndarray] = None  # (n_test,) int64

    def __post_init__(self):
        x = self.images
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype != np.uint8 or len(x) == 0:
            raise ValueError(f"suite images must be a non-empty (n, C, H, W) uint8 array; got "
                             f"{getattr(x, 'shape', type(x).__name__)} {getattr(x, 'dtype', '')}")
        for name in _SAMPLE_ARRAYS[1:]:
            if np.shape(getattr(self, name)) != (len(x),):
                raise ValueError(f"suite {name} must have shape ({len(x)},); got {np.shape(getattr(self, name))}")
        known = {s.id for s in self.scenarios}
        if set(np.unique(self.scenario_ids).tolist()) != known:
            raise ValueError(f"suite scenario_ids {sorted(set(self.scenario_ids.tolist()))} do not match its "
                             f"scenarios {sorted(known)}")
        if self.test_images is not None:
            n = len(self.test_images)
            if self.test_images.shape[1:] != x.shape[1:] or np.shape(self.test_labels) != (n,) \
                    or np.shape(self.test_original_predictions) != (n,):
                raise ValueError("suite test data must be images of the scenarios' shape with one label and one "
                                 "original prediction each")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def has_test(self) -> bool:
        return self.test_images is not None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def geometry(self) -> dict:
        """``channels``, ``image_size``, ``num_classes``: what a classifier for this suite must take."""
        return {"channels": int(self.images.shape[1]), "image_size": int(self.images.shape[2]),
                "num_classes": self.num_classes}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(n, C, H, W) floats in [0, 1] -> (n, C, H, W) uint8 (round to nearest, as an 8-bit PNG stores them)."""
    return np.ascontiguousarray(render.to_uint8(images).transpose(0, 3, 1, 2))


def as_float(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, C, H, W) -> float32 in [0, 1], the classifiers' input."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255)


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, *, batch_size: int = 1024, device="cpu",
            num_classes: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """A classifier's labels (n,) int64 and confidences (n,) float32 on uint8 images, in batches.

    ``num_classes``: the logits' expected width; another raises ValueError.
    """
    dev = torch.device(device)
    model = model.to(dev).eval()
    labels, confidence = [], []
    for i in range(0, len(images), batch_size):
        x = as_float(images[i:i + batch_size]).to(dev)
        try:
            logits = model(x).float()
        except Exception as e:  # a foreign model can fail in any way; say what the images looked like
            raise ValueError(f"the classifier fails on images of shape {tuple(x.shape[1:])} ({type(e).__name__}: "
                             f"{str(e)[:200]}): use a classifier of this suite's data") from e
        if logits.ndim != 2 or (num_classes and logits.shape[1] != num_classes):
            want = num_classes or "classes"
            raise ValueError(f"the classifier must output (N, {want}) logits for these images; got shape "
                             f"{tuple(logits.shape)}: use a classifier of this suite's data")
        conf, pred = torch.softmax(logits, dim=1).max(dim=1)
        labels.append(pred.cpu())
        confidence.append(conf.cpu())
    return torch.cat(labels).numpy().astype(np.int64), torch.cat(confidence).numpy().astype(np.float32)


# ------------------------------------------------------------------ writing and reading

def write_suite(suite: RegressionSuite, out) -> Path:
    """Write ``suite`` into the folder ``out`` atomically: a temp folder beside it, renamed into place.

    An existing ``out`` is replaced only when it is a suite (it holds a manifest) or empty.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).exists())):
        raise ValueError(f"{out} exists and is not a Defuse suite; choose another "
                         f"{option('out')} (nothing was written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a suite is meant to be shared
        _write_files(suite, tmp)
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_files(suite: RegressionSuite, folder: Path) -> None:
    np.savez_compressed(folder / SAMPLES_FILE, **{k: getattr(suite, k) for k in _SAMPLE_ARRAYS})
    files = [SAMPLES_FILE, INFO_FILE]
    if suite.has_test:
        np.savez_compressed(folder / TEST_FILE, **{k: getattr(suite, f"test_{k}") for k in _TEST_ARRAYS})
        files.append(TEST_FILE)
    atomic.write_json(folder / INFO_FILE, {"class_names": list(suite.class_names),
                                           "scenarios": [vars(s) for s in suite.scenarios]})
    manifest = {"format_version": FORMAT_VERSION, "kind": "defuse-regression-suite", "defuse_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "n_samples": len(suite), "n_scenarios": len(suite.scenarios),
                "n_test": len(suite.test_images) if suite.has_test else 0, "settings": suite.settings,
                "files": {name: atomic.sha256_file(folder / name) for name in files}}
    atomic.write_json(folder / MANIFEST, manifest)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_in(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out``; an old suite there is moved aside first, then removed."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / "suite")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(folder) -> dict:
    folder = Path(folder)
    if not (folder / MANIFEST).exists():
        raise ValueError(f"{folder} is not a Defuse suite (no {MANIFEST}); make one with "
                         "`python -m defuse suite -w WORKSPACE --out DIR`")
    manifest = atomic.read_json(folder / MANIFEST, fix="the suite is damaged: make it again with `defuse suite`")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or not isinstance(manifest.get("files"), dict):
        raise ValueError(f"{folder / MANIFEST} has suite format version {version!r}; this Defuse reads version "
                         f"{FORMAT_VERSION} or older: upgrade Defuse, or make the suite again")
    return manifest


def verify_suite(folder) -> dict:
    """Check every file against the manifest's sha256; return the manifest, or raise naming the files."""
    folder, manifest = Path(folder), read_manifest(folder)
    if SAMPLES_FILE not in manifest["files"]:
        raise ValueError(f"{folder / MANIFEST} does not list {SAMPLES_FILE}: the suite is damaged; make it again")
    bad = [name for name, digest in sorted(manifest["files"].items())
           if "/" in name or not (folder / name).is_file() or atomic.sha256_file(folder / name) != digest]
    if bad:
        raise ValueError(f"suite {folder} was changed or damaged since it was made: {', '.join(bad)} "
                         f"{'does' if len(bad) == 1 else 'do'} not match the sha256 in {MANIFEST}. Refusing to "
                         "check against it; make the suite again with `python -m defuse suite`")
    return manifest


def _load_npz(path: Path, names: tuple) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in names}
    except (ValueError, OSError, KeyError) as e:
        raise ValueError(f"{path} is not a readable suite file ({e}); make the suite again") from e


def read_suite(folder) -> RegressionSuite:
    """Load a suite after :func:`verify_suite`; a tampered or damaged one raises ValueError."""
    folder = Path(folder)
    manifest = verify_suite(folder)
    arrays = _load_npz(folder / SAMPLES_FILE, _SAMPLE_ARRAYS)
    info = atomic.read_json(folder / INFO_FILE, fix="make the suite again")
    test = {}
    if TEST_FILE in manifest["files"]:
        test = {f"test_{k}": v for k, v in _load_npz(folder / TEST_FILE, _TEST_ARRAYS).items()}
    try:
        scenarios = tuple(SuiteScenario(**s) for s in info["scenarios"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"{folder / INFO_FILE} does not describe the scenarios ({e}); make the suite again") from e
    return RegressionSuite(**arrays, scenarios=scenarios, class_names=tuple(info.get("class_names", [])),
                           settings=manifest.get("settings", {}), **test)
