"""The automatic reviewer: a reference classifier ensemble standing in for the human annotators.

The paper (§4.1) has 5 crowd workers label each of Q = 10 samples per failure scenario; a scenario is a
failure scenario when more than ρ of the samples' majority labels disagree with the classifier, and its
label is the majority label. Here the "annotators" are the members of an ensemble trained on the full
training split (every class, none of the debugged classifier's planted flaw), with other seeds and more
epochs than the classifier. Its decisions land in the :class:`~defuse.label.store.LabelStore` under its own
annotator name, beside any human's, so people can overrule it. Automatic review is future work in the
paper; treat its verdicts as a first pass.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.datasets import ImageData
from ..distill.sampling import ReviewSamples
from ..nets import checkpoints
from ..nets.architectures import build_classifier
from ..nets.inference import on_device
from ..nets.train import TrainConfig, train_classifier
from ..runtime import atomic
from ..runtime.devices import resolve_device
from ..runtime.progress import ProgressFn, ProgressReporter
from ..runtime.settings import check_value, declared
from ..runtime.words import option
from .config import ARCHITECTURE_NAMES, ReviewerConfig  # noqa: F401  (re-exported: its old home)
from .provenance import reviewer_fingerprint
from .store import LabelStore
from .verdicts import PAPER_RHO, Verdict, mean_se, offer_mixed, sample_verdict

# name -> (built-in network, extra constructor kwargs recorded in the member's sidecar)
ARCHITECTURES = {"paper-cnn": ("paper-cnn", {}), "paper-cnn-wide": ("paper-cnn", {"width": 128}),
                 "resnet18": ("resnet18", {})}
REVIEWER_FILE = "reviewer.json"
FORMAT_VERSION = 1


def _check_settings(name, rho, samples_per_scenario) -> None:
    """The reviewer's own settings, checked by their declarations in :class:`ReviewerConfig`."""
    specs = declared(ReviewerConfig)
    for field, value in (("name", name), ("rho", rho), ("samples_per_scenario", samples_per_scenario)):
        check_value(field, value, specs[field])


GRADER_SEED_OFFSET = 500  # the grader's seed: away from the members' seed + i
CONFIDENT = 0.9  # a member's top probability at which its reading counts as confident (D_f's filter)


class ReviewerPrediction(NamedTuple):
    labels: np.ndarray     # (n,) int64: the members' majority vote (a tie goes to the higher mean probability)
    agreement: np.ndarray  # (n,) float32: share of members voting for that label (Fig. 6)
    probs: np.ndarray      # (n, C) float32: the members' mean softmax


def _member_meta(meta: dict) -> dict:
    return {"architecture": meta.get("architecture") or "",
            **{k: dict(meta.get(k) or {}) for k in ("arch_kwargs", "config", "metrics")}}


def _check_images(images) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.ndim != 4 or not x.is_floating_point() or len(x) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) float tensor in [0, 1]; "
                         f"got shape {tuple(x.shape)}, dtype {x.dtype}")
    return x.float()


class Reviewer:
    """An ensemble of classifiers that reviews images like a panel of annotators.

    Parameters
    ----------
    members : the networks; each takes images (N, C, H, W) in [0, 1] and returns logits (N, C).
    member_meta : per member, ``architecture``, ``arch_kwargs``, ``config``, ``metrics`` (as in a sidecar).
    """

    def __init__(self, members: list, member_meta: list, *, class_names: list | None = None,
                 name: str = "auto-reviewer", rho: float = PAPER_RHO, samples_per_scenario: int = 10,
                 config: dict | None = None):
        if not members or len(members) != len(member_meta):
            raise ValueError(f"a reviewer needs >= 1 member and one meta dict each; got {len(members)} members "
                             f"and {len(member_meta)} meta dicts")
        _check_settings(name, rho, samples_per_scenario)
        self.members, self.member_meta = list(members), [_member_meta(m) for m in member_meta]
        self.class_names, self.name, self.rho = list(class_names or []), name.strip(), float(rho)
        self.samples_per_scenario, self.config = samples_per_scenario, dict(config or {})
        # (network, meta) of the member that votes on nothing (ReviewerConfig.grader), or None: with_grader
        self.grader = None

    def with_grader(self, grader: tuple | None) -> Reviewer:
        """This reviewer with ``grader`` = (network, meta), a member that votes on nothing (or None); returns it."""
        self.grader = None if grader is None else (grader[0], _member_meta(grader[1]))
        return self

    def __len__(self) -> int:
        return len(self.members)

    def member_probs(self, images, *, device="auto", batch_size: int = 512) -> torch.Tensor:
        """Every voting member's softmax (M, N, C) on ``images`` (N, C, H, W) in [0, 1]."""
        x, dev = _check_images(images), resolve_device(device)
        return torch.stack([_member_probs(m, x, dev, batch_size) for m in self.members])

    def agreed(self, images, label: int, *, confident: float = CONFIDENT, device="auto") -> np.ndarray:
        """(N,) bool: every member reads the image as ``label`` with a top probability >= ``confident``."""
        probs = self.member_probs(images, device=device)
        conf, labels = probs.max(2)
        return ((labels == int(label)) & (conf >= confident)).all(0).numpy()

    def clear_labels(self, images, *, confident: float = CONFIDENT, device="auto") -> np.ndarray:
        """(N,) int64: the label every member reads with a top probability >= ``confident``, -1 where they
        do not all agree confidently (unclear: such samples are counted, never graded)."""
        conf, labels = self.member_probs(images, device=device).max(2)
        clear = (labels == labels[0]).all(0) & (conf >= confident).all(0)
        return torch.where(clear, labels[0], -1).numpy().astype(np.int64)

    def grade(self, images, *, device="auto", batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """The grader's label (N,) int64 and confidence (N,) float32; refused for a reviewer without one."""
        if self.grader is None:
            raise ValueError("this reviewer has no grader (a member that votes on nothing): train the project's "
                             "reviewer again (`python -m defuse label -w W --reviewer auto --reviewer-members 3`)")
        x, dev = _check_images(images), resolve_device(device)
        conf, labels = _member_probs(self.grader[0], x, dev, batch_size).max(1)
        return labels.numpy().astype(np.int64), conf.numpy().astype(np.float32)

    def predict(self, images, *, device="auto", batch_size: int = 512) -> ReviewerPrediction:
        """Label ``images`` (N, C, H, W) in [0, 1] by the members' vote."""
        probs = self.member_probs(images, device=device, batch_size=batch_size)  # (M, N, C)
        mean = probs.mean(0)
        counts = F.one_hot(probs.argmax(2), probs.shape[2]).sum(0).float()  # (N, C) votes
        labels = (counts + 0.5 * mean).argmax(1)  # 0.5 * a probability < one vote: it only breaks ties
        agreement = counts.gather(1, labels[:, None])[:, 0] / len(self.members)
        return ReviewerPrediction(labels.numpy().astype(np.int64), agreement.numpy().astype(np.float32),
                                  mean.numpy().astype(np.float32))

    def save(self, folder) -> dict:
        """One checkpoint per member plus ``reviewer.json`` listing them; returns that index.

        Member files get a fresh name on every save and ``reviewer.json`` is replaced last, atomically, so a
        crash leaves the previous reviewer readable; files of earlier saves are then removed.
        """
        folder, token = Path(folder), uuid.uuid4().hex[:8]

        def save(model, meta, stem, member):
            if meta["architecture"] in checkpoints.EXTERNAL_FORMATS or not meta["architecture"]:
                raise ValueError(f"member {member} is a {meta['architecture'] or 'bare'} network that a Defuse "
                                 f"checkpoint cannot rebuild; keep using its original file as {option('reviewer')}")
            side = checkpoints.save_model(model, folder / f"{stem}-{token}", kind="classifier",
                                          architecture=meta["architecture"], arch_kwargs=meta["arch_kwargs"],
                                          class_names=self.class_names, config=meta["config"],
                                          metrics=meta["metrics"], extra={"reviewer": self.name, "member": member})
            return {"checkpoint": f"{stem}-{token}.json", "sha256": side["sha256"]}

        entries = [save(model, meta, f"member-{i}", i)
                   for i, (model, meta) in enumerate(zip(self.members, self.member_meta, strict=True))]
        index = {"format_version": FORMAT_VERSION, "kind": "reviewer", "name": self.name, "rho": self.rho,
                 "samples_per_scenario": self.samples_per_scenario, "class_names": self.class_names,
                 "config": self.config, "members": entries}
        if self.grader is not None:
            index["grader"] = save(*self.grader, "member-grader", "grader")
        atomic.write_json(folder / REVIEWER_FILE, index)
        for old in folder.glob("member-*"):
            if f"-{token}." not in old.name:
                old.unlink()
        return index

    @classmethod
    def load(cls, folder) -> Reviewer:
        """Rebuild a reviewer saved by :meth:`save`; checksums are verified."""
        index_path = Path(folder) / REVIEWER_FILE
        if not index_path.is_file():
            raise ValueError(f"{index_path} is missing: {folder} is not a saved reviewer. To review with one "
                             "classifier, use Reviewer.from_classifier_checkpoint (or load_reviewer)")
        index = atomic.read_json(index_path, fix="train or save the reviewer again")
        if index.get("kind") != "reviewer" or not index.get("members"):
            raise ValueError(f"{index_path} is not a reviewer index (kind {index.get('kind')!r}, "
                             f"{len(index.get('members') or [])} members)")
        def load(entry):
            # checksums first, then loading: the index vouches for each sidecar, the sidecar for its weights
            if checkpoints.read_meta(Path(folder) / entry["checkpoint"]).get("sha256") != entry.get("sha256"):
                raise ValueError(f"{entry['checkpoint']} does not match the checksum in {index_path}: a member "
                                 "was replaced. Save the reviewer again.")
            return checkpoints.load_model(Path(folder) / entry["checkpoint"], kind="classifier")

        loaded = [load(entry) for entry in index["members"]]
        return cls([m for m, _ in loaded], [meta for _, meta in loaded], class_names=index.get("class_names"),
                   name=index["name"], rho=index["rho"], samples_per_scenario=index["samples_per_scenario"],
                   config=index.get("config")).with_grader(load(index["grader"]) if index.get("grader") else None)

    @classmethod
    def from_classifier_checkpoint(cls, path, *, name: str = "auto-reviewer", rho: float = PAPER_RHO,
                                   samples_per_scenario: int = 10, architecture: str | None = None,
                                   geometry: dict | None = None, trust_code: bool = False) -> Reviewer:
        """A one-member reviewer from any classifier file :func:`defuse.nets.checkpoints.load_classifier` reads."""
        model, meta = checkpoints.load_classifier(path, architecture=architecture, geometry=geometry,
                                                  trust_code=trust_code)
        return cls([model], [meta], class_names=meta.get("class_names"), name=name, rho=rho,
                   samples_per_scenario=samples_per_scenario, config={"source": str(path)})


def load_reviewer(path, **kwargs) -> Reviewer:
    """``--reviewer PATH``: a saved reviewer folder, or a single classifier checkpoint (``kwargs`` go to
    :meth:`Reviewer.from_classifier_checkpoint`)."""
    if (Path(path) / REVIEWER_FILE).is_file():
        return Reviewer.load(path)
    return Reviewer.from_classifier_checkpoint(path, **kwargs)


@torch.no_grad()
def _member_probs(model: nn.Module, images: torch.Tensor, dev: torch.device, batch_size: int) -> torch.Tensor:
    with on_device(model, dev):
        return torch.cat([torch.softmax(model(images[i:i + batch_size].to(dev)).float(), 1).cpu()
                          for i in range(0, len(images), batch_size)])


def _train_member(data: ImageData, cfg: ReviewerConfig, i: int, device, on_progress) -> tuple[nn.Module, dict]:
    """Member ``i`` (``i == cfg.members``: the grader, with a seed of its own)."""
    base, extra = ARCHITECTURES[cfg.architectures[i % len(cfg.architectures)]]
    seed = cfg.seed + (GRADER_SEED_OFFSET if i == cfg.members else i)
    tcfg = TrainConfig(architecture=base, epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer=cfg.optimizer,
                       lr=cfg.lr, seed=seed)  # class_keep=(): every class, all of its images
    images = data.train.images  # the same input normalisation train_classifier computes
    kwargs = dict(channels=data.channels, image_size=data.image_size, num_classes=data.num_classes,
                  mean=images.mean(dim=(0, 2, 3)).tolist(), std=images.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
    torch.manual_seed(tcfg.seed)  # the member's initialisation follows its seed
    model = build_classifier(base, **kwargs, **extra)
    result = train_classifier(data, tcfg, device=device, on_progress=on_progress, model=model)
    return result.model, {"architecture": base, "arch_kwargs": {**kwargs, **extra}, "config": asdict(tcfg),
                          "metrics": result.metrics}


def train_reviewer(data: ImageData, cfg: ReviewerConfig = ReviewerConfig(), *, device="auto",
                   on_progress: ProgressFn = None) -> Reviewer:
    """Train the reviewer ensemble on ``data.train`` (pass the full training split: every class).

    Progress events (step ``"train-reviewer"``) count optimizer steps over all members.
    """
    steps, networks = cfg.epochs * -(-len(data.train) // cfg.batch_size), cfg.members + int(cfg.grader)
    report = ProgressReporter("train-reviewer", networks * steps, on_progress)
    trained = []
    for i in range(networks):
        def forward(p, i=i):
            report(i * steps + p.done, member=i + 1, **p.metrics)
        trained.append(_train_member(data, cfg, i, device, forward if on_progress else None))
    voters = trained[:cfg.members]
    return Reviewer([m for m, _ in voters], [meta for _, meta in voters], class_names=data.class_names,
                    name=cfg.name, rho=cfg.rho, samples_per_scenario=cfg.samples_per_scenario,
                    config=asdict(cfg)).with_grader(trained[cfg.members] if cfg.grader else None)


def review_scenarios(reviewer: Reviewer, samples: ReviewSamples, store: LabelStore, *, device="auto",
                     on_progress: ProgressFn = None) -> dict[int, Verdict]:
    """Review every failure scenario as the paper's annotators do (§4.1, algorithm 2), with the reviewer's
    own settings: its name as the annotator, its Q samples per scenario (the paper: 10) and its ρ.

    For scenario row j, the first Q of ``samples``, drawn from N(μ_j, τ·Σ_j)
    with the stream ``(seed, j)`` and decoded; the reviewer labels each. Each label is recorded in ``store`` as
    one decision (``sample_index`` 0..Q-1, ``is_failure``: the reviewer's label differs from the classifier's).
    The verdict is :func:`defuse.label.verdicts.sample_verdict`: a failure scenario when more than ρ of the samples
    disagree with the classifier, labelled with the samples' majority; or, when at least
    :data:`~defuse.label.verdicts.MIXED_FAILURE_SHARE` of them do (a mixed scenario), a failure labelled with the
    misread samples' majority (:func:`defuse.label.verdicts.offer_mixed`). Its ``agreement`` is the mean share of
    members voting for each sample's label, ``agreement_se`` its standard error.

    Returns
    -------
    {j: Verdict} for every scenario row j in 0..m-1.
    """
    q, annotator, rho = reviewer.samples_per_scenario, reviewer.name, reviewer.rho  # checked when it was made
    report, out = ProgressReporter("review", len(samples), on_progress), {}
    fingerprint = reviewer_fingerprint(reviewer)  # recorded on each decision: a machine's, which people overrule
    for j in range(len(samples)):
        drawn = samples.render(j, q, device=device)
        pred = reviewer.predict(drawn.images, device=device)
        if pred.probs.shape[1] != drawn.probs.shape[1]:
            raise ValueError(f"the reviewer knows {pred.probs.shape[1]} classes but the classifier "
                             f"{drawn.probs.shape[1]}; train the reviewer on the classifier's data")
        for i, (label, said, share) in enumerate(zip(pred.labels, drawn.predictions, pred.agreement, strict=True)):
            store.record(j, annotator, is_failure=bool(label != said), label=int(label), sample_index=i,
                         note=f"{share:.0%} of {len(reviewer)} reviewer members; classifier said {int(said)}",
                         reviewer=fingerprint)
        labels = {i: [int(label)] for i, label in enumerate(pred.labels)}
        verdict = offer_mixed(sample_verdict(labels, drawn.predictions, rho=rho, scenario=j), labels, drawn.predictions)
        agreement, se = mean_se(pred.agreement)
        out[j] = replace(verdict, agreement=agreement, agreement_se=se)
        report(j + 1, scenario=j, is_failure=verdict.is_failure)
    return out


def label_examples(reviewer: Reviewer, images, *, device="auto", batch_size: int = 512) -> np.ndarray:
    """The reviewer's labels (n,) int64 for raw images, e.g. the unrestricted adversarial examples of the
    paper's baseline (fine-tuning on annotator-labelled examples instead of failure scenarios)."""
    return reviewer.predict(images, device=device, batch_size=batch_size).labels


def reviewer_agreement(reviewer_a: Reviewer, reviewer_b: Reviewer, images, *, device="auto") -> float:
    """Share of ``images`` (N, C, H, W) on which two independent reviewers give the same label (§4.4)."""
    a = reviewer_a.predict(images, device=device).labels
    return float(np.mean(a == reviewer_b.predict(images, device=device).labels))


def agreement_summary(agreement, in_failure_scenario) -> dict[str, dict]:
    """Figure 6: mean ± standard error of the share of members voting for each sample's majority label.

    Parameters
    ----------
    agreement : (n,) shares in [0, 1], e.g. ``Reviewer.predict(images).agreement``.
    in_failure_scenario : (n,) bool, whether each sample belongs to a failure scenario.

    Returns
    -------
    {"failure" | "non_failure" | "combined": {"mean", "se", "n"}}; nan where a group is empty (se: n < 2).
    """
    share, mask = np.asarray(agreement, dtype=float), np.asarray(in_failure_scenario)
    if share.ndim != 1 or mask.shape != share.shape or mask.dtype != bool:
        raise ValueError(f"agreement must be (n,) and in_failure_scenario (n,) bool; got shapes {share.shape}, "
                         f"{mask.shape}, dtype {mask.dtype}")
    if share.size and not ((share >= 0) & (share <= 1)).all():
        raise ValueError(f"agreement must be shares in [0, 1]; got values in [{share.min()}, {share.max()}]")
    groups = {"failure": share[mask], "non_failure": share[~mask], "combined": share}
    summary = {}
    for group, values in groups.items():
        mean, se = mean_se(values)
        summary[group] = {"mean": mean, "se": se, "n": int(values.size)}
    return summary
