"""The time a training job will take here, measured before it starts, and the warning over 10 minutes."""

import pytest
import torch

from defuse.correct.sweep import CorrectConfig
from defuse.data.datasets import ImageData, Split
from defuse.nets.architectures import PaperCNN
from defuse.nets.train import VAEConfig
from defuse.steps import estimates


@pytest.fixture()
def tiny_project(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    split = lambda k: Split(torch.rand(k, 1, 32, 32, generator=gen), torch.randint(0, 3, (k,), generator=gen))  # noqa: E731
    data = ImageData(split(100), split(10), split(10), ["a", "b", "c"])
    monkeypatch.setattr(estimates, "load_data", lambda ws: data)
    monkeypatch.setattr(estimates, "load_classifier", lambda ws: (PaperCNN(1, 32, 3, width=8), {}))
    torch.set_num_threads(1)
    return None  # the workspace is never read: its data and classifier are the fixtures above


def test_the_vae_estimate_counts_the_recipe_steps_and_measures_a_rate(tiny_project):
    est = estimates.estimate_vae(tiny_project, VAEConfig(epochs=7, batch_size=16, width=8))
    assert est.steps == 7 * 7 and est.steps_per_s > 0 and est.seconds == pytest.approx(49 / est.steps_per_s)


def test_the_sweep_estimate_counts_every_training(tiny_project):
    cfg = CorrectConfig(lambdas=(0.1, 1.0, 10.0), epochs=2, batch_size=32)
    with_baseline = estimates.estimate_correct(tiny_project, cfg)
    alone = estimates.estimate_correct(tiny_project, cfg, baseline=False)
    assert with_baseline.steps == (3 * 2 + 1) * 2 * 4 and alone.steps == (3 + 1) * 2 * 4
    assert "without the baseline (it trains every λ once more)" in with_baseline.shorter
    assert "1 epoch per λ (2 now)" in alone.shorter


def test_only_a_job_over_ten_minutes_is_warned_about_with_what_shortens_it():
    short = estimates.TrainingEstimate("The λ sweep", 600, 1.0, ("fewer λ",))
    long = estimates.TrainingEstimate("The λ sweep", 6000, 4.0, ("fewer λ (17 now; e.g. 0.1, 1, 10)", "1 epoch"))
    assert short.warning() is None
    assert long.warning() == ("The λ sweep would take about 25:00 on this machine (6,000 steps at 4 steps/s, "
                              "measured just now). Shorter: fewer λ (17 now; e.g. 0.1, 1, 10); 1 epoch.")
