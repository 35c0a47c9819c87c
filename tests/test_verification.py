"""The verification filter keeps exactly the UAEs the reviewer reads as the source's class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from defuse.identify.search import Failures
from defuse.identify.verification import keep_verified, reviewer_labels, verify_failures
from defuse.nets.architectures import BetaVAE


def _failures(n: int = 5, k: int = 4) -> Failures:
    rng = np.random.default_rng(0)
    return Failures(latents=rng.normal(size=(n, k)).astype(np.float32), source_index=np.array([0, 0, 1, 2, 2][:n]),
                    true_label=np.array([1, 2, 3, 0, 1][:n]), pred_label=np.array([0, 0, 0, 1, 0][:n]),
                    noise_norm=np.ones(n, np.float32), metrics={"n_searched": 3})


def test_keep_verified_by_hand():
    kept = keep_verified(_failures(), labels=np.array([1, 0, 3, 1, 1]))  # rows 0, 2 and 4 read as the source's
    assert kept.true_label.tolist() == [1, 3, 1] and kept.source_index.tolist() == [0, 1, 2]
    assert kept.metrics == {"n_searched": 3, "verified": True, "n_before_verification": 5, "n_verified": 3,
                            "verified_share": 0.6, "sources_before_verification": 3, "sources_verified": 3}
    with pytest.raises(ValueError, match=r"labels must have one entry per failure, shape \(5,\); got \(4,\)"):
        keep_verified(_failures(), labels=np.zeros(4))


class _MeanBrightness(nn.Module):
    """A 'reviewer' whose label is 1 for a bright decode, else 0: predictable on any VAE."""

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        bright = (x.mean(dim=(1, 2, 3)) > self.threshold).float()
        return torch.stack([1 - bright, bright], 1) + 0 * self.dummy


def test_verify_failures_decodes_and_keeps_the_reviewers_confirmations():
    torch.manual_seed(0)
    vae = BetaVAE(channels=1, image_size=32, latent_dim=4, width=8).eval()
    failures = _failures()
    with torch.no_grad():
        brightness = vae.decode(torch.from_numpy(failures.latents)).mean(dim=(1, 2, 3)).numpy()
    reviewer = _MeanBrightness(float(np.median(brightness)))
    labels = reviewer_labels(reviewer, vae, failures.latents, device="cpu", batch_size=2)
    assert labels.tolist() == (brightness > np.median(brightness)).astype(int).tolist()
    kept = verify_failures(failures, vae, reviewer, device="cpu")
    assert kept.metrics["n_verified"] == int((labels == failures.true_label).sum()) == len(kept)


def test_the_filter_without_a_reviewer_says_what_to_pass():
    from defuse.identify.search import IdentifyConfig
    from defuse.steps import identify as pipeline

    with pytest.raises(ValueError, match="the verification filter needs a reviewer: use --reviewer auto"):
        pipeline.identify_step(None, IdentifyConfig(), verify=True)


def test_the_clear_rule_keeps_only_what_the_reader_reads_clearly_as_the_source():
    torch.manual_seed(0)
    vae = BetaVAE(channels=1, image_size=32, latent_dim=4, width=8).eval()
    failures = _failures()
    seen = []

    def read(x):  # a reader clear on rows 0 and 2 (the source's class there), unclear on the rest
        seen.append(tuple(x.shape))
        return np.array([1, -1, 3, -1, -1])

    kept = verify_failures(failures, vae, nn.Identity(), device="cpu", read=read, rule="clear")
    assert seen == [(5, 1, 32, 32)], "one batch of decoded images, not codes"
    assert kept.source_index.tolist() == [0, 1] and kept.true_label.tolist() == [1, 3]
    assert kept.metrics["verify_rule"] == "clear" and kept.metrics["n_verified"] == 2


@pytest.mark.parametrize("verify, rule",
                         [(False, ""), (True, "reviewer"), ("reviewer", "reviewer"), ("clear", "clear")])
def test_verify_rules(verify, rule):
    from defuse.steps.identify import verify_rule
    assert verify_rule(verify) == rule


def test_an_unknown_verify_rule_is_refused():
    from defuse.steps.identify import verify_rule
    with pytest.raises(ValueError, match=r"verify must be one of \['reviewer', 'clear'\]"):
        verify_rule("strict")


def test_identify_step_verifies_by_the_clear_rule_a_subset_of_the_vote(fresh_demo, tmp_path):
    """On the demo project, with two untrained CNNs as the reviewer (their vote names a label for every decode,
    their probabilities stay near uniform): the vote keeps some UAEs, the clear rule none of them, from the
    same search; the step records which rule it used."""
    import shutil

    from defuse.identify.search import IdentifyConfig
    from defuse.label.reviewer import Reviewer
    from defuse.nets.architectures import build_classifier
    from defuse.runtime.progress import RunOptions
    from defuse.steps.identify import identify_step, load_failures
    from defuse.steps.project import load_data
    from defuse.workspace import Workspace

    def ws_size(ws):
        return load_data(ws).image_size

    kept = {}
    for rule in ("reviewer", "clear"):
        root = tmp_path / rule
        shutil.copytree(fresh_demo, root)
        ws = Workspace(root)
        torch.manual_seed(0)
        members = [build_classifier("paper-cnn", channels=1, image_size=ws_size(ws), num_classes=10) for _ in "ab"]
        reviewer = Reviewer(members, [{}, {}])
        record = identify_step(ws, IdentifyConfig(samples_per_image=20, max_per_image=10, subset=48),
                               run=RunOptions(device="cpu"), reviewer=reviewer, verify=rule)
        failures = load_failures(ws)
        assert record["config"]["verify"] == rule and failures.metrics["verify_rule"] == rule
        kept[rule] = failures.metrics
    assert kept["clear"]["n_before_verification"] == kept["reviewer"]["n_before_verification"] > 0
    assert kept["reviewer"]["n_verified"] > 0 and kept["clear"]["n_verified"] == 0
