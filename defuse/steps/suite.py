"""Make a regression suite (:mod:`defuse.suite`) from a workspace's confirmed failure scenarios."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from torch import nn

from ..distill.config import MAX_SEED
from ..distill.sampling import ScenarioDraw, sample_scenario, scenario_stream, tau_of
from ..label.reviewer import Reviewer, label_examples
from ..label.verdicts import Verdict
from ..nets.inference import decode_latents
from ..runtime.progress import Progress, ProgressFn
from ..runtime.settings import check_settings, setting
from ..runtime.words import named
from ..suite.regression_suite import RegressionSuite, SuiteScenario, as_float, predict, to_uint8
from ..workspace import CLASSIFIER, SCENARIOS, SUITE_DIR, SWEEP, VAE, VERDICTS, Workspace
from .distill import default_tau, load_scenarios
from .label import LABELS, current_verdicts
from .project import load_classifier, load_data, load_vae

SUITE_STREAM = "scenario_stream(seed, j, 'suite')"  # what a suite's manifest says its samples came from


def _name(class_names, c: int) -> str:
    return f"{c} ({class_names[c]})" if 0 <= c < len(class_names) and str(class_names[c]) != str(c) else str(c)


def describe_scenario(j: int, verdict: Verdict, predictions: np.ndarray, class_names, *, weight: float,
                      size: int) -> str:
    """What goes wrong in scenario ``j``, in words, from its verdict and the classifier's labels on its samples."""
    counts = np.bincount(predictions, minlength=max(len(class_names), int(predictions.max()) + 1))
    top = int(np.argmax(counts))
    wrong = float(np.mean(predictions != verdict.label))
    who = f"{verdict.n_annotators} annotator(s)" + (f", agreement {verdict.agreement:.0%}"
                                                     if verdict.agreement == verdict.agreement else "")
    return (f"Scenario #{j}: images of {_name(class_names, int(verdict.label))} that the classifier mostly labels "
            f"{_name(class_names, top)} ({counts[top] / len(predictions):.0%} of these samples; wrong on "
            f"{wrong:.0%}). Distilled from {size:,} unrestricted adversarial examples (mixture weight {weight:.3f}); "
            f"confirmed by {who}.")


@dataclass(frozen=True)
class SuiteConfig:
    """What a regression suite freezes. Unset draw settings follow the correction (its samples per
    scenario, seed and τ), else 256, 0 and the dataset's τ."""

    n_per_scenario: Optional[int] = setting(None, kind=int, low=1, high=1 << 20, cli="samples",
                                            label="“Samples per scenario”", help="test samples per scenario "
                                            "(default: the correction's, else 256)")
    seed: Optional[int] = setting(None, kind=int, low=0, high=MAX_SEED,
                                  help="seed of the draws (default: the correction's, else 0)")
    tau: Optional[float] = setting(None, kind=float, low=0.0, low_open=True, label="τ",
                                   help="sample diversity τ (default: the correction's)")
    # the project's test split goes in too, so a check reports test accuracy
    include_test: bool = setting(False, cli="with_test", help="also freeze the project's test split")
    # the project's automatic reviewer, where it has one, labels every sample
    use_reviewer: bool = setting(True, cli="reviewer", help="per-sample labels by the project's automatic reviewer, "
                                 "where it has one (--no-reviewer leaves them out)")

    def __post_init__(self):
        check_settings(self)

    def draw(self, ws: Workspace) -> ScenarioDraw:
        """The draw: these settings, the unset ones from the correction (or the defaults)."""
        sweep = ws.load_json(SWEEP) if ws.exists(SWEEP) else {}
        n = self.n_per_scenario or int(sweep.get("n_samples") or 256)
        seed = self.seed if self.seed is not None else int(sweep.get("config", {}).get("seed") or 0)
        return ScenarioDraw(n, self.tau or sweep.get("tau"), seed).with_tau(default_tau(ws))


def build_suite(ws: Workspace, cfg: SuiteConfig = SuiteConfig(), *, device="auto",
                on_progress: ProgressFn = None) -> RegressionSuite:
    """Draw test samples of every confirmed failure scenario of ``ws`` (``cfg.draw``) and freeze them.

    Each sample comes from the scenario's own "suite" stream, none of the review, D_f, failure-validation
    or failure-test draws. The automatic reviewer (``cfg.use_reviewer``) labels each sample
    (``sample_labels``); without one they stay -1.
    """
    draw = cfg.draw(ws)
    confirmed = {j: v for j, v in current_verdicts(ws, tau=draw.tau, seed=draw.seed, device=device).items()
                 if v.is_failure}
    if not confirmed:
        raise ValueError("no scenario is confirmed a failure yet, so there is nothing to freeze: label the "
                         "scenarios first (Label page, or `python -m defuse label --reviewer auto`)")
    reviewer = workspace_reviewer(ws) if cfg.use_reviewer else None
    scenarios, (vae, _), (classifier, meta) = load_scenarios(ws), load_vae(ws), load_classifier(ws)
    class_names = tuple(str(c) for c in ws.project.get("class_names") or meta.get("class_names") or [])
    parts, described = [], []
    for done, (j, verdict) in enumerate(sorted(confirmed.items())):
        part = _scenario_part(_suite_images(vae, scenarios, j, draw, device), j, verdict.label, classifier,
                              reviewer, device)
        parts.append(part)
        words = describe_scenario(j, verdict, part["original_predictions"], class_names,
                                  weight=float(scenarios.weights[j]), size=int(scenarios.sizes[j]))
        described.append(SuiteScenario(id=int(j), label=int(verdict.label), description=words, n=draw.n))
        if on_progress:
            on_progress(Progress("suite", done + 1, len(confirmed), metrics={"scenario": int(j)}))
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    test = _test_part(ws, classifier, device) if cfg.include_test else {}
    settings = _settings(ws, draw, cfg.include_test, reviewer, meta)
    return RegressionSuite(**arrays, scenarios=tuple(described), class_names=class_names, settings=settings, **test)


def _suite_images(vae: nn.Module, scenarios, j: int, draw: ScenarioDraw, device) -> np.ndarray:
    """Scenario row ``j``'s samples from its own "suite" stream, decoded and stored as uint8 (n, C, H, W)."""
    latents = sample_scenario(scenarios.means[j], scenarios.covariances[j], draw.n, tau=tau_of(draw.tau, j),
                              seed=scenario_stream(draw.seed, int(j), "suite"))
    return to_uint8(decode_latents(vae, latents, device=device))


def _scenario_part(images: np.ndarray, j: int, label: int, classifier: nn.Module, reviewer: Optional[Reviewer],
                   device) -> dict:
    n = len(images)
    preds, conf = predict(classifier, images, device="cpu")
    own = (label_examples(reviewer, as_float(images), device=device).astype(np.int64) if reviewer is not None
           else np.full(n, -1, np.int64))
    return {"images": images, "labels": np.full(n, int(label), np.int64), "sample_labels": own,
            "scenario_ids": np.full(n, int(j), np.int64), "original_predictions": preds,
            "original_confidence": conf}


def _test_part(ws: Workspace, classifier: nn.Module, device) -> dict:
    test = load_data(ws).test
    if len(test) == 0:
        raise ValueError("the project's test split is empty: make the suite without "
                         f"{named(SuiteConfig, 'include_test')}")
    images = to_uint8(test.images)
    preds, _ = predict(classifier, images, device="cpu")
    return {"test_images": images, "test_labels": test.labels.numpy().astype(np.int64),
            "test_original_predictions": preds}


def _settings(ws: Workspace, draw: ScenarioDraw, include_test: bool, reviewer: Optional[Reviewer],
              meta: dict) -> dict:
    """What made the suite: the draw, and fingerprints of every input (to tell which project state it froze)."""
    return {"n_per_scenario": draw.n, "seed": draw.seed, "tau": draw.tau, "stream": SUITE_STREAM,
            "sample_labels": f"automatic reviewer {reviewer.name!r}" if reviewer is not None else None,
            "includes_test_split": include_test, "project": ws.name, "dataset": ws.project.get("dataset"),
            "original_classifier": {"architecture": meta.get("architecture"), "sha256": meta.get("sha256")},
            "fingerprints": {rel: ws.fingerprint(rel) for rel in (CLASSIFIER, VAE, SCENARIOS, VERDICTS)}}


def suite_changes(ws: Workspace, manifest: dict) -> list[str]:
    """The project's artifacts that changed in meaning since the suite was made (empty: it freezes the current
    state). The labels count by their verdicts: ``labels.sqlite``'s bytes change when it is merely opened, so
    an older suite's fingerprint of it is not compared."""
    made = (manifest.get("settings") or {}).get("fingerprints") or {}
    return [rel for rel, digest in sorted(made.items()) if rel != LABELS and ws.fingerprint(rel) != digest]


def workspace_reviewer(ws: Workspace) -> Optional[Reviewer]:
    """The project's automatic reviewer when it has one (never trains one: a suite only uses what exists)."""
    from .label import REVIEWER_DIR, reviewer_ready

    return Reviewer.load(ws.path(REVIEWER_DIR)) if reviewer_ready(ws) else None


def export_suite(ws: Workspace, out=None, cfg: SuiteConfig = SuiteConfig(), *, device="auto",
                 on_progress: ProgressFn = None) -> tuple[RegressionSuite, Path]:
    """Build the suite of ``ws`` and write it to ``out`` (default ``exports/suite``) atomically."""
    from ..suite.regression_suite import write_suite

    suite = build_suite(ws, cfg, device=device, on_progress=on_progress)
    return suite, write_suite(suite, Path(out) if out else ws.path(SUITE_DIR))
