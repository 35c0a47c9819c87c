"""CLI subcommands: correct, export, and run (the whole pipeline on one workspace)."""

from __future__ import annotations

import time
from dataclasses import replace

from ..correct.config import FAILURE_LABELS, CorrectConfig
from ..distill.sampling import ScenarioDraw
from ..nets.vae_recipe import ACCEPT_FLAG
from ..runtime.progress import RunOptions
from ..steps import correct, export, project
from ..steps.distill import distill_step
from ..steps.fidelity import check_fidelity
from ..steps.identify import identify_step
from ..steps.label import check_correct_inputs, get_reviewer, review_step
from ..steps.presets import PRESETS
from ..steps.report import report_markdown, save_report
from ..workspace import CLASSIFIER, VAE, Workspace
from . import args as cli_args
from .args import CommandTable, add_setting_flags, config_from_args, open_workspace, resolve_workspace, status_lines
from .backend_args import add_backend_args, backend_from_args
from .commands_pipeline import add_reviewer_args, reviewer_config_from_args, reviewer_from_args
from .commands_project import add_architecture_args, add_dataset_args, dataset_spec_from_args

COMMANDS = CommandTable()  # this module's commands; defuse.cli.main lists the tables
register = COMMANDS.register


# --- correct --------------------------------------------------------------------------------------------
def _correct_args(p):
    add_setting_flags(p, CorrectConfig)
    add_setting_flags(p, ScenarioDraw, skip=("seed",), config=False)   # --samples, --tau (the seed: --seed)
    add_reviewer_args(p, "'auto' or a checkpoint: labels the baseline, stricter accuracy")
    p.add_argument("--no-baseline", action="store_true", help="skip the UAE-only baseline sweep")
    add_backend_args(p)


def _correct(args, sink):
    cfg = config_from_args(args, CorrectConfig)
    draw = ScenarioDraw(**cli_args.setting_values(args, ScenarioDraw, skip=("seed",)), seed=cfg.seed)
    backend = backend_from_args(args)
    reviewer_config_from_args(args)  # a bad reviewer flag is refused before any work
    ws = open_workspace(args)
    check_correct_inputs(ws, tau=draw.tau, seed=cfg.seed)  # before a reviewer trains
    reviewer = reviewer_from_args(ws, args, sink)
    correct.correct_step(ws, cfg, draw=draw, reviewer=reviewer,
                         baseline=not args.no_baseline, run=RunOptions(args.device, sink, backend))
    return report_markdown(save_report(ws))


register("correct", "fine-tune on L(D) + λ·CE(D_f) over a λ sweep, with the λ=0 control and the baseline",
         _correct_args, _correct)


# --- export ---------------------------------------------------------------------------------------------
def _export_args(p):
    p.add_argument("--lambda", dest="lam", type=float, default=None, help="export this λ instead of the chosen one")
    p.add_argument("--name", default=None, help="file name stem (default: <project>-corrected)")


def _export(args, sink):
    ws = open_workspace(args)
    card = export.export_step(ws, lam=args.lam, name=args.name)
    return f"exported to {ws.path(export.EXPORTS)}: " + ", ".join(card.get("files", {}).values())


register("export", "write the corrected classifier (safetensors + JSON) and its model card", _export_args, _export)


# --- run ------------------------------------------------------------------------------------------------
def _run_args(p):
    p.add_argument("--workspace", "-w", required=True, help="project folder, or a name under DEFUSE_HOME")
    add_dataset_args(p)
    p.add_argument("--reviewer", default="auto", help="'auto' (reference ensemble) or a checkpoint")
    p.add_argument("--quick", action="store_true", help="small CPU-friendly settings (a few minutes): --preset quick")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS), help="paper (default), quick, smoke (tests)")
    p.add_argument("--classifier", default=None, help="classifier to debug (default: demo model for mnist-sample, "
                   "else trained)")
    add_architecture_args(p)
    p.add_argument("--failure-labels", choices=FAILURE_LABELS, default="scenario",
                   help="D_f labels: one per scenario (paper) or the reviewer's per sample")
    add_backend_args(p)
    p.add_argument(ACCEPT_FLAG, action="store_true",
                   help="search even with a β-VAE whose reconstructions the classifier recognises far less often "
                        "than the originals (refused otherwise)")


_run_args.needs_workspace = False


def _ensure_project(args) -> Workspace:
    root = resolve_workspace(args.workspace)
    if (root / "project.json").exists():
        return Workspace.open(root)
    spec = dataset_spec_from_args(args)
    demo = spec.source == "mnist-sample" and args.classifier is None
    return project.init_project(root, spec, classifier=project.DEMO_CLASSIFIER if demo else args.classifier,
                                architecture=args.architecture, arch_kwargs=args.arch_kwargs,
                                vae=project.DEMO_VAE if demo else None, trust_code=args.trust_code)


def _run(args, sink):
    preset = PRESETS[args.preset or ("quick" if args.quick else "paper")]
    backend = backend_from_args(args)
    ws, times = _ensure_project(args), {}
    dev, t = args.device, time.perf_counter()
    if not ws.exists(CLASSIFIER):
        project.train_classifier_step(ws, preset.train, device=dev, on_progress=sink)
    if not ws.exists(VAE):
        project.train_vae_step(ws, preset.vae, device=dev, on_progress=sink)
    accept = args.accept_low_fidelity or preset.accept_low_fidelity
    check_fidelity(ws, accept_low_fidelity=accept)  # before the reviewer's minutes of training
    times["models"], t = time.perf_counter() - t, time.perf_counter()
    reviewer = get_reviewer(ws, args.reviewer, cfg=preset.reviewer, device=dev, on_progress=sink)
    times["reviewer"], t = time.perf_counter() - t, time.perf_counter()
    identify_step(ws, preset.identify, run=RunOptions(device=dev, on_progress=sink, backend=backend),
                  reviewer=reviewer, accept_low_fidelity=accept)
    times["identify"], t = time.perf_counter() - t, time.perf_counter()
    distill_step(ws, preset.distill, on_progress=sink)
    times["distill"], t = time.perf_counter() - t, time.perf_counter()
    review_step(ws, reviewer, device=dev, on_progress=sink)
    times["review"], t = time.perf_counter() - t, time.perf_counter()
    correct_cfg = replace(preset.correct, failure_labels=args.failure_labels)
    correct.correct_step(ws, correct_cfg, draw=ScenarioDraw(preset.n_samples), reviewer=reviewer,
                         run=RunOptions(dev, sink, backend))
    times["correct"], t = time.perf_counter() - t, time.perf_counter()
    export.export_step(ws)
    report = save_report(ws)
    ws.save_json("report.json", {**report, "preset": preset.name, "seconds": times})
    return report_markdown(report) + "\n" + status_lines(ws)


register("run", "the whole pipeline on one workspace: models, identify, distill, review, correct, export",
         _run_args, _run)
