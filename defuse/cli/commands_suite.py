"""CLI subcommands of the regression suite: `suite` freezes the failure scenarios, `check` tests a model on them."""

from __future__ import annotations

from pathlib import Path

from ..nets.checkpoints import load_classifier
from ..runtime import atomic
from ..steps.suite import SuiteConfig, export_suite
from ..suite.check import LABEL_MODES, CheckResult, Thresholds, check_model
from ..suite.regression_suite import read_suite
from .args import CommandTable, Failed, add_setting_flags, config_from_args, open_workspace

COMMANDS = CommandTable()  # this module's commands; defuse.cli.main lists the tables
register = COMMANDS.register


# --- suite -----------------------------------------------------------------------------------------------
def _suite_args(p):
    p.add_argument("--out", default=None, help="folder to write (default: <workspace>/exports/suite)")
    add_setting_flags(p, SuiteConfig)   # --samples, --seed, --tau, --with-test, --no-reviewer


def _suite(args, sink):
    cfg = config_from_args(args, SuiteConfig)
    ws = open_workspace(args)
    suite, out = export_suite(ws, args.out, cfg, device=args.device, on_progress=sink)
    lines = [f"suite written to {out}: {len(suite.scenarios)} failure scenario(s), {len(suite):,} samples"
             + (f", {len(suite.test_images):,} test images" if suite.has_test else "")]
    for s in suite.scenarios:
        lines.append(f"  {s.description}")
    lines.append(f"check a model with: python -m defuse check --suite {out} --classifier MODEL")
    return "\n".join(lines)


register("suite", "freeze the confirmed failure scenarios as a portable regression suite", _suite_args, _suite)


# --- check -----------------------------------------------------------------------------------------------
def _check_args(p):
    p.add_argument("--suite", required=True, help="a suite folder made by `defuse suite`")
    p.add_argument("--classifier", required=True, help="the model to check (.safetensors + .json sidecar, ...)")
    p.add_argument("--baseline", default=None,
                   help="a model to count flips against, or 'original' (the suite's stored predictions)")
    p.add_argument("--architecture", default=None, help="built-in network for bare weights: paper-cnn, resnet18")
    p.add_argument("--min-accuracy", type=float, default=None, help="fail when a scenario's accuracy is below this")
    p.add_argument("--min-test-accuracy", type=float, default=None, help="fail when test accuracy is below this")
    p.add_argument("--max-negative-flips", type=int, default=None, help="fail with more negative flips than this")
    p.add_argument("--labels", choices=sorted(LABEL_MODES), default="scenario",
                   help="score against the scenario labels (default) or the reviewer's per-sample labels; the "
                        "latter is not an independent grade of a model corrected with --failure-labels reviewer, "
                        "which learnt from those same labels")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--json", dest="json_out", default=None, help="also write the result as JSON to this file")


_check_args.needs_workspace = False


def _model(path: str, suite, architecture):
    return load_classifier(path, architecture=architecture, arch_kwargs=suite.geometry)[0]


def _check(args, sink):
    thresholds = Thresholds(min_accuracy=args.min_accuracy, min_test_accuracy=args.min_test_accuracy,
                            max_negative_flips=args.max_negative_flips)
    suite = read_suite(args.suite)
    model = _model(args.classifier, suite, args.architecture)
    baseline = args.baseline if args.baseline in (None, "original") else _model(args.baseline, suite,
                                                                                args.architecture)
    device = "cpu" if args.device == "auto" else args.device  # a check is small: the CPU, unless asked
    result = check_model(suite, model, baseline=baseline, labels=args.labels, thresholds=thresholds,
                         batch_size=args.batch_size, device=device)
    if args.json_out:
        atomic.write_json(Path(args.json_out), {"suite": str(args.suite), "classifier": args.classifier,
                                                "baseline": args.baseline, **result.to_dict()})
    text = check_report(result, suite_dir=args.suite, classifier=args.classifier, baseline=args.baseline)
    return text if result.passed else Failed(text)


def _pct(v) -> str:
    return "–" if v is None else f"{v:.1%}"


def check_report(r: CheckResult, *, suite_dir, classifier, baseline=None) -> str:
    """The check's result as a table for people; the last line says PASSED or FAILED and why."""
    flips = r.negative_flips is not None
    head = f"{'scenario':<9} {'label':>5} {'n':>6} {'accuracy':>9} {'original':>9}"
    head += f" {'baseline':>9} {'-flips':>7} {'+flips':>7}" if flips else ""
    lines = [f"suite {suite_dir}, classifier {classifier}" + (f", baseline {baseline}" if baseline else ""),
             f"labels: {LABEL_MODES[r.labels]}", head]
    for s in r.scenarios:
        row = f"#{s.id:<8} {s.label:>5} {s.n:>6} {_pct(s.accuracy):>9} {_pct(s.original_accuracy):>9}"
        row += f" {_pct(s.baseline_accuracy):>9} {s.negative_flips:>7} {s.positive_flips:>7}" if flips else ""
        lines.append(row)
    lines.append(f"mean scenario accuracy {_pct(r.mean_scenario_accuracy)}")
    if r.test_accuracy is not None:
        base = f" (baseline {_pct(r.baseline_test_accuracy)})" if r.baseline_test_accuracy is not None else ""
        lines.append(f"test accuracy {_pct(r.test_accuracy)}{base}")
    if flips:
        lines.append(f"negative flips {r.negative_flips} (baseline right, this model wrong), "
                     f"positive flips {r.positive_flips}")
    lines.append("PASSED" if r.passed else "FAILED: " + "; ".join(r.failures))
    return "\n".join(lines)


register("check", "check a classifier against a regression suite (per-scenario accuracy, flips); CI-ready",
         _check_args, _check)


# --- select-export: the Explore page's selection export, headless --------------------------------------
def _ints(text: str | None, what: str):
    if not text:
        return None
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"--{what} takes comma-separated class or scenario numbers, e.g. 3,5; got {text!r}") from None


def _select_args(p):
    p.add_argument("--method", default="pca", help="the map whose points to select: pca, umap, tsne")
    p.add_argument("--kind", choices=("failure", "train", "all"), default="all", help="failure or training codes")
    p.add_argument("--true-label", default=None, help="keep these true labels, e.g. 6 or 4,9")
    p.add_argument("--prediction", default=None, help="keep these predicted labels")
    p.add_argument("--scenario", default=None, help="keep these scenarios (-1: failures outside any)")
    p.add_argument("--min-confidence", type=float, default=0.0, help="classifier confidence at least this")
    p.add_argument("--max-confidence", type=float, default=1.0, help="classifier confidence at most this")
    p.add_argument("--sort", choices=("margin", "map"), default="margin",
                   help="order: confidence margin, least sure first (default), or the map's order")
    p.add_argument("--out", required=True, help="a .zip (selection.csv + images/*.png) or a .csv (no images)")


def _select_export(args, sink):
    from ..steps import map_points as mp

    kinds = {"failure": ("failure",), "train": ("training image",), "all": None}[args.kind]
    f = mp.PointFilter(kinds=kinds, true_labels=_ints(args.true_label, "true-label"),
                       predictions=_ints(args.prediction, "prediction"), scenarios=_ints(args.scenario, "scenario"),
                       min_confidence=args.min_confidence, max_confidence=args.max_confidence)
    ws = open_workspace(args)
    points = mp.workspace_points(ws, args.method)
    sel = points.take(f.mask(points))
    if args.sort == "margin":
        sel = sel.take(mp.by_margin(sel))
    out = Path(args.out)
    if out.suffix == ".csv":
        atomic.write_text(out, mp.selection_csv(sel))
        return f"selected {len(sel):,} of {len(points):,} points; wrote {out} (one row each)"
    if out.suffix != ".zip":
        raise ValueError(f"--out must end in .zip (CSV + PNGs) or .csv; got {out.name!r}")
    atomic.write_bytes(out, mp.selection_zip(sel, mp.point_images(ws, sel.is_failure, sel.row, device=args.device)))
    return f"selected {len(sel):,} of {len(points):,} points; wrote {out} (selection.csv and {len(sel):,} PNGs)"


register("select-export", "export the Explore map's points that pass filters: CSV of ids, labels, predictions, "
         "confidence, scenario, coordinates, and their images as PNGs", _select_args, _select_export)
