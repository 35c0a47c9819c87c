import pytest
import torch

from defuse.nets.train import TrainConfig, VAEConfig, fidelity_warning, train_classifier, train_vae
from tests.toys import tiny_image_data


@pytest.fixture(scope="module")
def data():
    return tiny_image_data()


def test_classifier_beats_chance_by_far_and_records_curves(data):
    events = []
    result = train_classifier(data, TrainConfig(epochs=2, batch_size=32, optimizer="adam", lr=1e-3),
                              device="cpu", on_progress=events.append)
    assert result.metrics["test_acc"] > 0.9          # chance is 0.25
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert events and events[-1].done == events[-1].total
    assert all(e.eta_s is None or e.eta_s >= 0 for e in events)


def test_class_keep_removes_part_of_a_class(data):
    result = train_classifier(data, TrainConfig(epochs=1, batch_size=64, class_keep=((0, 0.25),)), device="cpu")
    assert result.metrics["n_train"] == 256 - 48  # class 0 has 64 images, 16 kept


def test_same_seed_same_classifier(data):
    cfg = TrainConfig(epochs=1, batch_size=64, optimizer="adam", lr=1e-3, seed=3)
    a, b = (train_classifier(data, cfg, device="cpu").model for _ in range(2))
    x = data.test.images[:8]
    assert torch.equal(a(x), b(x))


def test_vae_loss_falls_and_fidelity_is_measured(data):
    clf = train_classifier(data, TrainConfig(epochs=2, batch_size=32, optimizer="adam", lr=1e-3), device="cpu")
    cfg = VAEConfig(epochs=8, batch_size=32, latent_dim=4, width=8, kl_anneal_steps=20, beta=0.5)
    result = train_vae(data, cfg, device="cpu", classifier=clf.model)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.9 * losses[0]
    m = result.metrics
    assert 0 <= m["acc_reconstruction"] <= 1 and m["latent_dim"] == 4 and 0 <= m["active_dims"] <= 4
    assert m["n_images"] == 256 + 64 + 64            # train_on="all": the VAE needs no labels


def test_fidelity_warning_only_below_the_bar():
    ok = {"acc_reconstruction": 0.93, "acc_original": 0.95, "active_dims": 7, "latent_dim": 10, "fidelity_ok": True}
    bad = {**ok, "acc_reconstruction": 0.64, "fidelity_ok": False}
    assert fidelity_warning(ok) is None
    assert "only 64% of its reconstructions, against 95%" in fidelity_warning(bad)
    assert "lower β from 4 to 0.4" in fidelity_warning(bad, {"beta": 4.0})       # advice fits the settings used
    assert "lower β" not in fidelity_warning(bad, {"beta": 0.4})


@pytest.mark.parametrize("cls,kwargs,match", [
    (TrainConfig, dict(epochs=0), "epochs must be > 0; got 0"),
    (TrainConfig, dict(optimizer="lbfgs"), r"optimizer must be one of \['adadelta', 'adam', 'sgd'\]"),
    (TrainConfig, dict(class_keep=((1, 1.5),)), "fraction in"),
    (VAEConfig, dict(beta=-1), "beta must be >= 0"),
    (VAEConfig, dict(latent_dim=0), "latent_dim must be > 0"),
    (VAEConfig, dict(train_on="test"), "train_on must be 'all' or 'train'"),
])
def test_bad_configs_say_what_is_wrong(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
