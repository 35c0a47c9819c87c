"""The paper's Figure 4 (and Figure 6) for one dataset, the automatic reviewer standing in for annotators.

    python benchmarks/paper_table.py --dataset fashion-mnist --root ../shared/data --quick --threads 1
    python benchmarks/paper_table.py --dataset mnist-idx --path ../shared/data/mnist-test --quick --threads 1

Trains a flawed classifier (part of one class held back, as the demo does), the β-VAE and two independent
reviewer ensembles, then runs defuse's own steps: identify, distill, review (10 samples per scenario,
ρ=0.5), correct (λ sweep, λ=0 control, UAE-only baseline). Settings are the paper's (appendix B) or, with
--quick, scaled to one CPU thread in about ten minutes; every deviation from the paper is printed and
saved. Writes the Figure 4 rows, the reviewers' agreement (Figure 6), the models' fidelity and the wall
times to OUT.json and OUT.md (default: <workspace>/paper-table.json). Variants (--centered,
--skip-misreconstructed, --tau) can reuse a finished run's models: --models-from DIR -w NEW_DIR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from defuse.cli.commands_project import add_dataset_args, dataset_spec_from_args  # noqa: E402
from defuse.correct.config import FIX_SETS, SELECTION_NAMES  # noqa: E402
from defuse.correct.two_sided import DEFAULT_THRESHOLD  # noqa: E402
from defuse.data.datasets import ImageData  # noqa: E402
from defuse.distill.sampling import ReviewSamples, ScenarioDraw  # noqa: E402
from defuse.distill.tau import TAU_AUTO  # noqa: E402
from defuse.evaluation.judge import JUDGE_PRESETS, Judge, JudgeConfig, fingerprint, load_or_train_judge  # noqa: E402
from defuse.identify.search import decode_latents  # noqa: E402
from defuse.identify.verification import VERIFY_RULES  # noqa: E402
from defuse.label.reviewer import Reviewer, agreement_summary, review_scenarios, train_reviewer  # noqa: E402
from defuse.label.store import LabelStore  # noqa: E402
from defuse.nets.architectures import LABEL_IN  # noqa: E402
from defuse.nets.train import evaluate_accuracy, fidelity_warning, vae_images  # noqa: E402
from defuse.nets.vae_recipe import default_vae_config  # noqa: E402
from defuse.runtime.devices import configure_threads, describe_device  # noqa: E402
from defuse.runtime.progress import RunOptions  # noqa: E402
from defuse.steps import (  # noqa: E402
    correct,
    grading,  # noqa: E402
    project,
)
from defuse.steps.distill import dataset_tau, default_tau, distill_step, load_scenarios  # noqa: E402
from defuse.steps.identify import identify_step, load_failures  # noqa: E402
from defuse.steps.label import LABELS, review_step  # noqa: E402
from defuse.steps.presets import PAPER, SMOKE, Preset  # noqa: E402
from defuse.steps.report import save_report  # noqa: E402
from defuse.workspace import TAUS, Workspace, default_home  # noqa: E402

# A realistic flaw, as in the demo: the classifier sees only part of one class's training images.
FLAWS = {"fashion-mnist": ((5, 0.1),)}  # 10 % of the sandals; elsewhere the demo's 15 % of the sixes
DEFAULT_FLAW = ((6, 0.15),)
# --quick budgets, sized so Fashion-MNIST runs in under ten minutes on one CPU thread: images each network
# sees (epochs = budget / training images, at least 1, at most the paper's), identify's sources, and the λ
# sweep: as many of ``lambdas`` (in that order) as fine-tuning runs over D (control, Defuse and baseline
# per λ) fit in ``correct_images``.
# λ=0.01 is the authors' public code's choice; on Fashion-MNIST's 54,000 images the budget fits two λ.
# The classifier gets the paper's 5 epochs (Fashion-MNIST: 2 minutes): after 1 epoch the λ=0 control, one more
# epoch on D, fixed 95% of the real failures by itself and left Defuse nothing to show (issue #21's runs).
QUICK = {"classifier_images": 300_000, "vae_images": 200_000, "reviewer_images": 60_000, "identify_subset": 1_000,
         "correct_images": 400_000, "lambdas": (1.0, 0.01, 10.0, 0.1), "correct_epochs": 1, "failure_batch": 64}
PAPER_NAMES = {"identify.samples_per_image": "Q", "identify.max_per_image": "M", "correct.lambdas": "λ list"}
PARTS = ("train", "vae", "identify", "distill", "reviewer", "correct")
NOTES = ("annotators: the automatic reviewer A (an ensemble trained on every class) labels the 10 samples per "
         "scenario and every baseline example (paper: 5 crowd workers per image)",
         "λ choice: the project's tolerance rule (paper: best train/validation accuracy), see README",
         "VAE: the project's recipe (paper B.2: 800 epochs at batch 2,048, KL annealed over 500 steps)")
SMOKE_JUDGE = JudgeConfig(width=4, epochs=1)  # --smoke: tests the wiring only
# Issue #21's targets, graded by the judge two-sided (defuse.correct.two_sided): (key, bound, "min" | "max").
TWO_SIDED_TARGETS = {
    "real share of UAEs >= 80 %": ("real_share", 0.80, "min"),
    "fix rate after >= 90 %": ("fix_rate_after_judge", 0.90, "min"),
    "fix rate after - control >= 30 points": ("fix_over_control", 0.30, "min"),
    "fix rate after - baseline >= 10 points": ("fix_over_baseline", 0.10, "min"),
    "collateral after <= 2 %": ("collateral_after_judge", 0.02, "max"),
    "collateral after - control <= 1 point": ("collateral_over_control", 0.01, "max"),
    "test after - control >= -0.3 points": ("test_over_control", -0.003, "min"),
    "confirmed failure scenarios >= 4": ("n_failure_scenarios", 4, "min")}
# settings whose default is the project's, not the paper's (--paper-method sets the paper's)
PROJECT_CHOICES = {"distill.group_by", "correct.fix_set"}
TARGETS = {"failure_acc_after >= 95 %": ("failure_acc_after", 0.95),
           "test_acc_after - test_acc_before >= -0.3 points": ("test_change", -0.003),
           "failure_acc_after - baseline_failure_acc >= 25 points": ("defuse_over_baseline", 0.25)}


# --- settings --------------------------------------------------------------------------------------------
def _epochs(budget: int, n: int, cap: int) -> int:
    return max(1, min(cap, round(budget / n)))


def _quick_lambdas(n_train: int) -> tuple:
    runs = QUICK["correct_images"] // (n_train * QUICK["correct_epochs"])
    return tuple(sorted(QUICK["lambdas"][:max(1, min(len(QUICK["lambdas"]), (runs - 1) // 2))]))


def build_preset(args, n_train: int, n_vae: int) -> Preset:
    """The paper's settings with the planted flaw; --quick scales them to the QUICK budgets."""
    flaw = FLAWS.get(args.dataset, DEFAULT_FLAW)
    identify = replace(PAPER.identify, centered=args.centered, skip_misreconstructed=args.skip_misreconstructed,
                       noise_scale=args.noise_scale,
                       **({"beta_a": args.beta[0], "beta_b": args.beta[1]} if args.beta else {}))
    design = {k: v for k, v in (("label_in", args.label_in), ("class_adversary", args.class_adversary))
              if v is not None}
    vae = replace(PAPER.vae, conditional=args.conditional, **({"beta": args.vae_beta} if args.vae_beta else {}),
                  **design)
    method = {"group_by": "confusion"} if args.new_route else {"group_by": "none"}
    paper = replace(PAPER, name="paper", train=replace(PAPER.train, class_keep=flaw), identify=identify, vae=vae,
                    distill=replace(PAPER.distill, **method),
                    correct=replace(PAPER.correct, failure_labels=args.failure_labels, selection=args.selection,
                                    fix_set=args.fix_set or ("agreed" if args.new_route else "all")))
    if args.smoke:  # every step on tiny settings, for the test suite; not for results
        return replace(SMOKE, train=replace(SMOKE.train, class_keep=flaw),
                       vae=replace(SMOKE.vae, epochs=2, kl_anneal_steps=100, conditional=args.conditional,
                                   **design),
                       reviewer=replace(SMOKE.reviewer, epochs=1), identify=replace(SMOKE.identify, subset=200),
                       distill=replace(SMOKE.distill, **method),
                       correct=replace(SMOKE.correct, lambdas=(1.0,), train_eval_size=1000,
                                       failure_labels=args.failure_labels, fix_set=paper.correct.fix_set,
                                       selection=args.selection))
    paper = replace(paper, accept_low_fidelity=args.accept_low_fidelity)
    if args.classifier_epochs:
        paper = replace(paper, train=replace(paper.train, epochs=args.classifier_epochs))
    if not args.quick:
        return paper
    return replace(
        paper, name="quick",
        train=replace(paper.train, epochs=args.classifier_epochs or _epochs(QUICK["classifier_images"], n_train,
                                                                            paper.train.epochs)),
        # --vae-recipe: the product's own recipe (about 8,000 steps), else the quick budget with the paper's
        # 500 annealing steps (the default 2,000 outlasts a short run)
        vae=default_vae_config(n_vae, paper.vae) if args.vae_recipe else replace(
            paper.vae, epochs=max(2, _epochs(QUICK["vae_images"], n_vae, paper.vae.epochs)), kl_anneal_steps=500),
        reviewer=paper.reviewer if args.reviewer_recipe else replace(
            paper.reviewer, members=2, architectures=("paper-cnn",),  # the wide CNN costs 4x
            epochs=_epochs(QUICK["reviewer_images"], n_train, paper.reviewer.epochs)),
        identify=replace(identify, samples_per_image=100, max_per_image=20,
                         subset=min(QUICK["identify_subset"], n_train)),
        correct=replace(paper.correct, lambdas=_quick_lambdas(n_train), epochs=QUICK["correct_epochs"],
                        failure_batch_size=QUICK["failure_batch"]))


def deviations(preset: Preset, args, class_names: list) -> list[str]:
    """Every setting that differs from the paper (the PAPER preset: the project's defaults), in words."""
    out = [f"classifier: trained on only {frac:.0%} of the training images of class {c} ({class_names[c]}), "
           "a planted flaw as in the demo (paper: the full training set)" for c, frac in preset.train.class_keep]
    for part in PARTS:
        ours, theirs = asdict(getattr(preset, part)), asdict(getattr(PAPER, part))
        for key in sorted(k for k in ours if ours[k] != theirs[k] and k != "class_keep"):
            name = f"{part}.{key}"
            source = "project default" if part in ("vae", "reviewer") or name in PROJECT_CHOICES else "paper"
            label = f"{name} ({PAPER_NAMES[name]})" if name in PAPER_NAMES else name
            out.append(f"{label}: {ours[key]} ({source}: {theirs[key]})")
    if args.tau is not None:
        out.append(f"τ (review and correction samples): {args.tau} (paper: 0.5 for MNIST, 0.01 for SVHN/signs)")
    elif args.new_route:
        out.append("τ per scenario: the widest τ at which reviewer A reads 90 % of a scenario's samples as its label "
                   "(paper: 0.5 for MNIST, 0.01 for SVHN/signs)")
    if args.new_route:
        out.append("issue #21's route: scenarios split by confusion, τ chosen for each scenario, D_f the reviewers "
                   "agree on (paper and project defaults: one mixture over every UAE, τ per dataset, every D_f sample)")
    if args.accept_low_fidelity:
        out.append("identify: searches even when the VAE fails the fidelity gate (the product refuses without "
                   "--accept-low-fidelity); its fidelity is printed with the results")
    if args.verify:
        out.append(f"identify: verification filter, only UAEs {VERIFY_WORDS[args.verify]} are kept "
                   "(paper: every UAE)")
    if args.models_from:
        models = ", ".join(m for m, own in (("classifier", args.train_classifier), ("VAE", own_vae(args)),
                                            ("reviewers" if not args.reviewer_recipe else "reviewer B", False))
                           if not own)
        out.append(f"{models} reused from {args.models_from} (their training not timed)")
    rule = {"two_sided": "λ choice: two-sided, the best fix rate on failure validation (read by reviewer A) whose "
                         "collateral stays within 1 point of the control's (paper: best train/validation accuracy)",
            "paper": "λ choice: the paper's, the best validation accuracy"}.get(preset.correct.selection)
    return out + [rule if rule and n.startswith("λ choice") else n for n in NOTES]  # the rule this run used


# --- models ----------------------------------------------------------------------------------------------
class _Log:
    """Progress callback: a line per step at most every ``every`` seconds."""

    def __init__(self, every: float = 30.0):
        self.every, self.last = every, {}

    def __call__(self, p) -> None:
        now = time.perf_counter()
        if now - self.last.setdefault(p.step, now) >= self.every:
            self.last[p.step] = now
            eta = "" if p.eta_s is None else f", about {p.eta_s:.0f} s left"
            print(f"    {p.step}: {p.done}/{p.total}{eta}", flush=True)


def own_vae(args) -> bool:
    """Whether this run trains its own VAE even with --models-from (a VAE of other settings)."""
    return bool(args.conditional or args.vae_beta or args.vae_recipe)


def open_workspace(args) -> Workspace:
    """A fresh workspace (or one without review decisions); --models-from imports its classifier and VAE
    (not the VAE when this run asks for another: --conditional, --vae-beta, --vae-recipe)."""
    root = Path(args.workspace) if args.workspace else default_home() / f"paper-table-{args.dataset}"
    if (root / "project.json").exists():
        ws = Workspace.open(root)
        if ws.exists(LABELS):
            raise SystemExit(f"{root} already holds review decisions: give a fresh --workspace "
                             f"(reuse its models with --models-from {root})")
        return ws
    src = Path(args.models_from) if args.models_from else None
    return project.init_project(root, dataset_spec_from_args(args),
                                classifier=src / "classifier/model.json" if src and not args.train_classifier else None,
                                vae=src / "vae/model.json" if src and not own_vae(args) else None)


def train_models(ws: Workspace, preset: Preset, device, log) -> dict:
    """Train the classifier and the VAE where missing; returns their metrics and the VAE's fidelity."""
    if not ws.exists("classifier/model.json"):
        project.train_classifier_step(ws, preset.train, device=device, on_progress=log)
    if not ws.exists("vae/model.json"):
        project.train_vae_step(ws, preset.vae, device=device, on_progress=log)
    data, (clf, meta) = project.load_data(ws), project.load_classifier(ws)
    flawed = {}
    for c, _ in preset.train.class_keep:
        mask = data.test.labels == c
        flawed[data.class_names[c]] = evaluate_accuracy(clf, data.test.images[mask], data.test.labels[mask],
                                                        torch.device("cpu"))
    fidelity = project.measure_fidelity(ws, device=device)
    return {"classifier": {**meta.get("metrics", {}), "test_acc_of_flawed_class": flawed},
            "vae": {**(ws.step_record("vae") or {}).get("metrics", {}), **fidelity}}


def _accuracy(reviewer: Reviewer, data: ImageData, device) -> float:
    return float(np.mean(reviewer.predict(data.test.images, device=device).labels == data.test.labels.numpy()))


def get_reviewers(ws: Workspace, preset: Preset, args, device, log) -> tuple[Reviewer, Reviewer]:
    """Reviewer A (the method's annotators) and an independent reviewer B (other seeds) for Figure 6.

    Both learn from the whole training split, every class (the planted flaw is the classifier's only).
    """
    data, reviewers = project.load_data(ws), []
    for name, seed in (("a", preset.reviewer.seed), ("b", 2000)):
        own = name == "a" and args.reviewer_recipe  # the product's reviewer, trained here
        folder = Path(ws.root if own else args.models_from or ws.root) / f"reviewer-{name}"
        if (folder / "reviewer.json").exists():
            reviewers.append(Reviewer.load(folder))
            continue
        cfg = replace(preset.reviewer, seed=seed, name=f"auto-reviewer-{name}")
        reviewer = train_reviewer(data, cfg, device=device, on_progress=log)
        reviewer.save(ws.path(f"reviewer-{name}"))
        reviewers.append(reviewer)
    return reviewers[0], reviewers[1]


# --- the method and the reviewers' agreement --------------------------------------------------------------
def run_method(ws: Workspace, preset: Preset, reviewer: Reviewer, tau, device, log, times: dict,
               verify: bool | str = False) -> dict:
    """identify -> distill -> review -> correct through defuse's steps; returns A's verdicts.

    Without any failure scenario there is nothing to correct: the table then holds the "before" row only.
    """
    # only the smoke preset searches with a VAE that fails the fidelity gate (its 2-epoch VAE is blurry)
    drawn = None if tau == TAU_AUTO else tau  # τ "auto" is chosen by the review; correction reads it from the project
    steps = [("identify", lambda: identify_step(ws, preset.identify, run=RunOptions(device=device, on_progress=log),
                                                reviewer=reviewer, accept_low_fidelity=preset.accept_low_fidelity,
                                                verify=verify)),
             ("distill", lambda: distill_step(ws, preset.distill, on_progress=log)),
             ("review", lambda: review_step(ws, reviewer, tau=tau, device=device, on_progress=log)),
             ("correct", lambda: correct.correct_step(ws, preset.correct, draw=ScenarioDraw(preset.n_samples, drawn),
                                                      reviewer=reviewer, run=RunOptions(device, log)))]
    out = {name: _timed(times, name, step) for name, step in steps[:3]}
    if any(v.is_failure for v in out["review"].values()):
        _timed(times, "correct", steps[3][1])
    else:
        print("  correct: skipped, reviewer A judged no scenario a failure", flush=True)
    return out["review"]


def reviewer_quality(ws: Workspace, verdicts_a: dict, rev_a: Reviewer, rev_b: Reviewer, tau, device,
                     n_examples: int = 1000) -> dict:
    """Figure 6 with two independent reviewers: how often B agrees with A, per scenario and per example.

    Scenario level: B reviews the same 10 samples of every scenario (its own label store). Example level: a
    random ``n_examples`` unrestricted adversarial examples, split by whether their scenario is a failure
    scenario (A's verdict). ``within_panel_*`` is the paper's own measure: the share of one ensemble's
    members voting for the majority label.
    """
    scenarios, vae = load_scenarios(ws), project.load_vae(ws)[0]
    ws.path("review-b").mkdir(exist_ok=True)
    with LabelStore(ws.path("review-b/labels.sqlite")) as store:
        samples = ReviewSamples(vae, project.load_classifier(ws)[0], scenarios, tau=tau or default_tau(ws), seed=0)
        verdicts_b = review_scenarios(rev_b, samples, store, device=device)
    ids = sorted(verdicts_a)
    failure = np.array([verdicts_a[j].is_failure for j in ids], dtype=bool)
    same = np.array([verdicts_a[j].is_failure == verdicts_b[j].is_failure
                     and verdicts_a[j].label == verdicts_b[j].label for j in ids], dtype=float)
    failures = load_failures(ws)
    pick = np.sort(np.random.default_rng(0).choice(len(failures), min(n_examples, len(failures)), replace=False))
    images = decode_latents(vae, failures.latents[pick], device=device).cpu()
    pred_a, pred_b = rev_a.predict(images, device=device), rev_b.predict(images, device=device)
    in_failure = np.isin(scenarios.assignment[pick], [j for j in ids if verdicts_a[j].is_failure])
    return {"scenario_verdicts_same": agreement_summary(same, failure),
            "failure_scenarios_by_b": int(sum(v.is_failure for v in verdicts_b.values())),
            "examples_same_label": agreement_summary((pred_a.labels == pred_b.labels).astype(float), in_failure),
            "within_panel_a": agreement_summary(pred_a.agreement, in_failure),
            "within_panel_b": agreement_summary(pred_b.agreement, in_failure)}


# --- the independent judge ------------------------------------------------------------------------------
def judge_config(args) -> JudgeConfig:
    return SMOKE_JUDGE if args.smoke else JUDGE_PRESETS[args.judge or ("quick" if args.quick else "full")]


def get_judge(ws: Workspace, args, device, log) -> Judge:
    """The judge for this data and setting: reused from --models-from or the workspace, else trained."""
    data, cfg = project.load_data(ws), judge_config(args)
    if args.models_from:
        shared = Path(args.models_from) / "judge"
        if (shared / f"judge-{fingerprint(data, cfg)}.json").is_file():
            return load_or_train_judge(data, cfg, shared, device=device)
    return load_or_train_judge(data, cfg, ws.path("judge"), device=device, on_progress=log)


def vae_used(ws: Workspace) -> dict:
    """The settings of the VAE this run searched with (its own, or the one --models-from imported)."""
    meta = project.load_vae(ws)[1]
    return {**meta.get("config", {}), "architecture": meta.get("architecture"),
            "conditional": meta.get("architecture") == "conditional-beta-vae"}


def conditional_design(vae: dict) -> str:
    """", label in every layer, adversary ×2" for a conditional VAE of issue #21; "" for the first design."""
    label_in, weight = vae.get("label_in", "decoder-input"), vae.get("class_adversary") or 0
    return ("" if label_in == "decoder-input" else ", label in every layer") + (f", adversary ×{weight:g}" if weight
                                                                              else "")


VERIFY_WORDS = {True: "reviewer A reads as the source's class", "reviewer": "reviewer A reads as the source's class",
                "clear": "every member of reviewer A reads as the source's class with confidence >= 0.9"}


def identification_method(preset: Preset, verify: bool | str = False, vae: dict | None = None) -> str:
    """Which identification produced the UAEs, in words (the paper's method and its options); ``vae``: the
    settings of the VAE actually used (:func:`vae_used`), else the preset's."""
    i, vae = preset.identify, vae or asdict(preset.vae)
    noise = (f"Beta({i.beta_a:g}, {i.beta_b:g}) noise" + (", centred" if i.centered else " (uncentred, the paper's)")
             + (f", scaled ×{i.noise_scale:g}" if i.noise_scale != 1 else ""))
    skip = "; misreconstructed sources skipped" if i.skip_misreconstructed else ""
    check = f"; verification filter: only UAEs {VERIFY_WORDS[verify]}" if verify else ""
    beta = vae.get("beta", preset.vae.beta)
    kind = (f"class-conditional β-VAE (β={beta:g}{conditional_design(vae)}), decoded with the source's label"
            if vae.get("conditional") else f"paper: unconditional β-VAE (β={beta:g})")
    return f"{kind}, {noise}{skip}{check}"


def judge_grades(ws: Workspace, judge: Judge, reviewers: tuple, tau, device, corrected: bool,
                 threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Every per-sample figure graded by the judge, next to the reviewers' strength."""
    members = [m["metrics"].get("test_acc") for r in reviewers for m in r.member_meta]
    strongest = max((a for a in members if a is not None), default=None)
    uaes = grading.grade_uaes(ws, judge, device=device)
    control = grading.grade_class_control(ws, judge, device=device)
    purity = grading.grade_purity(ws, judge, tau=tau, device=device)
    out = {"judge_test_acc": judge.test_acc, "real_share": uaes["real_share"], "class_control_judge": control,
           "artefact_share_judge": uaes["artefact_share"], "purity_mean": purity["purity_mean"],
           "purity_mean_failure": purity["purity_mean_failure"], "scenario_purity": purity["scenarios"],
           "judge": {k: judge.meta.get(k) for k in ("architecture", "config", "metrics", "fingerprint")}
           | {"strongest_reviewer_member_test_acc": strongest, "uaes_graded": uaes["n"],
              "at_least_as_strong": strongest is None or judge.test_acc >= strongest}}
    keys = ("failure_acc_before_judge", "failure_acc_control_judge", "failure_acc_after_judge",
            "baseline_failure_acc_judge", "failure_test_judge_reads_scenario_label", "sweep_judge",
            "two_sided_judge", "fix_rate_after_judge", "fix_rate_control_judge", "fix_rate_baseline_judge",
            "collateral_after_judge", "collateral_control_judge", "collateral_baseline_judge",
            "n_real_failures_test", "n_unclear_test", "n_right_before_test")
    out.update(grading.grade_correction(ws, judge, threshold=threshold, device=device) if corrected
               else {**dict.fromkeys(keys), "judge_threshold": threshold})
    return out


# --- the table -------------------------------------------------------------------------------------------
def _baseline_val(report: dict):
    return next((r["val_acc"] for r in report.get("sweep", [])
                 if r["kind"] == "baseline" and r["lambda"] == report.get("baseline_lambda")), None)


def figure4_rows(report: dict) -> list[tuple]:
    """(row, # scenarios, validation, test, failure acc by scenario label, by per-sample reviewer label,
    by per-sample judge label)."""
    found = f"{report['n_scenarios']} found, {report['n_failure_scenarios']} failures"
    base, best = (("–" if v is None else v) for v in (report.get("baseline_lambda"), report.get("best_lambda")))
    keys = ("val_acc", "test_acc", "failure_acc", "failure_acc_reviewer")
    return [("Before fine-tuning", "", *(report.get(f"{k}_before") for k in keys),
             report.get("failure_acc_before_judge")),
            ("Control: fine-tuned on D only (λ=0)", "", *(report.get(f"{k}_control") for k in keys),
             report.get("failure_acc_control_judge")),
            (f"Unrestricted adversarial examples only, λ={base}", "",
             _baseline_val(report), report.get("baseline_test_acc"), report.get("baseline_failure_acc"),
             report.get("baseline_failure_acc_reviewer"), report.get("baseline_failure_acc_judge")),
            (f"Defuse, λ={best}", found, *(report.get(f"{k}_after") for k in keys),
             report.get("failure_acc_after_judge"))]


def check_two_sided_targets(r: dict) -> dict:
    """Issue #21's targets on the judge's two-sided figures."""
    def diff(a, b):
        return None if r.get(a) is None or r.get(b) is None else r[a] - r[b]

    values = {**r, "fix_over_control": diff("fix_rate_after_judge", "fix_rate_control_judge"),
              "fix_over_baseline": diff("fix_rate_after_judge", "fix_rate_baseline_judge"),
              "collateral_over_control": diff("collateral_after_judge", "collateral_control_judge"),
              "test_over_control": diff("test_acc_after", "test_acc_control")}
    out = {}
    for name, (key, bound, side) in TWO_SIDED_TARGETS.items():
        v = values.get(key)
        met = v is not None and (v >= bound - 1e-12 if side == "min" else v <= bound + 1e-12)
        out[name] = {"value": v, "met": met}
    return out


def check_targets(report: dict) -> dict:
    def diff(a, b):
        return None if a is None or b is None else a - b

    values = {"failure_acc_after": report.get("failure_acc_after"),
              "test_change": diff(report.get("test_acc_after"), report.get("test_acc_before")),
              "defuse_over_baseline": diff(report.get("failure_acc_after"), report.get("baseline_failure_acc"))}
    return {name: {"value": values[key], "met": values[key] is not None and values[key] >= bound - 1e-12}
            for name, (key, bound) in TARGETS.items()}


def _split(vae_metrics: dict) -> str:
    """Which images the VAE's fidelity was measured on, and whether it trained on them."""
    split = {"val": "validation", "test": "test"}[vae_metrics.get("fidelity_split", "val")]
    seen = vae_metrics.get("fidelity_split_unseen_by_vae")
    return split + {True: " (unseen in training)", False: " (seen in training)", None: ""}[seen]


def environment(args) -> dict:
    """What the figures ran on: versions, threads, date."""
    import platform
    from datetime import datetime, timezone

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "threads": torch.get_num_threads(), "machine": platform.machine(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _ms(s: dict) -> str:
    return "–" if s["n"] == 0 else f"{100 * s['mean']:.1f} ± {100 * (s['se'] if s['se'] == s['se'] else 0):.1f}"


def _verified(i: dict) -> str:
    if not i.get("verified"):
        return ""
    return (f", before the verification filter, which kept {i['n_verified']} of {i['n_before_verification']} "
            f"({_pct(i['verified_share'])} %)")


def judge_lines(r: dict) -> list[str]:
    j = r["judge"]
    strongest = j["strongest_reviewer_member_test_acc"]
    lines = [f"Identification: {r['method']}.",
             f"Independent judge ({j['architecture']} width {j['config']['width']}, {j['config']['blocks']} block(s) "
             f"per stage, {j['config']['epochs']} epochs with augmentation, training split only): test "
             f"{_pct(r['judge_test_acc'])} % (strongest reviewer member: {_pct(strongest)} %). On "
             f"{j['uaes_graded']} UAEs the judge reads {_pct(r['real_share'])} % as the source's class (real) and "
             f"{_pct(r['artefact_share_judge'])} % as the classifier's label (artefacts). Scenario purity by the "
             f"judge: {_pct(r['purity_mean'])} % on average, {_pct(r['purity_mean_failure'])} % over failure "
             "scenarios."]
    if r.get("class_control_judge") is not None:
        lines.append(f"Class control: decoded with another label, the judge reads {_pct(r['class_control_judge'])} % "
                     "of test images as that label.")
    if r.get("sweep_judge"):
        lines.append("Per-sample failure-test accuracy by the judge for every swept λ: " + "; ".join(
            f"{row['kind']} λ={row['lambda']:g} {_pct(row['failure_acc_judge'])} %" for row in r["sweep_judge"]) + ".")
    if r.get("failure_test_judge_reads_scenario_label") is not None:
        lines.append(f"The judge gives {_pct(r['failure_test_judge_reads_scenario_label'])} % of the failure-test "
                     "samples their scenario's label.")
    return [" ".join(lines), *two_sided_lines(r)]


def two_sided_lines(r: dict) -> list[str]:
    """The judge's two-sided grade: fix rate and collateral per model, overall and per scenario."""
    t = r.get("two_sided_judge")
    if not t:
        return []
    names = (("before", "Before"), ("control", "Control (λ=0)"), ("baseline", "UAE-only baseline"),
             ("chosen", "Defuse"))
    lines = ["", f"Two-sided, graded by the judge (clear: its confidence >= {t['threshold']:g}): of "
             f"{t['n_test']} failure-test samples, {t['n_unclear']} unclear (not graded), {t['n_real_failures']} real "
             f"failures (clear, the scenario's label, the original wrong), {t['n_right_before']} right before.", "",
             "| | fix rate | collateral |", "|---|---|---|"]
    lines += [f"| {title} | {_pct(t['models'][k]['fix_rate'])} | {_pct(t['models'][k]['collateral'])} |"
              for k, title in names]
    lines += ["", "| scenario | real failures | unclear | fix rate: control / baseline / Defuse | collateral: "
              "control / baseline / Defuse |", "|---|---|---|---|---|"]
    for s in t["per_scenario"]:
        m = s["models"]
        lines.append(f"| #{s['scenario_id']} | {s['n_real_failures']} | {s['n_unclear']} | "
                     + " / ".join(_pct(m[k]["fix_rate"]) for k in ("control", "baseline", "chosen")) + " | "
                     + " / ".join(_pct(m[k]["collateral"]) for k in ("control", "baseline", "chosen")) + " |")
    return lines


def markdown(result: dict) -> str:
    r = result
    lines = [f"### {r['dataset']} ({r['preset']}) — {r['wall_seconds']:.0f} s", "", f"`{r['command']}`", "",
             "| | # Scenarios | Validation | Test | Failure scenario (scenario label) | "
             "Failure scenario (per-sample reviewer label) | Failure scenario (per-sample judge label) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {n} | " + " | ".join(_pct(v) for v in values) + " |"
              for name, n, *values in figure4_rows(r)]
    v, c, i = r["models"]["vae"], r["models"]["classifier"], r["identify"]
    flawed = ", ".join(f"{k} {_pct(a)} %" for k, a in c["test_acc_of_flawed_class"].items())
    lines += ["", f"Classifier: test {_pct(c.get('test_acc'))} % (held-back class: {flawed})."
              f" VAE fidelity: the classifier gets {_pct(v['acc_reconstruction'])} % of {_split(v)} reconstructions "
              f"right vs {_pct(v['acc_original'])} % of originals; {v['active_dims']} of {v['latent_dim']} latent "
              f"dimensions active. Reviewers' test accuracy: A {_pct(r['reviewer_test_acc']['a'])} %, "
              f"B {_pct(r['reviewer_test_acc']['b'])} %.", "",
              f"Identify: {r['n_failures']} unrestricted adversarial examples from {i.get('n_searched')} sources; "
              f"of {i.get('reviewer_n')} of them, reviewer A gives {_pct(i.get('reviewer_real_share'))} % the source's "
              f"true label (real failures) and {_pct(i.get('reviewer_artefact_share'))} % the classifier's label "
              f"(artefacts){_verified(i)}. Reviewer B calls {r['reviewer_agreement']['failure_scenarios_by_b']} "
              "scenarios failures.", "", *judge_lines(r), "",
              "| Reviewer agreement (Figure 6), mean ± s.e. % | Failure scenario | Non-failure scenario | Combined |",
              "|---|---|---|---|"]
    for key, title in (("scenario_verdicts_same", "B's scenario verdict = A's (failure?, label)"),
                       ("examples_same_label", "B's label = A's, per unrestricted adversarial example"),
                       ("within_panel_a", "share of A's members voting for its majority (paper's measure)")):
        s = r["reviewer_agreement"][key]
        lines.append(f"| {title} | {_ms(s['failure'])} | {_ms(s['non_failure'])} | {_ms(s['combined'])} |")
    lines += ["", "Targets (issue #21, judge, two-sided): " + "; ".join(
        f"{k}: {'met' if t['met'] else 'missed'} ({t['value'] if isinstance(t['value'], int) else _pct(t['value'])})"
        for k, t in r.get("targets_two_sided", {}).items())]
    lines += ["", "Targets: " + "; ".join(f"{k}: {'met' if t['met'] else 'missed'} ({_pct(t['value'])})"
                                          for k, t in r["targets"].items()), "",
              "Deviations from the paper:", *[f"- {d}" for d in r["deviations"]], "",
              "Seconds per stage: " + ", ".join(f"{k} {s:.0f}" for k, s in r["seconds"].items())]
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_dataset_args(p)
    p.add_argument("--quick", action="store_true", help="scaled to one CPU thread, about ten minutes")
    p.add_argument("--smoke", action="store_true", help="tiny settings that only test the script (no results)")
    p.add_argument("--json", default=None, help="output file (default: <workspace>/paper-table.json; + .md)")
    p.add_argument("--workspace", "-w", default=None, help="project folder (default: DEFUSE_HOME/paper-table-SRC)")
    p.add_argument("--models-from", default=None, help="workspace whose classifier, VAE and reviewers to reuse")
    p.add_argument("--reviewer-recipe", action="store_true",
                   help="reviewer A: the product's default reviewer (3 members, paper-cnn and its wide variant, 8 "
                        "epochs), trained in this run even with --models-from, which still gives reviewer B "
                        "(--quick alone: 2 small members, fewer epochs)")
    p.add_argument("--train-classifier", action="store_true",
                   help="with --models-from: train this run's own classifier by the preset (reuse the rest)")
    p.add_argument("--classifier-epochs", type=int, default=None,
                   help="train the classifier this many epochs (default: the paper's 5); an under-trained "
                        "classifier lets the λ=0 control fix its errors by training longer")
    p.add_argument("--centered", action="store_true", help="identify: subtract the Beta noise's mean")
    p.add_argument("--beta", type=float, nargs=2, default=None, metavar=("A", "B"),
                   help="identify: Beta(A, B) noise (paper: 50 50); with --centered, A=B=2 spreads ±0.5")
    p.add_argument("--conditional", action="store_true",
                   help="a class-conditional β-VAE (decoded with the source's label); trains its own VAE even "
                        "with --models-from")
    p.add_argument("--label-in", default=None, choices=sorted(LABEL_IN),
                   help="with --conditional: the layers that take the label (default: the product's, every-layer)")
    p.add_argument("--class-adversary", type=float, default=None,
                   help="with --conditional: the weight of the adversary that reads the label from z "
                        "(default: the product's; 0: none)")
    p.add_argument("--vae-beta", type=float, default=None, help="the VAE's β (default: the project's 0.4)")
    p.add_argument("--vae-recipe", action="store_true",
                   help="with --quick: train the VAE by the product's recipe (about 8,000 steps), not the quick budget")
    p.add_argument("--noise-scale", type=float, default=1.0, help="identify: multiply the noise (after centring)")
    p.add_argument("--skip-misreconstructed", action="store_true", help="identify: only well-reconstructed sources")
    p.add_argument("--verify", nargs="?", const="reviewer", default=False, choices=VERIFY_RULES,
                   help="identify: keep only the UAEs reviewer A reads as the source's class (verification filter): "
                        "by its vote ('reviewer', the default) or by every member confidently ('clear')")
    p.add_argument("--accept-low-fidelity", action="store_true",
                   help="identify even with a VAE that fails the fidelity gate (--quick's short VAE training may)")
    p.add_argument("--tau", type=float, default=None,
                   help="one sample diversity τ for every scenario (default: the dataset's, 0.5; SVHN, signs 0.01)")
    p.add_argument("--new-route", action="store_true",
                   help="issue #21's options: scenarios split by confusion, τ per scenario chosen by reviewer A, D_f "
                        "the reviewers agree on (measured, not the default: docs/results.md)")
    p.add_argument("--paper-method", action="store_true",
                   help="the paper's distillation and correction (one mixture over every UAE, τ per dataset, every "
                        "D_f sample kept): the default since issue #21's comparison; kept so recorded commands run")
    p.add_argument("--judge-threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="the judge's confidence at which it reads a sample clearly (two-sided grade)")
    p.add_argument("--selection", choices=SELECTION_NAMES, default=PAPER.correct.selection,
                   help="correct: how λ is chosen (two_sided: the best fix rate on failure validation, read by "
                        "reviewer A, whose collateral stays within 1 point of the control's)")
    p.add_argument("--fix-set", choices=FIX_SETS, default=None,
                   help="correct: D_f every sample drawn (all, the paper) or what reviewer A's members agree on "
                        "(agreed; default: all, agreed with --new-route)")
    p.add_argument("--failure-labels", choices=("scenario", "reviewer"), default="scenario",
                   help="correct: D_f labeled per scenario (paper) or per sample by reviewer A")
    p.add_argument("--judge", choices=sorted(JUDGE_PRESETS), default=None,
                   help="the independent judge's size (default: quick with --quick, else full)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: DEFUSE_THREADS or all)")
    return p.parse_args(argv)


def _timed(times: dict, name: str, fn):
    t = time.perf_counter()
    out = fn()
    times[name] = time.perf_counter() - t
    print(f"  {name}: {times[name]:.0f} s", flush=True)
    return out


def _print_models(models: dict) -> None:
    c, v = models["classifier"], models["vae"]
    print(f"  classifier: test {_pct(c.get('test_acc'))} %, held-back class {c['test_acc_of_flawed_class']}\n"
          f"  VAE fidelity: the classifier gets {_pct(v['acc_reconstruction'])} % of {_split(v)} reconstructions "
          f"right vs {_pct(v['acc_original'])} % of originals; {v['active_dims']}/{v['latent_dim']} active dims",
          flush=True)
    if fidelity_warning(v):
        print("  warning: " + fidelity_warning(v), flush=True)


def main(argv=None) -> int:
    args, t0, times = parse_args(argv), time.perf_counter(), {}
    configure_threads(args.threads)
    ws, log = open_workspace(args), _Log()
    data = project.load_data(ws)
    preset = build_preset(args, len(data.train), len(vae_images(data, PAPER.vae.train_on)))
    devs = deviations(preset, args, data.class_names)
    print(f"{args.dataset}: {len(data.train)}/{len(data.val)}/{len(data.test)} train/val/test images, "
          f"{describe_device(args.device)}, workspace {ws.root}\nDeviations from the paper:",
          *[f"  - {d}" for d in devs], sep="\n", flush=True)
    models = _timed(times, "models", lambda: train_models(ws, preset, args.device, log))
    _print_models(models)
    rev_a, rev_b = _timed(times, "reviewers", lambda: get_reviewers(ws, preset, args, args.device, log))
    judge = _timed(times, "judge", lambda: get_judge(ws, args, args.device, log))
    tau = args.tau if args.tau is not None else (TAU_AUTO if args.new_route else dataset_tau(ws))
    verdicts = run_method(ws, preset, rev_a, tau, args.device, log, times, verify=args.verify)
    tau = None if tau == TAU_AUTO else tau  # chosen now: every later draw reads the project's τ per scenario
    report = save_report(ws)
    grades = _timed(times, "grading", lambda: judge_grades(ws, judge, (rev_a, rev_b), tau, args.device,
                                                           ws.exists(correct.SWEEP), args.judge_threshold))
    quality = _timed(times, "agreement", lambda: reviewer_quality(ws, verdicts, rev_a, rev_b, tau,
                                                                            args.device))
    words = sys.argv[1:] if argv is None else argv
    used = vae_used(ws)
    result = {**report, **grades, "method": identification_method(preset, args.verify, used), "vae_used": used,
              "preset": preset.name,
              "command": " ".join(["python benchmarks/paper_table.py", *words]),
              "device": describe_device(args.device), "environment": environment(args), "deviations": devs,
              "models": models,
              "reviewer_agreement": quality, "targets": check_targets(report),
              "targets_two_sided": check_two_sided_targets({**report, **grades}), "seconds": times,
              "taus": (ws.load_json(TAUS) if ws.exists(TAUS) else None),
              "d_source": (ws.load_json(correct.SWEEP).get("d_source") if ws.exists(correct.SWEEP) else None),
              "reviewer_test_acc": {k: _accuracy(r, data, args.device) for k, r in (("a", rev_a), ("b", rev_b))},
              "settings": {**{part: asdict(getattr(preset, part)) for part in PARTS},
                           "judge": asdict(judge_config(args))},
              "wall_seconds": time.perf_counter() - t0}
    out = Path(args.json) if args.json else ws.path("paper-table.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result), f"saved {out} and {out.with_suffix('.md')}", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
