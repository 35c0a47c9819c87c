"""Grade a finished workspace with the independent judge (:mod:`defuse.judge`): for evaluation only.

Three figures (four with a class-conditional VAE: its class control), each from samples the judge labels
and no pipeline step sees it label:

- how real the unrestricted adversarial examples (UAEs) are: the judge reads the source's class (a real
  classifier failure) or the classifier's label (an artefact: the decode changed class);
- each scenario's purity: the share of its samples (drawn from its review stream, the first Q of them
  the very samples the annotators labelled) that the judge gives the scenario's label, and the label mix;
- the per-sample failure-test accuracy of the classifier before correction, the λ=0 control, Defuse
  and the UAE-only baseline, each sample scored against the judge's label for it.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..correct.two_sided import DEFAULT_THRESHOLD, GradedSamples, two_sided
from ..distill.sampling import ReviewSamples, ScenarioDraw, check_taus, draw_failure_splits
from ..evaluation.judge import Judge, per_sample_accuracy, scenario_purity, uae_shares
from ..identify.search import decode_latents
from ..nets.architectures import is_conditional
from ..nets.class_control import class_control
from ..runtime.devices import resolve_device
from ..workspace import Workspace
from .correct import SWEEP, load_sweep, sweep_models
from .distill import default_tau, load_scenarios
from .identify import load_failures
from .label import current_verdicts
from .project import load_classifier, load_data, load_vae


def grade_uaes(ws: Workspace, judge: Judge, *, n: int = 1000, seed: int = 0, device="auto") -> dict:
    """:func:`defuse.judge.uae_shares` on a random ``n`` of the workspace's UAEs."""
    failures = load_failures(ws)
    pick = np.sort(np.random.default_rng(seed).choice(len(failures), min(n, len(failures)), replace=False))
    images = decode_latents(load_vae(ws)[0], failures.latents[pick], device=device).cpu()
    return uae_shares(judge.labels(images, device=device), failures.true_label[pick], failures.pred_label[pick])


def grade_class_control(ws: Workspace, judge: Judge, *, n: int = 1000, seed: int = 0, device="auto"):
    """A conditional VAE's class control read by the judge (:mod:`defuse.nets.class_control`), on ``n`` test
    images the VAE never trained on; None for a VAE that takes no label."""
    vae = load_vae(ws)[0]
    if not is_conditional(vae):
        return None
    test = load_data(ws).test
    pick = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(test), min(n, len(test)), replace=False)))
    return class_control(vae.to(resolve_device(device)), lambda x: judge.labels(x, device=device),
                         test.images[pick], test.labels[pick], seed=seed)


def grade_purity(ws: Workspace, judge: Judge, *, n: int = 100, tau: Optional[float] = None, seed: int = 0,
                 device="auto") -> dict:
    """Every reviewed scenario's purity and label mix by the judge, on ``n`` samples of its review stream.

    A failure scenario's label is its verdict's (the annotators' majority); a scenario judged no failure
    keeps the classifier's label, which the annotators confirmed: the majority of its predictions.

    Returns {"scenarios": {j: {...}}, "purity_mean", "purity_mean_failure"} (nan where there are none).
    """
    verdicts = current_verdicts(ws, tau=tau, seed=seed, device=device)
    samples = ReviewSamples(load_vae(ws)[0], load_classifier(ws)[0], load_scenarios(ws), tau=tau or default_tau(ws),
                            seed=seed)
    judged, ids, labels = [], [], {}
    for j, verdict in sorted(verdicts.items()):
        s = samples.render(j, n, device=device)
        labels[j] = verdict.label if verdict.is_failure else int(np.bincount(s.predictions).argmax())
        judged.append(judge.labels(s.images, device=device))
        ids.append(np.full(n, j, dtype=np.int64))
    none = np.zeros(0, np.int64)
    per = scenario_purity(np.concatenate(judged) if judged else none, np.concatenate(ids) if ids else none, labels)
    for j, row in per.items():
        row["is_failure"] = bool(verdicts[j].is_failure)
    return {"scenarios": per, "purity_mean": _mean(r["purity"] for r in per.values()),
            "purity_mean_failure": _mean(r["purity"] for r in per.values() if r["is_failure"])}


def _mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else math.nan


@torch.no_grad()
def _predict(model: nn.Module, images: torch.Tensor, device, batch_size: int = 512) -> np.ndarray:
    from ..runtime.devices import resolve_device

    dev = resolve_device(device)
    model = model.to(dev).eval()
    out = [model(images[i:i + batch_size].to(dev)).argmax(1).cpu() for i in range(0, len(images), batch_size)]
    model.cpu()
    return torch.cat(out).numpy().astype(np.int64)


def grade_correction(ws: Workspace, judge: Judge, *, seed: int = 0, threshold: float = DEFAULT_THRESHOLD,
                     device="auto") -> dict:
    """Per-sample failure-test accuracy by the judge's labels: before, control (λ=0), Defuse, baseline; and
    the two-sided grade (:mod:`defuse.correct.two_sided`): fix rate and collateral on the samples the judge
    reads with a confidence >= ``threshold``, the rest counted as unclear.

    The failure-test samples are redrawn from their own stream exactly as correction drew them (the
    sweep's ``n_samples`` and ``tau``, the same ``seed``). Keys are None where a model is missing.
    """
    if not ws.exists(SWEEP):
        raise ValueError("nothing to grade yet: run the correction first (`python -m defuse correct`)")
    record, sweep = ws.load_json(SWEEP), load_sweep(ws)
    vae, scenarios, n = load_vae(ws)[0], load_scenarios(ws), int(record["n_samples"])
    # D_f and failure validation come too: their streams are apart
    draw = ScenarioDraw(n, check_taus(record["tau"]), seed)
    tests = [draw_failure_splits(vae, scenarios, s["scenario_id"], s["label"], draw, device=device)
             for s in record["failure_sets"]]
    images = torch.cat([t.test for t in tests])
    scenario_label = np.concatenate([np.full(len(t.test), t.label, np.int64) for t in tests])
    judged, confidence = judge.read(images, device=device)
    models = sweep_models(sweep, load_classifier(ws)[0])
    preds = {name: None if m is None else _predict(m, images, device) for name, m in models.items()}
    out = {"n_failure_test": int(len(images)),
           "failure_test_judge_reads_scenario_label": float(np.mean(judged == scenario_label))}
    for name, p in preds.items():
        key = {"baseline": "baseline_failure_acc_judge", "chosen": "failure_acc_after_judge"}.get(
            name, f"failure_acc_{name}_judge")
        out[key] = None if p is None else per_sample_accuracy(p, judged)
    ids = np.concatenate([np.full(len(t.test), t.scenario, np.int64) for t in tests])
    graded = two_sided(GradedSamples(judged, confidence, scenario_label, preds["before"], ids, threshold), preds,
                       grader="the independent judge")
    out["two_sided_judge"] = graded
    for name, key in (("chosen", "after"), ("control", "control"), ("baseline", "baseline")):
        for measure in ("fix_rate", "collateral"):
            out[f"{measure}_{key}_judge"] = graded["models"][name][measure]
    out.update(n_real_failures_test=graded["n_real_failures"], n_unclear_test=graded["n_unclear"],
               n_right_before_test=graded["n_right_before"], judge_threshold=threshold)
    # every swept λ too, so a rule that kept the control can be compared with what D_f would have done
    out["sweep_judge"] = [{"kind": r["kind"], "lambda": r["lambda"], "failure_acc_judge": per_sample_accuracy(
        _predict(sweep.model(r["lambda"], r["kind"]), images, device), judged)} for r in sweep.best_per_lambda]
    return out
