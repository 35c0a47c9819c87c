"""A project's workspace folder: its artifacts, each step's record, and what is stale.

Every step writes its outputs and then ``<step>/step.json`` holding its config, the sha256 of each
input artifact and of each output. A step is *stale* when an input changed since (or an upstream
step is stale), *corrupt* when an output no longer matches its checksum, *missing* when never run.
All writes are atomic (:mod:`defuse.runtime.atomic`).
"""

from __future__ import annotations

import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .data.datasets import DatasetSpec
from .runtime import atomic
from .runtime.words import option

# The artifacts of a project folder, relative to its root: every step, command and page names them from here.
PROJECT_FILE = "project.json"
CLASSIFIER = "classifier/model.json"
CLASSIFIER_HISTORY = "classifier/history.json"
VAE = "vae/model.json"
VAE_HISTORY = "vae/history.json"
VAE_FIDELITY = "vae/fidelity.json"
FAILURES = "identify/failures.npz"
IDENTIFY_METRICS = "identify/metrics.json"
IDENTIFY_CHUNKS = "identify/chunks"          # resume state of a search
SCENARIOS = "distill/scenarios.npz"
SCENARIOS_META = "distill/meta.json"
TAUS = "distill/tau.json"                    # τ per scenario, chosen by the reviewer (defuse.distill.tau)
EMBEDDING = "distill/embedding-{method}.npz"  # .format(method=...); its metadata: the same name in .json
LABELS = "labels.sqlite"
DECISIONS = "label/decisions.json"          # the current answers, recorded on every change (label step)
VERDICTS = "label/verdicts.json"            # what the answers mean per scenario (the correction's input)
REVIEWER_DIR = "reviewer"
SWEEP = "correct/sweep.json"
SWEEP_DIR = "correct/sweep"                  # weights per λ, and the sweep's resume state
BEST = "correct/best.json"
EXPORTS = "exports"
MODEL_CARD = "exports/model-card.json"
MODEL_CARD_MD = "exports/model-card.md"
SUITE_DIR = "exports/suite"                  # the regression suite, inside exports/ so the bundle carries it
HTML_REPORT = "exports/report.html"
REPORT = "report.json"


# Who makes each artifact: (the CLI command, the app's page), so a missing input is named by the step to run.
MADE_BY = {CLASSIFIER: ("train-classifier", "Setup"), VAE: ("train-vae", "Setup"), VAE_FIDELITY: ("train-vae", "Setup"),
           FAILURES: ("identify", "Identify"), IDENTIFY_METRICS: ("identify", "Identify"),
           SCENARIOS: ("distill", "Explore"), SCENARIOS_META: ("distill", "Explore"),
           DECISIONS: ("label", "Label"), VERDICTS: ("label", "Label"), LABELS: ("label", "Label"),
           SWEEP: ("correct", "Correct"), BEST: ("correct", "Correct"), MODEL_CARD: ("export", "Correct"),
           REPORT: ("correct", "Correct")}


def missing_message(ws_name: str, rel: str) -> str:
    """"… has no identify/failures.npz yet: run identify first (…)", naming the step, never an absolute path."""
    cmd, page = MADE_BY.get(rel) or (("embed", "Explore") if rel.startswith("distill/embedding-") else (None, None))
    if cmd is None:
        return f"project {ws_name} has no {rel} yet: run the step that makes it"
    return (f"project {ws_name} has no {rel} yet: run {cmd} first (the {page} page, or "
            f"`python -m defuse {cmd} -w {ws_name}`)")


@dataclass(frozen=True)
class StepSpec:
    outputs: tuple[str, ...]   # artifacts the step writes (relative paths)
    inputs: tuple[str, ...]    # artifacts it reads, whose change makes it stale
    upstream: tuple[str, ...]  # steps that must be done first


# The pipeline in order. Later issues add steps here; the app's Home page shows them in this order.
STEPS: dict[str, StepSpec] = {
    # A model's fingerprinted artifact is its JSON sidecar, which holds the weights' sha256.
    "classifier": StepSpec((CLASSIFIER,), (PROJECT_FILE,), ()),
    "vae": StepSpec((VAE,), (PROJECT_FILE,), ()),
    "identify": StepSpec((FAILURES,), (CLASSIFIER, VAE, PROJECT_FILE), ("classifier", "vae")),
    "distill": StepSpec((SCENARIOS,), (FAILURES,), ("identify",)),
    # Labeling: its record holds the current answers (defuse.steps.label_record). The correction reads what they
    # mean (VERDICTS): a changed verdict stales it, the same verdict saved again by someone else does not.
    # τ per scenario decides which images are reviewed and corrected on: choosing it again stales both.
    "label": StepSpec((DECISIONS,), (SCENARIOS, TAUS), ("distill",)),
    "correct": StepSpec((BEST,), (SCENARIOS, CLASSIFIER, VERDICTS, TAUS), ("distill",)),
    "export": StepSpec((MODEL_CARD,), (BEST,), ("correct",)),
}


def default_home() -> Path:
    return Path(os.environ.get("DEFUSE_HOME", "workspaces"))


class Workspace:
    """One project folder. ``Workspace(path)`` opens it; :meth:`create` makes a new one."""

    def __init__(self, root):
        self.root = Path(root)
        self._fingerprints: dict[str, tuple] = {}
        self._project: Optional[tuple] = None  # (file key, contents, DatasetSpec or None): see _project_file

    # --- creation and the project file -------------------------------------------------------
    @classmethod
    def create(cls, root, project: dict, *, overwrite: bool = False) -> Workspace:
        ws = cls(root)
        if ws.path(PROJECT_FILE).exists() and not overwrite:
            raise ValueError(f"{ws.root} already holds a project; choose another {option('workspace')}, "
                             f"or pass {option('force')} to replace its project settings")
        ws.root.mkdir(parents=True, exist_ok=True)
        ws.save_json(PROJECT_FILE, {"created": time.time(), **project})
        return ws

    @classmethod
    def open(cls, root) -> Workspace:
        ws = cls(root)
        if not ws.path(PROJECT_FILE).exists():
            raise ValueError(f"{ws.root} is not a Defuse workspace (no {PROJECT_FILE}); "
                             "create it with `python -m defuse init --workspace ...`")
        return ws

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def project(self) -> dict:
        """The contents of project.json (read again only after the file changed)."""
        return dict(self._project_file()[1])

    @property
    def dataset(self) -> DatasetSpec:
        """The project's dataset spec: parsed and validated once per version of project.json."""
        key, project, spec = self._project_file()
        if spec is None:
            spec = DatasetSpec.from_dict(project["dataset"])
            self._project = (key, project, spec)
        return spec

    def _project_file(self) -> tuple:
        p = self.path(PROJECT_FILE)
        stat = p.stat() if p.exists() else None
        # an atomic write replaces the file: a new inode even when size and mtime tick are the same
        key = stat and (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._project is None or key is None or self._project[0] != key:
            self._project = (key, self.load_json(PROJECT_FILE), None)
        return self._project

    def update_project(self, **changes) -> None:
        self.save_json(PROJECT_FILE, {**self.project, **changes})

    # --- artifacts ----------------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        p = (self.root / rel).resolve()
        if self.root.resolve() not in (p, *p.parents):
            raise ValueError(f"{rel!r} points outside the workspace {self.root}")
        return p

    def exists(self, rel: str) -> bool:
        return self.path(rel).exists()

    def save_json(self, rel: str, obj) -> Path:
        atomic.write_json(self.path(rel), obj)
        return self.path(rel)

    def load_json(self, rel: str, default=None):
        p = self.path(rel)
        if not p.exists():
            if default is not None:
                return default
            raise ValueError(missing_message(self.name, rel))
        return atomic.read_json(p, fix="it is corrupt: re-run the step that makes it")

    def save_arrays(self, rel: str, **arrays) -> Path:
        """Save arrays as an .npz that np.load reads; the same arrays give the same bytes (no timestamps in
        the archive), so a step re-run with the same result leaves every later step up to date."""
        # Straight into the temp file: an in-memory buffer held the archive twice (buffer + its bytes).
        with atomic.atomic_path(self.path(rel)) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED,
                                                                         allowZip64=True) as z:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with z.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
        return self.path(rel)

    def load_arrays(self, rel: str) -> dict[str, np.ndarray]:
        p = self.path(rel)
        if not p.exists():
            raise ValueError(missing_message(self.name, rel))
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f"{p} is corrupt ({e}); re-run the step that makes it") from e

    def fingerprint(self, rel: str) -> Optional[str]:
        """sha256 of an artifact (cached by size and mtime), or None when it does not exist."""
        p = self.path(rel)
        if not p.exists():
            return None
        st = p.stat()
        key = (st.st_size, st.st_mtime_ns)
        cached = self._fingerprints.get(rel)
        if cached and cached[0] == key:
            return cached[1]
        digest = atomic.sha256_file(p)
        self._fingerprints[rel] = (key, digest)
        return digest

    # --- step records and staleness -------------------------------------------------------------
    def record_step(self, step: str, *, config: dict, metrics: Optional[dict] = None) -> dict:
        """Call after a step wrote its outputs: saves config, input and output fingerprints."""
        spec = STEPS[step]
        record = {"step": step, "finished": time.time(), "config": config, "metrics": metrics or {},
                  "inputs": {rel: self.fingerprint(rel) for rel in spec.inputs if rel != PROJECT_FILE},
                  "dataset": self.project.get("dataset"),
                  "outputs": {rel: self.fingerprint(rel) for rel in spec.outputs}}
        self.save_json(f"{step}/step.json", record)
        return record

    def step_record(self, step: str) -> Optional[dict]:
        rel = f"{step}/step.json"
        return self.load_json(rel) if self.exists(rel) else None

    def verify(self, rel: str, step: str) -> None:
        """Raise ValueError when ``rel`` no longer matches the checksum ``step`` recorded for it."""
        record = self.step_record(step)
        digest = (record or {}).get("outputs", {}).get(rel)
        if digest is not None and self.fingerprint(rel) != digest:
            raise ValueError(f"{self.path(rel)} does not match the checksum recorded when `{step}` wrote it: "
                             f"the file is corrupt or was changed. Re-run `{step}`.")

    def step_status(self, step: str, _seen: Optional[dict] = None) -> str:
        """'done', 'stale', 'corrupt' or 'missing'."""
        seen = {} if _seen is None else _seen
        if step in seen:
            return seen[step]
        spec, record = STEPS[step], self.step_record(step)
        if record is None or any(not self.exists(rel) for rel in spec.outputs):
            status = "missing"
        elif any(self.fingerprint(rel) != digest for rel, digest in record["outputs"].items()):
            status = "corrupt"
        elif record.get("dataset") != self.project.get("dataset") or any(
                self.fingerprint(rel) != digest for rel, digest in record["inputs"].items()):
            status = "stale"
        elif any(self.step_status(up, seen) != "done" for up in spec.upstream):
            status = "stale"
        else:
            status = "done"
        seen[step] = status
        return status

    def status(self) -> dict[str, str]:
        seen: dict = {}
        return {step: self.step_status(step, seen) for step in STEPS}


def list_workspaces(home=None) -> list[Path]:
    home = Path(home) if home else default_home()
    if not home.exists():
        return []
    return sorted(p for p in home.iterdir() if (p / PROJECT_FILE).exists())
