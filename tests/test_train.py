import pytest
import torch

from defuse.data.datasets import ImageData, Split
from defuse.nets.train import (
    TrainConfig,
    VAEConfig,
    fidelity_split,
    fidelity_warning,
    train_classifier,
    train_vae,
    vae_images,
)
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
    assert m["n_images"] == 256 and m["trained_on"] == "train"   # never the test split
    assert m["fidelity_split"] == "val"              # measured on images the VAE did not train on


def test_fidelity_warning_only_below_the_bar():
    ok = {"acc_reconstruction": 0.93, "acc_original": 0.95, "active_dims": 7, "latent_dim": 10, "fidelity_ok": True}
    bad = {**ok, "acc_reconstruction": 0.64, "fidelity_ok": False}
    assert fidelity_warning(ok) is None
    assert "only 64% of its reconstructions, against 95%" in fidelity_warning(bad)
    assert "lower β from 4 to 0.4" in fidelity_warning(bad, {"beta": 4.0})       # advice fits the settings used
    assert "lower β" not in fidelity_warning(bad, {"beta": 0.4})


@pytest.mark.parametrize("cls,kwargs,match", [
    (TrainConfig, dict(epochs=0), r"epochs must be an integer in \[1, 10000\]; got 0"),
    (TrainConfig, dict(optimizer="lbfgs"), r"optimizer must be one of \['adadelta', 'adam', 'sgd'\]"),
    (TrainConfig, dict(class_keep=((1, 1.5),)), "fraction in"),
    (VAEConfig, dict(beta=-1), r"beta must be a finite number in \[0, 1000\]; got -1"),
    (VAEConfig, dict(latent_dim=0), r"latent_dim must be an integer in \[1, 4096\]; got 0"),
    (VAEConfig, dict(train_on="test"), r"train_on must be one of \['train', 'train\+val'\]; got 'test'$"),
    (VAEConfig, dict(train_on="all"), "'all' included the test split, which the VAE must never see"),
])
def test_bad_configs_say_what_is_wrong(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def _other_val_and_test(data):
    """The same training split; validation and test replaced by other values (noise)."""
    gen = torch.Generator().manual_seed(99)
    noise = [Split(torch.rand(x.images.shape, generator=gen), x.labels.flip(0)) for x in (data.val, data.test)]
    return ImageData(data.train, *noise, class_names=data.class_names, spec=data.spec)


def test_vae_and_classifier_learn_nothing_from_validation_or_test_values(data):
    """Changing only the validation and test images leaves the trained weights bit-identical."""
    other = _other_val_and_test(data)
    vcfg = VAEConfig(epochs=2, batch_size=64, latent_dim=4, width=8, kl_anneal_steps=5)
    a, b = (train_vae(d, vcfg, device="cpu").model.state_dict() for d in (data, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    ccfg = TrainConfig(epochs=1, batch_size=64, optimizer="adam", lr=1e-3)
    a, b = (train_classifier(d, ccfg, device="cpu").model.state_dict() for d in (data, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the same comparison does see a split that is used: train+val VAEs differ when only val differs
    both = VAEConfig(epochs=1, batch_size=64, latent_dim=4, width=8, train_on="train+val")
    a, b = (train_vae(d, both, device="cpu").model.state_dict() for d in (data, other))
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_vae_images_never_hold_a_test_row_and_fidelity_uses_an_unseen_split(data):
    test_rows = {r.numpy().tobytes() for r in data.test.images}
    for train_on in ("train", "train+val"):
        assert not any(r.numpy().tobytes() in test_rows for r in vae_images(data, train_on))
    assert len(vae_images(data, "train+val")) == 256 + 64
    assert fidelity_split("train") == ("val", True)
    assert fidelity_split("train+val") == ("test", True)
    assert fidelity_split("all") == ("val", False)   # the demo VAE's recorded setting: no unseen split
    assert fidelity_split(None) == ("val", None)     # an imported VAE: unknown


def test_the_reviewer_learns_nothing_from_validation_or_test_values(data):
    from defuse.label.reviewer import ReviewerConfig, train_reviewer

    cfg = ReviewerConfig(members=1, epochs=1, batch_size=64)
    a, b = (train_reviewer(d, cfg, device="cpu").members[0].state_dict() for d in (data, _other_val_and_test(data)))
    assert all(torch.equal(a[k], b[k]) for k in a)
