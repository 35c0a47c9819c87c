"""Correct: fine-tune the classifier until it gets its failure scenarios right (paper §3.2.3, §4.1, §4.3).

For each λ of a sweep, a fresh copy of the classifier is fine-tuned on F(D, D_f) = L(D) + λ·CE(D_f):
the training data D plus D_f, samples of the failure scenarios labelled with each scenario's label.
λ=0, the *control*, is the same fine-tuning without D_f: extra epochs alone lifted the demo
classifier from 93.0 to 96.1 % test accuracy, so a gain counts only against the control. The
*baseline* of figure 4 fine-tunes on the raw unrestricted adversarial examples instead of scenario
samples and is scored on the same failure sets. On a GPU all λ models can train at once
(``parallel="vmap"``): one stacked forward per batch instead of one per λ.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Optional

import torch
from torch import nn

from ..data.datasets import ImageData
from ..runtime.devices import resolve_device
from ..runtime.progress import RunOptions
from ..runtime.words import named, option
from .config import (  # noqa: F401  (re-exported: their old home)
    FAILURE_LABELS,
    FIX_SETS,
    PAPER_LAMBDAS,
    PARALLEL_CHOICES,
    SELECTION_ONLY,
    CorrectConfig,
)
from .failure_sets import SPLITS, FailureSet, stack_failure_sets  # noqa: F401  (stack_failure_sets: re-exported)
from .finetune import SingleTrainer, SweepStore, copy_model
from .halving import train_groups_halving
from .scoring import SweepInputs, build_inputs, evaluate, predict_labels
from .selection import (  # noqa: F401  (re-exported)
    EPOCH_METRICS,
    SELECTIONS,
    SelectionRule,
    epoch_metric,
    failure_measure,
    select_lambda,
)
from .training import Tracker, parallel_mode, plan_groups, train_groups

# ------------------------------------------------------------------ the sweep

@dataclass
class Sweep:
    """The result of :func:`correct`. Rows are dicts: kind ("defuse"/"baseline"), lambda, epoch,
    train_acc, val_acc, test_acc, failure_val_acc, failure_test_acc, failure_{val,test}_acc_reviewer
    (None without reviewer labels), failure_test_acc_per_scenario, seconds (training time of the epoch)."""

    rows: list                       # every (kind, λ, epoch)
    best_per_lambda: list            # the kept epoch of each (kind, λ)
    before: dict                     # the classifier before correction
    control: Optional[dict]          # λ=0, fine-tuned without D_f
    chosen: dict                     # the selected λ's row, plus rule and within_tolerance
    baseline_chosen: Optional[dict]  # the same rule applied to the baseline rows
    config: dict
    fingerprint: str
    resume_dir: Optional[str] = None
    _template: Optional[nn.Module] = field(default=None, repr=False)
    _states: dict = field(default_factory=dict, repr=False)  # (kind, λ) -> state dict, without resume_dir

    def state_dict(self, lam: Optional[float] = None, kind: str = "defuse") -> dict:
        """Weights of λ's kept epoch (default: the chosen λ), from memory or from resume_dir."""
        lam = float(self.chosen["lambda"] if lam is None else lam)
        swept = [(r["kind"], r["lambda"]) for r in self.best_per_lambda]
        if (kind, lam) not in swept:
            raise ValueError(f"no weights for kind={kind!r} λ={lam}; swept: {swept}")
        if (kind, lam) in self._states:
            return self._states[(kind, lam)]
        return SweepStore(self.resume_dir, self.fingerprint).state(kind, lam)

    def model(self, lam: Optional[float] = None, kind: str = "defuse") -> nn.Module:
        """A fresh copy of the classifier holding λ's weights (default: the chosen λ), on the CPU, in eval mode."""
        if self._template is None:
            raise ValueError("this Sweep was rebuilt from JSON and holds no network; load the weights yourself")
        model = copy_model(self._template)
        model.load_state_dict(self.state_dict(lam, kind))
        return model.eval()

    def to_dict(self) -> dict:
        """JSON-ready: everything but the network and its weights."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def correct(classifier: nn.Module, data: ImageData, failure_sets: list[FailureSet],
            cfg: CorrectConfig = CorrectConfig(), *, baseline: Optional[tuple] = None,
            run: RunOptions = RunOptions()) -> Sweep:
    """Fine-tune a copy of ``classifier`` on L(D) + λ·CE(D_f) for every λ of ``cfg`` and pick one.

    Parameters
    ----------
    classifier : takes images (N, C, H, W) in [0, 1], returns logits (N, classes). Never modified.
    data : D is ``data.train``; val/test accuracy are measured on ``data.val`` / ``data.test``.
    failure_sets : the failure scenarios to fix; D_f is their ``finetune`` samples.
    baseline : ``(images (n, C, H, W), labels (n,))``, the raw unrestricted adversarial examples,
        each labelled by a reviewer (fallback: the label of its source image, which a small
        perturbation should not change). The same sweep runs on them instead of D_f.
    run : ``device``; ``on_progress`` receives :class:`~defuse.runtime.progress.Progress` events (step
        "correct", done = finished (λ, epoch) pairs; metrics["event"] is "epoch", "lambda" or "batch"),
        raising :class:`~defuse.runtime.progress.Cancelled` stops the sweep; ``resume_dir`` keeps
        finished λs, so a re-run with the same inputs and config skips them; ``backend`` None trains
        here, a :class:`defuse.distributed.backend.RayBackend` trains the λ groups as parallel Ray
        tasks, with the same store, events and selection.

    Returns
    -------
    Sweep : every row, the kept epoch per λ, before / control / chosen / baseline_chosen, and the
        weights of every kept epoch (``Sweep.model(λ)``). Same seed, same result on a CPU; CUDA
        kernels are not bitwise reproducible (measured: equal metrics, weights within 1e-2).
    """
    _check_inputs(classifier, data, failure_sets, baseline)
    if cfg.failure_labels == "reviewer" and any(s.finetune_labels is None or s.val_reviewer is None
                                                or not bool((s.val_reviewer >= 0).any()) for s in failure_sets):
        raise ValueError("failure_labels='reviewer' needs per-sample reviewer labels on every failure set "
                         f"(finetune_labels and reviewed val_reviewer samples): use {option('reviewer-auto')} "
                         "or use failure_labels='scenario'")
    if cfg.selection == "two_sided" and all(s.val_reviewer is None for s in failure_sets):
        raise ValueError("the two-sided λ choice needs the reviewer's clear readings of the failure-validation "
                         f"samples (val_reviewer): use {option('reviewer-auto')}, or choose λ by "
                         f"{named(CorrectConfig, 'selection')} tolerance")
    return _correct_impl(classifier, data, failure_sets, baseline, cfg,
                         replace(run, device=resolve_device(run.device)))


def _check_inputs(classifier, data, failure_sets, baseline) -> None:
    if not isinstance(classifier, nn.Module):
        raise ValueError(f"classifier must be a torch nn.Module, got {type(classifier).__name__}")
    if not failure_sets or not all(isinstance(s, FailureSet) for s in failure_sets):
        raise ValueError("failure_sets must be a non-empty list of FailureSet (one per failure scenario)")
    shape = tuple(data.train.images.shape[1:])
    parts = [(f"failure set {s.scenario_id} {sp}", getattr(s, sp)) for s in failure_sets for sp in SPLITS]
    if baseline is not None:
        if len(baseline) != 2 or len(baseline[0]) != len(baseline[1]) or len(baseline[1]) == 0:
            raise ValueError("baseline must be (images (n, C, H, W), labels (n,)) with n >= 1 and equal lengths")
        parts.append(("baseline images", baseline[0]))
    for what, x in parts:
        if tuple(x.shape[1:]) != shape or float(x.min()) < 0 or float(x.max()) > 1:
            raise ValueError(f"{what} must be (n, {', '.join(map(str, shape))}) floats in [0, 1] like the data; "
                             f"got shape {tuple(x.shape)}, values in [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    labels = [s.label for s in failure_sets] + (baseline[1].tolist() if baseline is not None else [])
    labels += [v for s in failure_sets if s.finetune_labels is not None for v in s.finetune_labels.tolist()]
    if any(not 0 <= int(v) < data.num_classes for v in labels):
        raise ValueError(f"labels must be classes in [0, {data.num_classes}); got {sorted(set(labels))}")


def _fingerprint(template: nn.Module, inp: SweepInputs, cfg: CorrectConfig) -> str:
    """sha256 over the config, the classifier's weights and every tensor the sweep reads."""
    trained = {k: v for k, v in asdict(cfg).items() if k not in SELECTION_ONLY}
    h = hashlib.sha256(json.dumps(trained, sort_keys=True).encode())
    tensors = list(template.state_dict().values()) + list(inp.train)
    tensors += [t for pair in inp.evals.values() for t in pair] + [t for q in inp.failure.values() for t in q]
    tensors += [t for pair in inp.d_f.values() for t in pair]
    for t in tensors:
        h.update(str((tuple(t.shape), t.dtype)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _correct_impl(classifier, data, failure_sets, baseline, cfg, run: RunOptions) -> Sweep:
    dev, resume_dir = run.device, run.resume_dir
    template = copy_model(classifier).cpu().eval()  # the caller's model may be cached: never touch it
    inp = build_inputs(data, failure_sets, baseline, cfg)
    fingerprint = _fingerprint(template, inp, cfg)
    store = SweepStore(resume_dir, fingerprint)
    jobs = [("defuse", 0.0)] * cfg.include_control + [("defuse", lam) for lam in cfg.lambdas]
    jobs += [("baseline", lam) for lam in cfg.lambdas] if baseline is not None else []
    results = {job: store.load(*job) for job in jobs}
    results = {job: r for job, r in results.items() if r is not None}
    track = Tracker(len(jobs) * cfg.epochs, len(results) * cfg.epochs, run.on_progress)
    original = SingleTrainer(template, [0.0], cfg, dev).logits
    # reviewed (or chosen two-sided, where every sample may be unclear): each model's fix rate and collateral too
    if cfg.selection == "two_sided" or bool((inp.failure["val"][3] >= 0).any()):
        inp.failure_val_before = predict_labels(original, inp.failure["val"][0], dev)[0]
    before = {"kind": "before", "lambda": None, "epoch": 0, **evaluate(original, inp, dev)[0]}
    track.before(before)
    mode = parallel_mode(cfg, template, data.train.images[:2], dev)
    states = {}
    groups = plan_groups([job for job in jobs if job not in results], mode, cfg, template)
    train = train_groups if run.backend is None else run.backend.train_groups
    train = train_groups_halving if cfg.halving and run.backend is None else train  # correct/halving.py
    for kind, lam, rows, best, state in train(groups, template, inp, cfg, dev, track):
        store.save(kind, lam, rows, best, state)
        results[(kind, lam)] = (rows, best)
        if resume_dir is None:
            states[(kind, lam)] = state
        track.finished(best)
    best = [results[job][1] for job in jobs]
    config = {**asdict(cfg), "lambdas": list(cfg.lambdas), "parallel_used": mode,
              "input_shape": list(data.train.images.shape[1:])}
    return Sweep([row for job in jobs for row in results[job][0]], best, before, **_choose(best, before, inp, cfg),
                 config=config, fingerprint=fingerprint, resume_dir=None if resume_dir is None else str(resume_dir),
                 _template=template, _states=states)


def _choose(best: list[dict], before: dict, inp: SweepInputs, cfg: CorrectConfig) -> dict:
    """The control, and the λ the rule picks among the kept epochs of D_f's runs and of the baseline's."""
    _, _, _, val_reviewer = inp.failure["val"]
    n_val = int((val_reviewer >= 0).sum()) if cfg.failure_labels == "reviewer" else len(val_reviewer)
    defuse = [r for r in best if r["kind"] == "defuse"]
    control = next((r for r in defuse if r["lambda"] == 0), None)
    ref = (control or before)["val_acc"]
    if cfg.selection == "two_sided":  # noise is counted on the real failures the fix rate is measured on
        n_val = (control or before).get("n_failure_val_real") or 0
    rule = SelectionRule(cfg.selection, cfg.tolerance, reference_val_acc=ref, failure_key=failure_measure(cfg),
                         n_failure_val=n_val, tie_standard_errors=cfg.tie_standard_errors,
                         reference_collateral=(control or before).get("failure_val_collateral"))
    base = [r for r in best if r["kind"] == "baseline"]
    return {"control": control, "chosen": select_lambda(defuse, rule),
            "baseline_chosen": select_lambda(base, rule) if base else None}
