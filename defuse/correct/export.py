"""Export: the corrected classifier as a checkpoint the rest of the world can load, plus a model card.

The checkpoint reuses :func:`defuse.nets.checkpoints.save_model` with the original network's
architecture and arguments, so ``load_model`` rebuilds it. A classifier that came as TorchScript
(or ``torch.export``) is also written in that format, and its sidecar points there, since such a
network cannot be rebuilt from a name. The model card (JSON + Markdown) says what was fixed, with
which λ and rule, and what it cost: before / control / after / baseline accuracies.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .. import __version__
from ..data.datasets import DatasetSpec, ImageData, describe
from ..nets import trust
from ..nets.checkpoints import save_model
from ..nets.code_models import WRITERS
from ..runtime import atomic
from .headline import regression_note, two_sided_headline
from .sweep import Sweep
from .two_sided import fmt_share

CARD_NAME = "model-card"  # model-card.json and model-card.md beside the checkpoint
CARD_METRICS = ("train_acc", "val_acc", "test_acc", "failure_val_acc", "failure_test_acc",
                "failure_test_acc_reviewer", "failure_test_acc_per_scenario")


def _dataset_dict(dataset) -> dict:
    if isinstance(dataset, ImageData):
        return describe(dataset)
    if isinstance(dataset, DatasetSpec):
        return dataset.to_dict()
    return dict(dataset or {})


def _example_input(meta: dict, sweep: Sweep, example: Optional[torch.Tensor]) -> torch.Tensor:
    if example is not None:
        return example[:1].float()
    shape = sweep.config.get("input_shape")  # (C, H, W) of the images the sweep fine-tuned on
    if not shape:
        kw = meta.get("arch_kwargs", {})
        if "channels" not in kw or "image_size" not in kw:
            raise ValueError("tracing needs an input shape: pass example_input (1, C, H, W)")
        shape = [kw["channels"], kw["image_size"], kw["image_size"]]
    return torch.rand(1, *map(int, shape))


def _pick(row: Optional[dict]) -> Optional[dict]:
    if row is None:
        return None
    return {"lambda": row.get("lambda"), "epoch": row.get("epoch"), **{k: row.get(k) for k in CARD_METRICS}}


@dataclass(frozen=True)
class CorrectionRecord:
    """What a corrected model came from, as its checkpoint and model card tell it."""

    sweep: Sweep                        # the sweep the model came from (its chosen λ, rule, metrics)
    scenarios: list                     # one dict per fixed scenario, e.g. ``[s.summary() for s in failure_sets]``
    dataset: object                     # :class:`ImageData`, :class:`DatasetSpec` or a dict describing the data
    provenance: Optional[dict] = None   # fingerprints of the classifier, VAE, labels and data it came from
    two_sided: Optional[dict] = None    # fix rate and collateral of the chosen λ (defuse.correct.two_sided)


def export_corrected(model: nn.Module, meta: dict, out_dir, record: CorrectionRecord, *, name: str,
                     example_input: Optional[torch.Tensor] = None) -> dict:
    """Write ``<name>.safetensors`` + ``<name>.json`` (and ``<name>.pt``/``.pt2`` for external originals)
    and ``model-card.json`` + ``.md`` into ``out_dir``, all atomically; return the card.

    Parameters
    ----------
    model : the corrected classifier, e.g. ``sweep.model()``.
    meta : the original classifier's sidecar (architecture, arch_kwargs, class_names, sha256, ...).
    record : the sweep, the fixed scenarios, the data and the provenance the card reports.
    example_input : (1, C, H, W) images for tracing; default: random of the recorded shape.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file name, got {name!r}")
    if "architecture" not in meta:
        raise ValueError("meta must be the original classifier's sidecar (it lacks 'architecture')")
    out, data, sweep = Path(out_dir), _dataset_dict(record.dataset), record.sweep
    model = model.cpu().eval()
    files = _write_checkpoint(model, meta, out / name, sweep, data, example_input)
    card = {**_card(meta, name, sweep, record.scenarios, data, files), "provenance": dict(record.provenance or {}),
            "two_sided": record.two_sided}
    atomic.write_json(out / f"{CARD_NAME}.json", card)
    atomic.write_text(out / f"{CARD_NAME}.md", card_markdown(card))
    return card


def _write_checkpoint(model, meta, stem: Path, sweep: Sweep, data: dict, example) -> dict:
    """``stem``.safetensors + .json (and the original's own format, where it has one); the files by role."""
    arch, name, out = meta["architecture"], stem.name, stem.parent
    extra = {"corrected_from": {"sha256": meta.get("sha256"), "weights_file": meta.get("weights_file")},
             "correction": {"lambda": sweep.chosen["lambda"], "rule": sweep.chosen["rule"]},
             "dataset": meta.get("dataset", data)}
    metrics = {k: v for k, v in (_pick(sweep.chosen) or {}).items() if k in CARD_METRICS}
    sidecar = save_model(model, stem, kind="classifier", architecture=arch,
                         arch_kwargs=meta.get("arch_kwargs", {}), class_names=meta.get("class_names"),
                         config=meta.get("config"), metrics=metrics, extra=extra)
    files = {"weights": f"{name}.safetensors", "sidecar": f"{name}.json"}
    if arch in WRITERS:
        # load_model opens such a network through its own format: point the sidecar there.
        suffix, write = WRITERS[arch]
        write(model, out / f"{name}{suffix}", _example_input(meta, sweep, example))
        # written here from a network the user trusted: the user's own output, so loading it back is allowed
        trust.trust(out / f"{name}{suffix}", arch)
        sidecar.update(weights_file=f"{name}{suffix}", sha256=atomic.sha256_file(out / f"{name}{suffix}"),
                       state_dict_file=f"{name}.safetensors")
        atomic.write_json(out / f"{name}.json", sidecar)
        files[arch] = f"{name}{suffix}"
    return files


def _card(meta: dict, name: str, sweep: Sweep, scenarios: list, data: dict, files: dict) -> dict:
    cfg = sweep.config
    return {
        "name": name, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "defuse_version": __version__, "data": data,
        "original_model": {"architecture": meta["architecture"], "sha256": meta.get("sha256"),
                           "metrics": meta.get("metrics", {})},
        "class_names": list(meta.get("class_names") or data.get("class_names") or []),
        "scenarios": list(scenarios),
        "correction": {"lambda": sweep.chosen["lambda"], "rule": sweep.chosen["rule"],
                       "within_tolerance": sweep.chosen.get("within_tolerance"),
                       **{k: cfg.get(k) for k in ("tolerance", "tie_standard_errors", "failure_labels",
                                                  "per_lambda_epoch_choice", "lambdas", "epochs", "batch_size",
                                                  "lr", "seed")}},
        "metrics": {"before": _pick(sweep.before), "control": _pick(sweep.control), "after": _pick(sweep.chosen),
                    "baseline": _pick(sweep.baseline_chosen)},
        "files": files,
        "regression_note": regression_note(sweep.chosen, sweep.control, sweep.baseline_chosen),
    }


RULE_WORDS = {
    "tolerance": "the highest failure-scenario validation accuracy among the λ whose validation accuracy "
                 "stays within {tol:g} percentage points of the λ=0 control (fine-tuning without failure samples)",
    "paper": "the highest validation accuracy over the λ sweep (the paper's rule, §4.1)",
}


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def card_markdown(card: dict) -> str:
    """The model card as Markdown, for people."""
    return "\n".join(_md_data(card)[:1] + _md_fixes(card) + _md_data(card)[1:] + _md_correction(card)
                     + _md_results(card["metrics"])) + "\n"


def _md_fixes(card: dict) -> list:
    """The card leads with what the correction fixed and what it broke, graded by a model that labelled none."""
    t = card.get("two_sided")
    words = two_sided_headline(t)
    if words is None:
        return ["", "## Does it fix the failures?", "", "Not graded: fixes and damage are graded for the sweep's "
                "chosen λ by the automatic reviewer's grader (a member that labels nothing); this export has no such "
                "grade (no reviewer in the correction, a reviewer trained before it had a grader — train it again with "
                "`label --reviewer auto --reviewer-members 3` — or another λ exported)."]
    rows = [f"| {title} | {fmt_share(t['models'][k]['fix_rate'])} | {fmt_share(t['models'][k]['collateral'])} |"
            for k, title in (("before", "before correction"), ("control", "control (λ=0)"),
                             ("baseline", "baseline (raw adversarial examples)"), ("chosen", "after correction"))
            if t["models"].get(k)]
    return ["", "## Does it fix the failures?", "", words, "",
            "| model | fix rate (of real failures) | collateral (of what was right) |", "|---|---|---|", *rows]


def _md_data(card: dict) -> list:
    names, data = card["class_names"], card["data"]
    label = (lambda c: f"{c} ({names[c]})" if 0 <= c < len(names) and str(names[c]) != str(c)  # noqa: E731
             else str(c))  # names "0".."9" would read "6 (6)"
    lines = [f"# Model card: {card['name']}", "", f"Corrected with Defuse {card['defuse_version']} on "
             f"{card['created']}.", "", "## Data", "", f"- source: {data.get('source', 'unknown')}"]
    if data.get("fingerprint"):  # a dash said nothing: the line is left out where none was recorded
        lines.append(f"- fingerprint: {data['fingerprint']}")
    if data.get("splits"):
        lines.append("- images: " + ", ".join(f"{k} {v['count']}" for k, v in data["splits"].items()))
    prov = card.get("provenance") or {}
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in prov.items() if v and k != "dataset_fingerprint"]
    lines += ["", "## Failure scenarios fixed", "", "| scenario | label | decided by | fine-tune | val | test |",
              "|---|---|---|---|---|---|"]
    return lines + [f"| {s['scenario_id']} | {label(int(s['label']))} | {_decided_by(s)} | {s.get('n_finetune', '–')} "
                    f"| {s.get('n_val', '–')} | {s.get('n_test', '–')} |" for s in card["scenarios"]]


def _decided_by(s: dict) -> str:
    """Who labeled a scenario: its annotators' names, or the automatic reviewer with its fingerprint."""
    if s.get("decided_by") == "human":
        return "people: " + ", ".join(s.get("annotators") or [])
    if s.get("decided_by") == "reviewer":
        return "automatic reviewer: " + ", ".join(s.get("reviewers") or [])
    return "–"


def _md_correction(card: dict) -> list:
    corr = card["correction"]
    if corr["rule"] in RULE_WORDS:
        words = RULE_WORDS[corr["rule"]].format(tol=100 * (corr["tolerance"] or 0))
        chosen = f"chosen by the rule “{corr['rule']}”: {words}"
    else:
        chosen = str(corr["rule"])  # e.g. picked by hand
    per_sample = corr.get("failure_labels") == "reviewer"
    d_f = ("each failure sample labeled by the automatic reviewer (λ chosen on those per-sample labels)"
           if per_sample else "each failure scenario's samples labeled with the scenario's label (the paper)")
    warning = [f"**Warning:** {card['regression_note']}", ""] if card.get("regression_note") else []
    return ["", "## Correction", "", f"λ = {corr['lambda']:g}, {chosen}.", "", *warning,
            f"Fine-tuning: {corr['epochs']} epoch(s) per λ, Adam lr {corr['lr']:g}, batch {corr['batch_size']}, "
            f"on L(D) + λ·CE(D_f), D_f: {d_f}."]


def _md_results(m: dict) -> list:
    lines = ["", "## Results", "", "| model | λ | train | val | test | failure-scenario val | failure-scenario test |",
             "|---|---|---|---|---|---|---|"]
    rows = (("before correction", m["before"]), ("control (λ=0, no failure samples)", m["control"]),
            ("after correction", m["after"]), ("baseline: fine-tuned on the raw adversarial examples", m["baseline"]))
    for title, r in rows:
        if r is not None:
            lam = "–" if r["lambda"] is None else f"{r['lambda']:g}"
            lines.append(f"| {title} | {lam} | {_pct(r['train_acc'])} | {_pct(r['val_acc'])} | {_pct(r['test_acc'])} "
                         f"| {_pct(r['failure_val_acc'])} | {_pct(r['failure_test_acc'])} |")
    if m["after"].get("failure_test_acc_reviewer") is not None:
        lines += ["", "Against per-sample reviewer labels (stricter), after correction: "
                      f"{_pct(m['after']['failure_test_acc_reviewer'])} on the failure-scenario test samples."]
    return lines
