"""The automatic reviewer's settings, each declared once (:mod:`defuse.runtime.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..nets.config import OPTIMIZER_NAMES
from ..runtime.settings import Setting, check_settings, setting
from .verdicts import PAPER_RHO

ARCHITECTURE_NAMES = ("paper-cnn", "paper-cnn-wide", "resnet18")  # the keys of defuse.label.reviewer.ARCHITECTURES
MAX_SEED = 2**63 - 1


def _annotator_name(name: str) -> bool:
    return 0 < len(name.strip()) <= 100


@dataclass(frozen=True)
class ReviewerConfig:
    """The reviewer ensemble: member i is ``architectures[i % len]`` trained with seed ``seed + i``.

    Only ``members`` and ``epochs`` have CLI flags (``--reviewer-members``, ``--reviewer-epochs``, beside
    ``--reviewer auto``); the app trains the default ensemble."""

    # the paper has 5 workers per image; 3 networks keep CPUs quick
    members: int = setting(3, low=1, high=100, cli="reviewer_members",
                           help="networks in the 'auto' ensemble (unset: reuse the project's reviewer)")
    architectures: tuple = setting(("paper-cnn", "paper-cnn-wide"), item=Setting(kind=str, choices=ARCHITECTURE_NAMES),
                                   valid=bool, flag=False, allowed=f"a non-empty list of {list(ARCHITECTURE_NAMES)}",
                                   help="the members' networks, in turn")
    # longer than the debugged classifier's 5 (appendix B.2)
    epochs: int = setting(8, low=1, high=10_000, cli="reviewer_epochs",
                          help="training epochs of each member (unset: reuse the project's reviewer)")
    batch_size: int = setting(128, low=1, high=1 << 20, flag=False, help="images per step")
    optimizer: str = setting("adam", choices=OPTIMIZER_NAMES, flag=False, help="the members' optimiser")
    lr: float = setting(1e-3, low=0.0, low_open=True, high=1e3, flag=False, help="learning rate")
    seed: int = setting(1000, low=0, high=MAX_SEED, flag=False, help="member i's seed is seed + i (away from the "
                        "classifier's seeds)")
    samples_per_scenario: int = setting(10, low=1, high=1 << 20, paper=10, flag=False,
                                        help="Q, reviewed samples per scenario (§4.1)")
    rho: float = setting(PAPER_RHO, low=0.0, high=1.0, high_open=True, paper=PAPER_RHO, label="ρ", flag=False,
                         allowed=f"a share in [0, 1) (the paper: {PAPER_RHO})",
                         help="ρ: a failure scenario when more than this share of the samples disagree")
    name: str = setting("auto-reviewer", valid=_annotator_name, flag=False,
                        allowed="a non-empty annotator name of <= 100 characters",
                        help="the annotator name in the label store")
    # One more member, trained like the others with its own seed, that votes on nothing: it grades the
    # correction (fix rate and collateral, defuse.correct.two_sided) as a reader that labelled no sample.
    grader: bool = setting(True, flag=False, help="train one more member that votes on nothing and grades the "
                           "correction")

    def __post_init__(self):
        check_settings(self)
