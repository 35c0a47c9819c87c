"""The β-VAE's early stop (issue 24): training ends once validation fidelity passes the gate and stops improving."""

import pytest
import torch

from defuse.data.datasets import ImageData, Split
from defuse.nets.early_stop import EarlyStop, FidelityStop
from defuse.nets.train import VAEConfig, train_vae


def _tiny_data(n=48):
    gen = torch.Generator().manual_seed(0)
    split = lambda k: Split(torch.rand(k, 1, 32, 32, generator=gen), torch.randint(0, 3, (k,), generator=gen))  # noqa: E731
    return ImageData(split(n), split(12), split(12), ["a", "b", "c"])


class _Scripted(FidelityStop):
    """A FidelityStop whose reconstructions' accuracy follows a script (originals: 0.9)."""

    def __init__(self, accuracies, cfg, **kw):
        super().__init__(torch.nn.Identity(), _tiny_data(), cfg, **kw)
        self.acc_original_, self.script = 0.9, list(accuracies)

    def _recon_accuracy(self, vae):
        return self.script.pop(0)


CFG = EarlyStop(check_every=10, min_steps=20, patience=2, min_delta=0.005, margin=0.01)


def _feed(stop, steps):
    rows = [{"step": s} for s in steps]
    return [stop(None, row) for row in rows], rows


def test_it_stops_after_patience_checks_without_improvement_once_the_gate_passes():
    # checks at 20, 30, 40, 50, 60: 0.70 fails the gate; 0.86 passes (gap 0.04 <= 0.05 - 0.01); two stale checks
    stop = _Scripted([0.70, 0.86, 0.862, 0.861, 0.99], CFG)
    decisions, rows = _feed(stop, [10, 20, 25, 30, 40, 50, 60])
    assert decisions == [False, False, False, False, False, True, False]
    assert stop.stopped_at_ == 50 and rows[5]["early_stop"] and rows[5]["val_acc_reconstruction"] == 0.861
    assert "val_acc_reconstruction" not in rows[0] and "val_acc_reconstruction" not in rows[2]  # between checks


def test_it_never_stops_while_the_gate_fails_and_observe_only_never_stops():
    stop = _Scripted([0.5] * 6, CFG)
    assert not any(_feed(stop, [20, 30, 40, 50, 60, 70])[0]) and stop.stopped_at_ is None
    watch = _Scripted([0.87] * 4, CFG, observe_only=True)
    assert not any(_feed(watch, [20, 30, 40, 50])[0]) and watch.stopped_at_ == 40


@pytest.mark.parametrize("field, value, message", [
    ("check_every", 0, "check_every must be >= 1, got 0"),
    ("patience", 0, "patience must be >= 1, got 0"),
    ("margin", 0.05, r"min_delta must be in \[0, 1\) and margin in \[0, 0.05\); got 0.005, 0.05"),
])
def test_bad_settings_say_what_is_expected(field, value, message):
    with pytest.raises(ValueError, match=message):
        EarlyStop(**{field: value})


def test_train_vae_ends_where_stop_says_and_records_it():
    torch.set_num_threads(1)
    seen = []

    def stop(vae, row):
        seen.append((vae.training, row["step"]))
        return row["epoch"] == 2

    result = train_vae(_tiny_data(), VAEConfig(epochs=5, batch_size=16, width=8, kl_anneal_steps=4), device="cpu",
                       stop=stop)
    assert [h["epoch"] for h in result.history] == [1, 2] and seen == [(False, 3), (False, 6)]
    assert result.metrics["stopped_early"] is True and result.metrics["steps"] == 6


def test_a_vae_config_says_early_stop_is_a_boolean():
    with pytest.raises(ValueError, match="early_stop must be True or False; got 'yes'"):
        VAEConfig(early_stop="yes")
