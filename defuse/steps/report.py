"""The project's results in the shape of the paper's Figure 4 (``report.json``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

from ..correct.headline import regression_note, two_sided_headline
from ..label.purity import MIXED_BELOW
from ..runtime.words import option
from ..workspace import IDENTIFY_METRICS, REPORT, SWEEP, Workspace
from .purity import workspace_purities


def _get(row: Optional[dict], key: str):
    return None if row is None else row.get(key)


def build_report(ws: Workspace) -> dict:
    """Figure-4 figures of this project: before, control (λ=0), after Defuse, and the UAE-only baseline.

    Failure-scenario accuracy is on the held-out failure *test* samples, against each scenario's label
    (the paper's measure) and, where a reviewer labeled each sample, against those labels (stricter).
    """
    identify = ws.load_json(IDENTIFY_METRICS, default={})
    distill = (ws.step_record("distill") or {}).get("metrics", {})
    sweep = ws.load_json(SWEEP, default={})
    before, control, chosen = sweep.get("before"), sweep.get("control"), sweep.get("chosen")
    baseline = sweep.get("baseline_chosen")
    failure_sets = sweep.get("failure_sets", [])
    report = {
        "dataset": ws.project["dataset"]["source"],
        "n_failures": (ws.step_record("identify") or {}).get("metrics", {}).get("n_failures"),
        "n_scenarios": distill.get("n_scenarios"),
        "n_failure_scenarios": len(failure_sets),
        "failure_scenarios": failure_sets,
        "best_lambda": _get(chosen, "lambda"),
        "selection_rule": _get(chosen, "rule"),
        "baseline_labels": sweep.get("baseline_labels"),
        "identify": {k: identify.get(k) for k in sorted(identify)},
    }
    for name, row in (("before", before), ("control", control), ("after", chosen)):
        report[f"test_acc_{name}"] = _get(row, "test_acc")
        report[f"val_acc_{name}"] = _get(row, "val_acc")
        report[f"failure_acc_{name}"] = _get(row, "failure_test_acc")
        report[f"failure_acc_reviewer_{name}"] = _get(row, "failure_test_acc_reviewer")
    report["baseline_failure_acc"] = _get(baseline, "failure_test_acc")
    report["baseline_failure_acc_reviewer"] = _get(baseline, "failure_test_acc_reviewer")
    report["baseline_test_acc"] = _get(baseline, "test_acc")
    report["baseline_lambda"] = _get(baseline, "lambda")
    report["regression_note"] = regression_note(chosen, control, baseline)
    # the lead figure: fixes and damage apart, graded by the reviewer's grader (a member that labelled nothing)
    report["two_sided"] = sweep.get("two_sided")
    report["two_sided_words"] = two_sided_headline(sweep.get("two_sided"))
    report["failure_sets_left_out"] = sweep.get("failure_sets_left_out") or []
    purities = workspace_purities(ws)
    report["reviewer_purity"] = {str(j): {**asdict(p), "mixed": p.mixed} for j, p in purities.items() if p is not None}
    report["sweep"] = [{k: r.get(k) for k in ("kind", "lambda", "epoch", "val_acc", "test_acc", "failure_val_acc",
                                               "failure_test_acc", "failure_test_acc_reviewer")}
                       for r in sweep.get("best_per_lambda", [])]
    return report


def save_report(ws: Workspace) -> dict:
    report = build_report(ws)
    ws.save_json(REPORT, report)
    return report


def report_markdown(report: dict) -> str:
    """A Figure-4-style table."""
    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}"

    rows = [("Before fine-tuning", "before", report.get("test_acc_before"), report.get("failure_acc_before")),
            ("Control (λ=0, same epochs)", "control", report.get("test_acc_control"),
             report.get("failure_acc_control")),
            ("Unrestricted adversarial examples", "baseline", report.get("baseline_test_acc"),
             report.get("baseline_failure_acc")),
            ("Defuse", "after", report.get("test_acc_after"), report.get("failure_acc_after"))]
    lines = [f"Dataset: {report['dataset']} — {_counts(report)}", "",
             *([f"**Fixes and damage:** {report['two_sided_words']}", ""] if report.get("two_sided_words") else []),
             *([f"**Warning:** {report['regression_note']}", ""] if report.get("regression_note") else []),
             "| | Test | Failure scenario (scenario label) | Failure scenario (per-sample reviewer) |",
             "|---|---|---|---|"]
    for title, key, test, failure in rows:
        strict = report.get("baseline_failure_acc_reviewer" if key == "baseline" else f"failure_acc_reviewer_{key}")
        lines.append(f"| {title} | {pct(test)} | {pct(failure)} | {pct(strict)} |")
    return "\n".join(lines + _purity_lines(report)) + "\n"


def _counts(report: dict) -> str:
    """The run in numbers, leaving out what no step has counted yet (never "None")."""
    parts = [f"{report[k]} {words}" for k, words in (("n_failures", "unrestricted adversarial examples"),
                                                     ("n_scenarios", "scenarios")) if report.get(k) is not None]
    lam = report.get("best_lambda")
    if lam is None:
        return ", ".join(parts + ["no λ chosen yet (the sweep has not run)"])
    rule = f" ({report['selection_rule']})" if report.get("selection_rule") else ""
    return ", ".join(parts + [f"{report.get('n_failure_scenarios')} failure scenarios", f"λ = {lam:g}{rule}"])


def _purity_lines(report: dict) -> list[str]:
    """Each reviewed scenario's purity (the reviewer's per-sample labels); mixed ones named in plain words."""
    purity = report.get("reviewer_purity") or {}
    if not purity:
        return []
    shown = ", ".join(f"#{j} {100 * p['purity']:.0f}%" for j, p in purity.items())
    lines = ["", f"Scenario purity (share of the reviewed samples with the scenario's majority label): {shown}."]
    mixed = [j for j, p in purity.items() if p["mixed"]]
    if mixed:
        lines.append(f"Mixed scenarios (purity below {MIXED_BELOW:.0%}): {', '.join('#' + j for j in mixed)}. "
                     "One label for all their samples teaches wrong labels: prefer per-sample D_f labels "
                     f"({option('failure-labels-reviewer')}).")
    return lines
