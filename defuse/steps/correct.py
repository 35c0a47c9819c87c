"""Correct over a workspace: failure sets from the labeled scenarios, the λ sweep with its control and
baseline (paper §3.2.4). Exporting the chosen model is :mod:`defuse.steps.export`."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Optional

import numpy as np
import torch

from ..correct.sweep import CorrectConfig, FailureSet, Sweep, correct
from ..correct.two_sided import GradedSamples, two_sided
from ..data.datasets import ImageData, Split
from ..distill.sampling import DrawnSplits, ScenarioDraw, draw_failure_splits
from ..label.reviewer import CONFIDENT, Reviewer, label_examples
from ..nets.inference import classify, decode_latents
from ..nets.train import classifier_training_split
from ..runtime.limits import check_fits
from ..runtime.progress import RunOptions
from ..runtime.words import named, option
from ..workspace import BEST, SWEEP, SWEEP_DIR, Workspace
from .distill import default_tau, load_scenarios
from .identify import load_failures
from .label import current_verdicts, decided_scenarios
from .label_record import DECISIONS
from .project import load_classifier, load_data, load_vae


def check_failure_sets_fit(n_samples: int, n_scenarios: int, channels: int, image_size: int) -> None:
    """Refuse, before drawing, failure sets that would not fit in memory: 3 splits of float32 images,
    held twice while they are drawn and stacked. The job and the Correct page share it; the sample count to
    lower is named for the reader."""
    check_fits(3 * n_samples * n_scenarios * 4 * channels * image_size ** 2 * 2,
               what=f"{n_samples:,} samples x 3 splits x {n_scenarios} failure scenarios",
               fix=f"lower {named(ScenarioDraw, 'n')}")


def failure_sets(ws: Workspace, draw: ScenarioDraw = ScenarioDraw(), *, reviewer: Optional[Reviewer] = None,
                 cfg: CorrectConfig = CorrectConfig(), left_out: Optional[list] = None,
                 device="auto") -> list[FailureSet]:
    """D_f, failure-validation and failure-test samples (§4.1: 256 each) of every confirmed failure scenario.

    With a reviewer and ``cfg.fix_set`` "agreed", D_f and the failure-validation
    samples keep only what every member reads confidently as the scenario's label (:meth:`Reviewer.agreed`),
    and D_f gains the scenario's own UAEs that pass the same test (its verified finds); each set's summary
    counts what was dropped. A scenario none of whose samples pass is left out of correction. The
    failure-test samples are never filtered: they are graded two-sided (:mod:`defuse.correct.two_sided`).

    ``cfg.failure_labels`` "reviewer": the reviewer labels every D_f sample too.
    ``left_out``: a list that receives each confirmed scenario left out, with its counts.
    """
    per_sample_labels, agreed_only = cfg.failure_labels == "reviewer", cfg.fix_set == "agreed"
    two_sided = cfg.selection == "two_sided"
    if per_sample_labels and reviewer is None:
        raise ValueError(f"per-sample D_f labels need the automatic reviewer: use {option('reviewer-auto')}, or "
                         f"keep the paper's scenario labels ({option('failure-labels-scenario')})")
    if two_sided and reviewer is None:
        raise ValueError("the two-sided λ choice reads the failure-validation samples with the automatic reviewer: "
                         f"use {option('reviewer-auto')}, or choose λ by {named(CorrectConfig, 'selection')} "
                         "tolerance")
    found = {j: v for j, v in current_verdicts(ws, tau=draw.tau, seed=draw.seed, device=device).items()
             if v.is_failure}
    if not found:
        raise ValueError("no scenario is labeled a failure yet: review them first (Label page, or "
                         "`python -m defuse label --reviewer auto`)")
    scenarios, vae = load_scenarios(ws), load_vae(ws)[0]
    check_failure_sets_fit(draw.n, len(found), vae.channels, vae.image_size)
    draw = draw.with_tau(default_tau(ws))
    failures = load_failures(ws) if reviewer is not None and agreed_only else None
    sets = []
    for j, verdict in sorted(found.items()):
        split = draw_failure_splits(vae, scenarios, j, verdict.label, draw, device=device)
        agreed = {}
        if reviewer is not None and agreed_only:
            split, agreed = agreed_splits(split, reviewer, scenario_uaes(vae, failures, scenarios, j, verdict.label,
                                                                          device=device),
                                          filter_val=not two_sided, device=device)
            if split is None:  # nothing the reviewers agree on: counted in the left-out scenarios
                if left_out is not None:
                    left_out.append({"scenario_id": int(j), "label": int(verdict.label), "agreed": agreed})
                continue
        extra = {}
        if reviewer is not None:  # the stricter measure: each sample against the reviewer's own label
            extra = {f"{s}_reviewer": torch.as_tensor(label_examples(reviewer, getattr(split, s), device=device))
                     for s in ("val", "test")}
        if reviewer is not None and two_sided:  # only what every member reads clearly is graded (-1: unclear)
            extra["val_reviewer"] = torch.as_tensor(reviewer.clear_labels(split.val, device=device))
        if per_sample_labels:
            extra["finetune_labels"] = torch.as_tensor(label_examples(reviewer, split.finetune, device=device))
        sets.append(FailureSet(scenario_id=j, label=int(verdict.label), finetune=split.finetune, val=split.val,
                               test=split.test, agreed=agreed or None, **extra))
    if not sets:
        raise ValueError("the reviewer's members agree confidently on no sample of any confirmed failure scenario: "
                         "nothing to correct on. Its scenarios may mix classes: label them again at a smaller τ "
                         f"(`label --tau 0.05`), or correct with the paper's unfiltered D_f ({option('no-reviewer')})")
    return sets


def scenario_uaes(vae, failures, scenarios, j: int, label: int, *, device="auto") -> torch.Tensor:
    """Decoded UAEs that distillation assigned to scenario row ``j`` and whose source is of class ``label``."""
    rows = np.flatnonzero((scenarios.assignment == j) & (failures.true_label == label))
    if len(rows) == 0:
        return torch.zeros(0, vae.channels, vae.image_size, vae.image_size)
    return decode_latents(vae, failures.latents[rows], device=device).cpu().clamp(0, 1)


def agreed_splits(split: DrawnSplits, reviewer: Reviewer, uaes: torch.Tensor, *, filter_val: bool = True,
                  device="auto") -> tuple[Optional[DrawnSplits], dict]:
    """The split with D_f (and failure-validation, unless ``filter_val`` is False: the two-sided λ choice
    needs the samples of other classes there to see collateral) kept to what every reviewer member reads
    confidently as the scenario's label, D_f joined by the UAEs that pass the same test; and the counts
    (None: nothing passed)."""
    keep_f = reviewer.agreed(split.finetune, split.label, device=device)
    keep_v = reviewer.agreed(split.val, split.label, device=device) if filter_val else np.ones(len(split.val), bool)
    keep_u = reviewer.agreed(uaes, split.label, device=device) if len(uaes) else np.zeros(0, bool)
    counts = {"n_drawn_finetune": len(split.finetune), "n_dropped_finetune": int((~keep_f).sum()),
              "n_uaes_added": int(keep_u.sum()), "n_uaes_dropped": int((~keep_u).sum()),
              "n_drawn_val": len(split.val), "n_dropped_val": int((~keep_v).sum()),
              "rule": "every reviewer member reads the scenario's label with probability >= "
                      f"{CONFIDENT:g}"}
    finetune = torch.cat([split.finetune[torch.from_numpy(keep_f)], uaes[torch.from_numpy(keep_u)]])
    if len(finetune) == 0 or not keep_v.any():
        return None, counts
    return replace(split, finetune=finetune, val=split.val[torch.from_numpy(keep_v)]), counts


def baseline_examples(ws: Workspace, budget: int, *, reviewer: Optional[Reviewer] = None, seed: int = 0,
                      device="auto") -> tuple[torch.Tensor, torch.Tensor, str]:
    """The paper's baseline data: raw unrestricted adversarial examples (as many as D_f holds), labeled.

    Labels come from the reviewer per example; without one, from the source image (documented fallback:
    measured here, 94% of such labels were wrong by a reference ensemble).
    """
    failures = load_failures(ws)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(failures), size=min(budget, len(failures)), replace=False))
    images = decode_latents(load_vae(ws)[0], failures.latents[pick], device=device).cpu()
    if reviewer is not None:
        return images, torch.as_tensor(label_examples(reviewer, images, device=device)), "reviewer"
    return images, torch.as_tensor(failures.true_label[pick]).long(), "source label (fallback)"


def correct_step(ws: Workspace, cfg: CorrectConfig, *, draw: ScenarioDraw = ScenarioDraw(),
                 reviewer: Optional[Reviewer] = None, baseline: bool = True, run: RunOptions = RunOptions()) -> dict:
    """Run the λ sweep (and the UAE-only baseline) on ``draw.n`` samples per scenario and split; resumable
    from ``correct/sweep/`` (``run.resume_dir`` is set here); ``run.backend`` as :func:`defuse.correct.sweep.correct`
    takes it."""
    device = run.device
    left_out: list = []
    sets = failure_sets(ws, draw, reviewer=reviewer, cfg=cfg, left_out=left_out, device=device)
    base, base_labels = None, None
    if baseline:
        images, labels, base_labels = baseline_examples(ws, draw.n * len(sets), reviewer=reviewer, seed=draw.seed,
                                                        device=device)
        base = (images, labels)
    classifier, meta = load_classifier(ws)
    data, d_source = correction_data(load_data(ws), meta)
    sweep = correct(classifier, data, sets, cfg, baseline=base, run=replace(run, resume_dir=ws.path(SWEEP_DIR)))
    summary = _with_provenance(ws, [s.summary() for s in sets], tau=draw.tau, seed=draw.seed, device=device)
    graded = grade_two_sided(sweep, classifier, sets, reviewer, device=device)
    ws.save_json(SWEEP, {**sweep.to_dict(), "failure_sets": summary, "baseline_labels": base_labels,
                         "n_samples": draw.n, "tau": draw.tau or default_tau(ws),
                         "labels_fingerprint": ws.fingerprint(DECISIONS), "two_sided": graded,
                         "failure_sets_left_out": left_out, "d_source": d_source})
    best = {"chosen": sweep.chosen, "control": sweep.control, "before": sweep.before,
            "baseline_chosen": sweep.baseline_chosen, "failure_sets": summary, "two_sided": graded,
            "failure_sets_left_out": left_out}
    ws.save_json(BEST, best)
    metrics = {k: sweep.chosen.get(k) for k in ("lambda", "test_acc", "val_acc", "failure_test_acc")}
    return ws.record_step("correct", config={**asdict(cfg), "n_samples": draw.n, "seed": draw.seed}, metrics=metrics)


def correction_data(data: ImageData, classifier_meta: dict) -> tuple[ImageData, str]:
    """D for L(D) + λ·CE(D_f): the images the classifier learnt from. A classifier Defuse trained with a planted
    flaw (``class_keep``) saw only part of some classes; fine-tuning it on the whole split would hand the λ=0
    control the very images the flaw left out, and the control "fixed" it without D_f (issue #21: 97% of the
    real failures on Fashion-MNIST). A classifier trained elsewhere: the project's training split."""
    config = (classifier_meta or {}).get("config") or {}
    keep = config.get("class_keep") or ()
    if not keep:
        return data, "the project's training split"
    images, labels = classifier_training_split(data.train, keep, int(config.get("seed", 0)))
    kept = ", ".join(f"{data.class_names[int(c)]} at {float(f):.0%}" for c, f in keep)
    return (replace(data, train=Split(images, labels)),
            f"the classifier's own training images ({len(labels):,} of {len(data.train):,}: {kept}, as it was trained)")


def sweep_models(sweep: Sweep, classifier) -> dict:
    """The models a two-sided grade compares: before, the λ=0 control, the chosen λ, the UAE-only baseline."""
    return {"before": classifier, "control": sweep.model(0.0) if sweep.control else None, "chosen": sweep.model(),
            "baseline": sweep.model(sweep.baseline_chosen["lambda"], "baseline") if sweep.baseline_chosen else None}


def grade_two_sided(sweep: Sweep, classifier, sets: list[FailureSet], reviewer: Optional[Reviewer], *,
                    device="auto") -> Optional[dict]:
    """Fix rate and collateral on the failure-test samples (drawn on a stream no step trains on), graded by
    the reviewer's grader, a member that voted on nothing; None without one."""
    if reviewer is None or reviewer.grader is None:
        return None
    images = torch.cat([s.test for s in sets])
    labels, confidence = reviewer.grade(images, device=device)
    graded = GradedSamples(labels, confidence, np.concatenate([np.full(len(s.test), s.label) for s in sets]),
                           classify(classifier, images, device=device)[0].numpy(),
                           np.concatenate([np.full(len(s.test), s.scenario_id) for s in sets]))
    predictions = {name: None if m is None else classify(m, images, device=device)[0].numpy()
                   for name, m in sweep_models(sweep, classifier).items()}
    arch = reviewer.grader[1].get("architecture") or "network"
    return two_sided(graded, predictions, grader=f"the reviewer's grader ({arch}, its own seed), which labelled "
                     "no sample: no review, no D_f, no baseline label")


def _with_provenance(ws: Workspace, summary: list[dict], **kw) -> list[dict]:
    """Each fixed scenario's summary with who decided it (people or the reviewer), for the report and card."""
    decided = decided_scenarios(ws, **kw)
    out = []
    for s in summary:
        d = decided.get(int(s["scenario_id"]))
        who = {} if d is None else {"decided_by": d.decided_by, "annotators": list(d.annotators),
                                    "reviewers": list(d.reviewers)}
        out.append({**s, **who})
    return out


def load_sweep(ws: Workspace) -> Sweep:
    """The saved sweep, able to rebuild any λ's model (its weights stay in ``correct/sweep/``)."""
    record = ws.load_json(SWEEP)
    keep = {k: record[k] for k in ("rows", "best_per_lambda", "before", "control", "chosen", "baseline_chosen",
                                   "config", "fingerprint", "resume_dir")}
    return Sweep(**keep, _template=load_classifier(ws)[0])
