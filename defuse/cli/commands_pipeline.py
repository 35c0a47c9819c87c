"""CLI subcommands of the Defuse steps: identify, distill, sample, label (correct/export/run: commands_correct)."""

from __future__ import annotations

from dataclasses import fields

from ..distill.scenarios import DistillConfig
from ..distill.tau import TAU_AUTO
from ..identify.search import IdentifyConfig
from ..identify.verification import VERIFY_RULES
from ..label import provenance
from ..label.reviewer import ReviewerConfig
from ..nets.vae_recipe import ACCEPT_FLAG
from ..runtime import atomic
from ..runtime.progress import RunOptions
from ..runtime.settings import declared
from ..steps.distill import default_tau, distill_step, load_scenarios
from ..steps.identify import check_identify_inputs, identify_step
from ..steps.label import check_review_inputs, decided_scenarios, get_reviewer, label_store, review_step
from ..steps.project import load_classifier, load_vae
from ..workspace import Workspace
from .args import CommandTable, add_setting_flags, config_from_args, open_workspace, setting_values
from .backend_args import add_backend_args, backend_from_args

COMMANDS = CommandTable()  # this module's commands; defuse.cli.main lists the tables
register = COMMANDS.register


# --- the automatic reviewer, shared by identify, label and correct ------------------------------------------
def add_reviewer_args(p, help_text: str) -> None:
    p.add_argument("--reviewer", default=None, help=help_text)
    add_setting_flags(p, ReviewerConfig, config=False)     # --reviewer-members, --reviewer-epochs


def reviewer_config_from_args(args) -> ReviewerConfig | None:
    """The reviewer's settings the flags ask for, checked before any work; None: reuse the project's reviewer,
    whatever its settings."""
    # only the reviewer's own flags: the command's --seed (the review stream's) is not the reviewer's seed
    own = {name for name, spec in declared(ReviewerConfig).items() if spec.flag}
    asked = setting_values(args, ReviewerConfig, skip=[f.name for f in fields(ReviewerConfig) if f.name not in own])
    return ReviewerConfig(**asked) if asked else None


def reviewer_from_args(ws: Workspace, args, sink):
    if not args.reviewer:
        return None
    return get_reviewer(ws, args.reviewer, cfg=reviewer_config_from_args(args), device=args.device, on_progress=sink)


# --- identify -----------------------------------------------------------------------------------------
def _identify_args(p):
    add_setting_flags(p, IdentifyConfig)
    p.add_argument(ACCEPT_FLAG, action="store_true", help="search even with a β-VAE whose reconstructions the "
                   "classifier recognises far less often than the originals (refused otherwise)")
    add_reviewer_args(p, "'auto' or a checkpoint: measure how many finds are real")
    add_backend_args(p)
    p.add_argument("--verify", nargs="?", const="reviewer", default=False, choices=VERIFY_RULES,
                   help="keep only the finds the reviewer reads as the source's class (needs --reviewer): by its "
                        "vote ('reviewer', the default) or where every member reads it so confidently ('clear')")


def _identify(args, sink):
    cfg, backend = config_from_args(args, IdentifyConfig), backend_from_args(args)
    reviewer_config_from_args(args)  # a bad reviewer flag is refused before any work
    ws = open_workspace(args)
    # every refusal before the reviewer trains (minutes): the models, the fidelity gate, --verify's reviewer
    check_identify_inputs(ws, verify=args.verify, has_reviewer=bool(args.reviewer),
                          accept_low_fidelity=args.accept_low_fidelity)
    reviewer = reviewer_from_args(ws, args, sink)
    m = identify_step(ws, cfg, run=RunOptions(device=args.device, on_progress=sink, backend=backend),
                      reviewer=reviewer,
                      accept_low_fidelity=args.accept_low_fidelity, verify=args.verify)["metrics"]
    return _identify_summary(m)


def _identify_summary(m: dict) -> str:
    lines = [f"found {m['n_failures']} unrestricted adversarial examples"]
    for key, label in (("images_per_s", "images/s"), ("acc_reconstruction", "classifier accuracy on reconstructions"),
                       ("share_sources_with_failure", "share of images with a failure"),
                       ("reviewer_real_share", "share judged real by the reviewer"),
                       ("n_before_verification", "finds before the verification filter")):
        if key in m:
            lines.append(f"  {label}: {m[key]:.3g}")
    return "\n".join(lines)


register("identify", "find unrestricted adversarial examples by perturbing β-VAE codes (§3.2.1)",
         _identify_args, _identify)


# --- distill ------------------------------------------------------------------------------------------
def _distill_args(p):
    add_setting_flags(p, DistillConfig)


def _distill(args, sink):
    cfg = config_from_args(args, DistillConfig, device=args.device, threads=args.threads)  # process settings
    m = distill_step(open_workspace(args), cfg, on_progress=sink)["metrics"]
    note = "" if m["converged"] else " (did not converge: raise --max-iter)"
    if m.get("reg_covar", cfg.reg_covar) > cfg.reg_covar:
        note += f" (singular covariances: reg_covar raised from {cfg.reg_covar:g} to {m['reg_covar']:g})"
    if m["n_scenarios"] == 0:
        note += (f"\nno mixture component weighs more than ε={cfg.weight_threshold}: there is nothing to label. "
                 "Lower --weight-threshold, or find more failures (identify with a larger --subset or Q).")
    return f"{m['n_scenarios']} failure scenarios from {m['n_fitted']} codes in {m['fit_seconds']:.1f} s{note}"


register("distill", "cluster the failures into failure scenarios (Dirichlet-process GMM, §3.2.2)",
         _distill_args, _distill)


# --- sample ---------------------------------------------------------------------------------------------
def _sample_args(p):
    p.add_argument("--scenario", type=int, required=True, help="scenario row (0 = heaviest)")
    p.add_argument("--n", type=int, default=32, help="samples to draw")
    p.add_argument("--tau", type=float, default=None, help="τ, sample diversity (default: 0.5, or 0.01 for SVHN/signs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="PNG file for the grid (the classifier's label on each)")


def _sample(args, sink):
    from ..data.render import image_grid
    from ..distill.sampling import ReviewSamples

    ws = open_workspace(args)
    scenarios = load_scenarios(ws)
    if not 0 <= args.scenario < len(scenarios):
        raise ValueError(f"--scenario must be in 0..{len(scenarios) - 1}; got {args.scenario}")
    clf, vae = load_classifier(ws)[0], load_vae(ws)[0]
    j = args.scenario
    s = ReviewSamples(vae, clf, scenarios, tau=args.tau or default_tau(ws), seed=args.seed).render(
        j, args.n, device=args.device)
    image_grid(s.images, captions=[str(int(p)) for p in s.predictions]).save(args.out)
    return f"wrote {args.n} samples of scenario {j} to {args.out}"


register("sample", "decode samples of one failure scenario into an image grid", _sample_args, _sample)


def tau_or_auto(text: str):
    """``--tau``: a number, or 'auto' (τ per scenario, chosen by the reviewer)."""
    if text.strip().lower() == TAU_AUTO:
        return TAU_AUTO
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--tau must be a number > 0 or 'auto'; got {text!r}") from None


# --- label -----------------------------------------------------------------------------------------------
def _label_args(p):
    add_reviewer_args(p, "'auto' (train/reuse the reference ensemble) or a checkpoint")
    p.add_argument("--tau", type=tau_or_auto, default=None,
                   help="one τ for every scenario; 'auto': the reviewer first chooses τ per scenario, the widest at "
                        "which it reads 90%% of a scenario's samples as its label (default: the project's τ)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--import", dest="import_csv", default=None, help="import decisions from CSV")
    p.add_argument("--export", dest="export_csv", default=None, help="export all decisions to CSV")
    p.add_argument("--scenario", type=int, default=None, help="record one decision for this scenario")
    p.add_argument("--failure", type=int, default=None, metavar="LABEL", help="it is a failure; its true label")
    p.add_argument("--not-failure", action="store_true", help="it is not a failure")
    p.add_argument("--annotator", default="cli")
    p.add_argument("--summary-json", default=None, metavar="OUT",
                   help="write each scenario's decision, label, decided_by (human or reviewer) and its votes")


def _label(args, sink):
    reviewer_config_from_args(args)  # a bad reviewer flag is refused before any work
    ws, lines = open_workspace(args), []
    if args.import_csv:
        with label_store(ws) as store:
            lines.append(f"imported {store.from_csv(args.import_csv)} decisions")
    if args.scenario is not None:
        if (args.failure is None) == (not args.not_failure):
            raise ValueError("with --scenario, say either --failure LABEL or --not-failure")
        with label_store(ws) as store:
            store.record(args.scenario, args.annotator, is_failure=args.failure is not None, label=args.failure)
        lines.append(f"recorded scenario {args.scenario}")
    if args.reviewer:
        check_review_inputs(ws)  # before the reviewer trains
        reviewer = reviewer_from_args(ws, args, sink)
        review_step(ws, reviewer, tau=args.tau, seed=args.seed, device=args.device, on_progress=sink)
    tau = None if args.tau == TAU_AUTO else args.tau
    decided = decided_scenarios(ws, tau=tau, seed=args.seed, device=args.device)
    failing = {j: s.verdict for j, s in decided.items() if s.verdict.is_failure}
    lines.append(f"{len(decided)} scenarios reviewed, {len(failing)} failure scenarios: "
                 + ", ".join(f"#{j}→{v.label}" for j, v in failing.items()))
    if args.reviewer:
        lines.append(provenance.filled_by_reviewer(decided))
    lines += [f"conflict on scenario #{j}: {c}" for j, s in decided.items() for c in s.conflicts]
    if args.summary_json:
        atomic.write_json(args.summary_json, provenance.summary(decided))
        lines.append(f"wrote each scenario's decision to {args.summary_json}")
    if args.export_csv:
        with label_store(ws) as store:
            store.to_csv(args.export_csv)
        lines.append(f"exported decisions to {args.export_csv}")
    return "\n".join(lines)


register("label", "record, import/export or automatically review scenario labels", _label_args, _label)
