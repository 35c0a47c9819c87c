"""The GPU-friendly training loops (data resident, no per-step syncs, opt-in compile) train exactly as before."""

import numpy as np
import pytest
import torch

from defuse.data.datasets import ImageData, Split
from defuse.nets.architectures import build_vae
from defuse.nets.train import TrainConfig, VAEConfig, shuffled_batches, train_classifier, train_vae, vae_loss
from defuse.runtime import train_speed


def _tiny_data(n=48):
    gen = torch.Generator().manual_seed(0)
    split = lambda k: Split(torch.rand(k, 1, 32, 32, generator=gen), torch.randint(0, 3, (k,), generator=gen))  # noqa: E731
    return ImageData(split(n), split(12), split(12), ["a", "b", "c"])


def _old_vae_loop(data, cfg):
    """The loop before this change: a host copy per batch and three .item() syncs per step."""
    torch.manual_seed(cfg.seed)
    vae = build_vae(channels=1, image_size=32, latent_dim=cfg.latent_dim, width=cfg.width)
    opt, gen, images, step = torch.optim.Adam(vae.parameters(), lr=cfg.lr), torch.Generator().manual_seed(cfg.seed), \
        data.train.images, 0
    for _ in range(cfg.epochs):
        vae.train()
        sums = np.zeros(3)
        for idx in shuffled_batches(len(images), cfg.batch_size, gen):
            x = images[idx]
            beta = cfg.beta * min(1.0, (step + 1) / cfg.kl_anneal_steps)
            recon, mu, logvar = vae(x)
            loss, rec, kl = vae_loss(recon, x, mu, logvar, beta=beta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += np.array([loss.item(), rec.item(), kl.item()]) * len(idx)
            step += 1
    return vae, sums / len(images)


def test_the_vae_trains_to_the_same_weights_and_losses_as_the_old_loop(monkeypatch):
    monkeypatch.setenv("DEFUSE_TRAIN_PRECISION", "fp32")  # the fp32 loop is the old one, bit for bit
    torch.set_num_threads(1)
    data, cfg = _tiny_data(), VAEConfig(epochs=2, batch_size=16, width=8, kl_anneal_steps=4, train_on="train")
    old, old_losses = _old_vae_loop(data, cfg)
    new = train_vae(data, cfg, device="cpu")
    for (name, a), b in zip(old.state_dict().items(), new.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert new.history[-1]["loss"] == pytest.approx(old_losses[0], rel=1e-6)
    assert new.metrics["steps_per_s"] > 0 and new.metrics["n_images"] == 48


def test_the_classifier_reports_a_finite_epoch_loss_and_its_steps_per_second():
    torch.set_num_threads(1)
    result = train_classifier(_tiny_data(), TrainConfig(epochs=1, batch_size=16), device="cpu")
    assert np.isfinite(result.history[0]["loss"]) and result.history[0]["loss"] > 0
    assert result.metrics["steps_per_s"] > 0


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_both_precisions_train_a_vae_and_a_classifier_that_load_as_plain_fp32_weights(monkeypatch, precision):
    monkeypatch.setenv("DEFUSE_TRAIN_PRECISION", precision)
    torch.set_num_threads(1)
    data = _tiny_data()
    vae = train_vae(data, VAEConfig(epochs=2, batch_size=16, width=8, kl_anneal_steps=4), device="cpu")
    clf = train_classifier(data, TrainConfig(epochs=2, batch_size=16), device="cpu")
    for result in (vae, clf):
        assert result.metrics["train_precision"] == ("bf16 channels_last" if precision == "bf16" else "fp32")
        assert np.isfinite(result.history[-1]["loss"]) and result.history[-1]["loss"] > 0
        weights = result.model.state_dict().values()
        assert all(w.dtype != torch.bfloat16 and w.is_contiguous() for w in weights)
    assert vae.history[-1]["loss"] < vae.history[0]["loss"]


def test_the_training_plan_follows_the_cpu_and_the_setting(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(train_speed, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.delenv("DEFUSE_TRAIN_PRECISION", raising=False)
    assert train_speed.train_plan(cpu) == train_speed.TrainPlan(cpu, "bf16", channels_last=True)
    monkeypatch.setenv("DEFUSE_TRAIN_PRECISION", "fp32")
    assert train_speed.train_plan(cpu) == train_speed.TrainPlan(cpu, "fp32", channels_last=False)
    monkeypatch.setattr(train_speed, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setenv("DEFUSE_TRAIN_PRECISION", "auto")
    assert train_speed.train_plan(cpu).precision == "fp32"
    monkeypatch.setenv("DEFUSE_TRAIN_PRECISION", "fp16")
    with pytest.raises(ValueError, match="DEFUSE_TRAIN_PRECISION must be one of auto, fp32, bf16; got 'fp16'"):
        train_speed.train_plan(cpu)


def test_on_a_cpu_nothing_moves_and_nothing_compiles(monkeypatch):
    t, model, cpu = torch.zeros(3), torch.nn.Linear(2, 2), torch.device("cpu")
    assert train_speed.resident(t, cpu) is t
    monkeypatch.setenv("DEFUSE_COMPILE", "reduce-overhead")
    assert train_speed.compile_mode() == "reduce-overhead"
    assert train_speed.maybe_compile(model, cpu) is model


@pytest.mark.parametrize("value, mode", [("", None), ("0", None), ("1", "default"), ("DEFAULT", "default")])
def test_compile_is_opt_in(monkeypatch, value, mode):
    monkeypatch.setenv("DEFUSE_COMPILE", value)
    assert train_speed.compile_mode() == mode


def test_a_bad_compile_setting_says_what_is_allowed(monkeypatch):
    monkeypatch.setenv("DEFUSE_COMPILE", "max")
    with pytest.raises(ValueError, match="DEFUSE_COMPILE must be one of 0, 1, default, reduce-overhead"):
        train_speed.compile_mode()


@pytest.mark.slow
def test_the_benchmark_quick_path_runs_every_phase_the_sweep_included(tmp_path):
    """benchmarks/train_speed.py --quick: the sweep phase once patched a name the package split had moved."""
    import json
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import train_speed as bench

    out = tmp_path / "speed.json"
    bench.main(["--quick", "--device", "cpu", "--threads", "1", "--json", str(out)])
    result = json.loads(out.read_text())
    trainings = {p["training"].split()[0] for p in result["phases"]}
    assert trainings == {"vae", "classifier", "reviewer", "fine-tuning", "sweep"}
    assert all(p["steps_per_s"] > 0 for p in result["phases"])
    assert set(result["after_over_before"]) == {p["training"] for p in result["phases"]}
    for name, net in result["networks"].items():  # issue 24's figures: product, best raw, their ratio
        if not name.startswith("sweep"):
            assert net["steps_per_s"] > 0 and net["best_raw_steps_per_s"] > 0 and net["best_raw_variant"]
            assert net["ratio"] == pytest.approx(net["steps_per_s"] / net["best_raw_steps_per_s"], abs=0.01)


def test_a_vae_training_shows_its_rate_and_eta_from_its_first_steps():
    torch.set_num_threads(1)
    events = []
    train_vae(_tiny_data(48), VAEConfig(epochs=4, batch_size=4, width=8, kl_anneal_steps=4), device="cpu",
              on_progress=events.append)
    first = events[0]  # 12 steps an epoch: the first event comes at step 10, before any epoch ends
    assert first.done == 10 and first.total == 48 and "loss" not in first.metrics
    assert first.rate > 0 and first.eta_s == pytest.approx((48 - 10) / first.rate, rel=1e-6)


def test_the_progress_sink_shows_the_rate_and_writes_it(tmp_path, capsys):
    import json

    from defuse.cli.progress_sink import ProgressSink
    from defuse.runtime.progress import Progress

    sink = ProgressSink(str(tmp_path / "p.jsonl"))
    sink(Progress("train-vae", 10, 100, eta_s=9.0, rate=10.0))
    sink(Progress("train-vae", 100, 100, eta_s=0.0, rate=0.5))
    sink.close()
    err = capsys.readouterr().err
    assert "10 it/s ETA 00:09" in err and "2 s/it ETA 00:00" in err
    assert [json.loads(line)["rate"] for line in (tmp_path / "p.jsonl").read_text().splitlines()] == [10.0, 0.5]
