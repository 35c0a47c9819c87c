"""Identify on a 2-D latent toy whose right answer is known, plus the paper's nets at tiny sizes.

The toy "VAE" stores a code z in two pixels, so decode(z) is exact; the toy classifier labels by the
sign of z[1] but has a planted wrong region z[0] > 1 (it answers class 2 there). Every failure must
therefore lie in the planted region, or come from a source that is already misclassified.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from defuse.identify.autotune import CPU_CANDIDATES
from defuse.identify.noise import beta_noise
from defuse.identify.search import Failures, IdentifyConfig, classify, decode_latents, identify
from defuse.nets.architectures import BetaVAE, PaperCNN
from defuse.nets.inference import plan_inference
from defuse.runtime.progress import Cancelled


class ToyVAE(nn.Module):
    """Code z (2,) lives in pixels (0, 0, 0) and (0, 0, 1) as (z + 4) / 8."""

    decoded = 0                      # class-level: identify runs a copy of the module

    def __init__(self, latent_dim: int = 2):
        super().__init__()
        self.latent_dim = latent_dim
        self.anchor = nn.Parameter(torch.zeros(()))   # so the module has a device

    def encode(self, x):
        z = x[:, 0, 0, :2] * 8 - 4
        return z, torch.zeros_like(z)

    def decode(self, z):
        type(self).decoded += len(z)
        x = torch.zeros(len(z), 1, 2, 2, device=z.device)
        x[:, 0, 0, :2] = ((z + 4) / 8).clamp(0, 1)
        return x


class ToyClassifier(nn.Module):
    """Class 1 if z[1] > 0 else 0; with ``planted``, class 2 wherever z[0] > 1 (the planted failures)."""

    def __init__(self, planted: bool = True, constant: int | None = None):
        super().__init__()
        self.planted, self.constant = planted, constant
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        z = x[:, 0, 0, :2] * 8 - 4
        pred = (z[:, 1] > 0).long()
        if self.planted:
            pred = torch.where(z[:, 0] > 1.0, torch.full_like(pred, 2), pred)
        if self.constant is not None:
            pred = torch.full_like(pred, self.constant)
        return nn.functional.one_hot(pred, 3).float() * 10


# name: (mu, true label). "far" never fails; "edge"/"near" straddle z0 = 1 after the +0.5 Beta shift;
# "wrong" is already misclassified (rule says 0); "inside" reconstructs inside the planted region.
SOURCES = {"far": ((-3.0, -2.0), 0), "edge": ((0.5, -2.0), 0), "near": ((0.45, 1.0), 1),
           "wrong": ((-3.0, -2.0), 1), "inside": ((1.5, -2.0), 0)}
ORDER = ["far", "edge", "near", "wrong", "inside", "edge", "near", "far", "edge", "wrong"]
FP32 = dict(precision="fp32")


@pytest.fixture(scope="module")
def toy():
    mu = torch.tensor([SOURCES[s][0] for s in ORDER])
    images = torch.zeros(len(ORDER), 1, 2, 2)
    images[:, 0, 0, :2] = (mu + 4) / 8
    labels = torch.tensor([SOURCES[s][1] for s in ORDER])
    return ToyClassifier(), ToyVAE(), images, labels, mu


def _expected(toy, cfg):
    """The answer by brute force: every (source, sample) whose decode the classifier gets wrong."""
    clf, vae, images, labels, mu = toy
    eps = beta_noise(cfg.seed, torch.arange(len(mu)), cfg.samples_per_image, 2, cfg.beta_a, cfg.beta_b)
    if cfg.centered:
        eps = eps - cfg.beta_a / (cfg.beta_a + cfg.beta_b)
    z = mu[:, None, :] + eps
    pred = clf(vae.decode(z.reshape(-1, 2))).argmax(1).view(len(mu), -1)
    return pred != labels[:, None], eps.norm(dim=2), pred


def _same(a: Failures, b: Failures) -> None:
    for name, arr in a.to_arrays().items():
        np.testing.assert_array_equal(arr, b.to_arrays()[name], err_msg=name)


def test_failures_are_exactly_the_planted_region_and_misclassified_sources(toy):
    clf, vae, images, labels, mu = toy
    cfg = IdentifyConfig(samples_per_image=200, max_per_image=1000, **FP32)
    f = identify(clf, vae, images, labels, cfg, device="cpu")
    fail, norms, pred = _expected(toy, cfg)
    assert len(f) == int(fail.sum()) > 0
    assert f.latents.dtype == f.noise_norm.dtype == np.float32 and f.source_index.dtype == np.int64
    for i, name in enumerate(ORDER):
        rows = f.source_index == i
        assert rows.sum() == fail[i].sum()
        np.testing.assert_allclose(np.sort(f.noise_norm[rows]), np.sort(norms[i][fail[i]].numpy()), rtol=1e-6)
        if name == "wrong":        # already misclassified: every perturbation counts, labelled by the rule
            assert rows.sum() == 200 and set(f.pred_label[rows]) == {0}
        elif name == "far":
            assert rows.sum() == 0
        else:                      # only inside the planted region
            assert np.all(f.latents[rows, 0] > 1.0 - 1e-5) and set(f.pred_label[rows]) == {2}
    np.testing.assert_array_equal(f.true_label, labels.numpy()[f.source_index])
    assert np.all(f.pred_label != f.true_label)
    np.testing.assert_allclose(np.linalg.norm(f.latents - mu.numpy()[f.source_index], axis=1), f.noise_norm,
                               rtol=1e-4)


def test_cap_keeps_the_smallest_noise_first(toy):
    clf, vae, images, labels, _ = toy
    cfg = IdentifyConfig(samples_per_image=200, max_per_image=5, **FP32)
    f = identify(clf, vae, images, labels, cfg, device="cpu")
    fail, norms, _ = _expected(toy, cfg)
    for i in range(len(ORDER)):
        rows = f.source_index == i
        expected = np.sort(norms[i][fail[i]].numpy())[:5]
        np.testing.assert_allclose(f.noise_norm[rows], expected, rtol=1e-6)  # the 5 smallest,
        assert np.all(np.diff(f.noise_norm[rows]) >= 0)                     # ascending
    assert np.all(np.diff(f.source_index) >= 0)                            # grouped by source, in order
    assert f.metrics["share_sources_at_cap"] == pytest.approx(np.mean(fail.sum(1).numpy() >= 5))


def test_trust_metrics(toy):
    clf, vae, images, labels, _ = toy
    f = identify(clf, vae, images, labels, IdentifyConfig(samples_per_image=50, **FP32), device="cpu")
    m = f.metrics
    # "wrong" (x2) and "inside" are misclassified both as originals and as reconstructions
    assert m["acc_original"] == m["acc_reconstruction"] == pytest.approx(0.7)
    assert m["n_misreconstructed"] == 3 and m["n_skipped_misreconstructed"] == 0
    assert m["failures_from_misreconstructed"] == int(np.isin(f.source_index, [3, 4, 9]).sum()) > 0
    assert m["share_sources_with_failure"] == pytest.approx(len(set(f.source_index)) / 10)
    assert m["n_searched"] == 10 and m["n_decodes"] == 500 and m["n_failures"] == len(f)
    assert m["precision"] == "fp32" and m["batch_size"] >= 1 and m["images_per_s"] > 0


def test_cpu_batch_size_is_tuned_online_unless_set(toy):
    clf, vae, images, labels, _ = toy
    many = IdentifyConfig(samples_per_image=500, chunk_images=10, **FP32)      # 5,000 decodes: 4 trials fit
    m = identify(clf, vae, images, labels, many, device="cpu").metrics
    assert m["batch_size"] in CPU_CANDIDATES and sorted(m["batch_size_trials"]) == ["1024", "256"]
    fixed = identify(clf, vae, images, labels, IdentifyConfig(samples_per_image=50, batch_size=61, **FP32),
                     device="cpu").metrics
    assert fixed["batch_size"] == 61 and fixed["batch_size_trials"] == {}


def test_skip_misreconstructed(toy):
    clf, vae, images, labels, _ = toy
    cfg = IdentifyConfig(samples_per_image=50, skip_misreconstructed=True, **FP32)
    f = identify(clf, vae, images, labels, cfg, device="cpu")
    assert not np.isin(f.source_index, [3, 4, 9]).any()
    assert f.metrics["n_skipped_misreconstructed"] == 3 and f.metrics["n_searched"] == 7
    full = identify(clf, vae, images, labels, IdentifyConfig(samples_per_image=50, **FP32), device="cpu")
    kept = ~np.isin(full.source_index, [3, 4, 9])
    np.testing.assert_array_equal(f.latents, full.latents[kept])   # the other sources' noise is unchanged


def test_reviewer_shares(toy):
    clf, vae, images, labels, _ = toy
    cfg = IdentifyConfig(samples_per_image=40, max_per_image=10, **FP32)
    f = identify(clf, vae, images, labels, cfg, device="cpu", reviewer=ToyClassifier(planted=False))
    from_wrong = np.isin(f.source_index, [3, 9]).mean()   # the reviewer agrees with the classifier there
    assert f.metrics["reviewer_n"] == len(f) <= 500
    assert f.metrics["reviewer_real_share"] == pytest.approx(1 - from_wrong)
    assert f.metrics["reviewer_artefact_share"] == pytest.approx(from_wrong)


@pytest.mark.parametrize("centered, mean", [(False, 0.5), (True, 0.0)])
def test_centered_noise_has_zero_mean(toy, centered, mean):
    _, vae, images, labels, mu = toy
    cfg = IdentifyConfig(samples_per_image=300, max_per_image=300, centered=centered, **FP32)
    f = identify(ToyClassifier(constant=2), vae, images, labels, cfg, device="cpu")  # every decode fails
    eps = f.latents - mu.numpy()[f.source_index]
    assert len(f) == 3000 and np.abs(eps.mean(0) - mean).max() < 0.005
    assert eps.std(0) == pytest.approx(np.sqrt(50 * 50 / (100**2 * 101)), rel=0.05)


def test_noise_scale_multiplies_the_centred_noise_and_its_norm(toy):
    _, vae, images, labels, mu = toy
    runs = [identify(ToyClassifier(constant=2), vae, images, labels,
                     IdentifyConfig(samples_per_image=50, max_per_image=50, centered=True, noise_scale=s, **FP32),
                     device="cpu") for s in (1.0, 3.0)]
    eps = [f.latents - mu.numpy()[f.source_index] for f in runs]
    np.testing.assert_allclose(eps[1], 3.0 * eps[0], rtol=1e-5, atol=1e-6)     # the same draws, three times larger
    np.testing.assert_allclose(runs[1].noise_norm, 3.0 * runs[0].noise_norm, rtol=1e-5)
    with pytest.raises(ValueError, match="noise_scale"):
        IdentifyConfig(noise_scale=0)


def test_same_seed_same_failures_whatever_the_batch_or_chunk(toy):
    clf, vae, images, labels, _ = toy
    base = IdentifyConfig(samples_per_image=60, max_per_image=7, **FP32)
    ref = identify(clf, vae, images, labels, base, device="cpu")
    for bs, chunk in ((7, 1), (1000, 3), (61, 4)):
        cfg = IdentifyConfig(samples_per_image=60, max_per_image=7, batch_size=bs, chunk_images=chunk, **FP32)
        _same(ref, identify(clf, vae, images, labels, cfg, device="cpu"))
    other = identify(clf, vae, images, labels, IdentifyConfig(samples_per_image=60, max_per_image=7, seed=1,
                                                               **FP32), device="cpu")
    assert not np.array_equal(other.noise_norm, ref.noise_norm[: len(other)])


def test_resume_after_cancel_computes_only_the_missing_chunks(toy, tmp_path):
    clf, vae, images, labels, _ = toy
    cfg = IdentifyConfig(samples_per_image=30, chunk_images=4, **FP32)   # 10 sources: chunks of 4, 4, 2

    def cancel_after_first_chunk(event):
        if event.metrics.get("chunk") == 1:
            raise Cancelled

    with pytest.raises(Cancelled):
        identify(clf, vae, images, labels, cfg, device="cpu", resume_dir=tmp_path,
                 on_progress=cancel_after_first_chunk)
    assert sorted(p.name for p in tmp_path.glob("chunk-*.npz")) == ["chunk-00000.npz"]
    before, events = ToyVAE.decoded, []
    resumed = identify(clf, vae, images, labels, cfg, device="cpu", resume_dir=tmp_path,
                       on_progress=events.append)
    # one probe decode + 10 reconstructions + the 6 sources of chunks 2 and 3
    assert ToyVAE.decoded - before == 1 + 10 + 6 * 30
    assert resumed.metrics["chunks_resumed"] == 1 and resumed.metrics["chunks"] == 3
    assert events[0].done == 4 and events[-1].done == events[-1].total == 10
    _same(resumed, identify(clf, vae, images, labels, cfg, device="cpu"))
    again = identify(clf, vae, images, labels, cfg, device="cpu", resume_dir=tmp_path)
    assert again.metrics["chunks_resumed"] == 3
    changed = identify(clf, vae, images, labels, IdentifyConfig(samples_per_image=30, chunk_images=4, seed=3,
                                                                 **FP32), device="cpu", resume_dir=tmp_path)
    assert changed.metrics["chunks_resumed"] == 0                        # new fingerprint: old chunks dropped


def test_unreadable_chunk_is_recomputed(toy, tmp_path):
    clf, vae, images, labels, _ = toy
    cfg = IdentifyConfig(samples_per_image=30, chunk_images=4, **FP32)
    ref = identify(clf, vae, images, labels, cfg, device="cpu", resume_dir=tmp_path)
    (tmp_path / "chunk-00001.npz").write_bytes(b"not an npz")
    again = identify(clf, vae, images, labels, cfg, device="cpu", resume_dir=tmp_path)
    assert again.metrics["chunks_resumed"] == 2
    _same(ref, again)


def test_no_failures_gives_empty_arrays_and_progress(toy):
    _, vae, images, _, mu = toy
    labels = (mu[:, 1] > 0).long()                  # the rule's labels: an unplanted classifier never fails
    events = []
    cfg = IdentifyConfig(samples_per_image=20, **FP32)
    honest = ToyClassifier(planted=False)
    f = identify(honest, vae, images, labels, cfg, device="cpu", on_progress=events.append, reviewer=honest)
    assert len(f) == 0 and f.latents.shape == (0, 2) and f.source_index.dtype == np.int64
    assert f.metrics["share_sources_with_failure"] == 0 and f.metrics["reviewer_n"] == 0
    last = events[-1]
    assert last.done == last.total == 10 and last.metrics["found"] == 0 and last.metrics["images_per_s"] > 0


@pytest.mark.parametrize("mode", ["first", "random"])
def test_subset(toy, mode):
    clf, vae, images, labels, _ = toy
    cfg = IdentifyConfig(samples_per_image=40, subset=4, subset_mode=mode, **FP32)
    f = identify(clf, vae, images, labels, cfg, device="cpu")
    assert f.metrics["n_searched"] == 4 and f.metrics["n_images"] == 10
    if mode == "first":
        assert set(f.source_index) <= {0, 1, 2, 3}


def test_beta_noise_matches_the_beta_distribution():
    for a, b in ((50.0, 50.0), (2.0, 5.0), (0.5, 0.3)):
        eps = beta_noise(0, torch.arange(50), 400, 10, a, b).double()
        assert eps.mean().item() == pytest.approx(a / (a + b), abs=3e-3)
        assert eps.var().item() == pytest.approx(a * b / ((a + b) ** 2 * (a + b + 1)), rel=0.03)
    eps = beta_noise(7, torch.arange(5, 9), 100, 3, 50, 50)
    assert torch.equal(eps[1:3], beta_noise(7, torch.tensor([6, 7]), 100, 3, 50, 50))    # keyed by row
    assert torch.equal(eps[:, :40], beta_noise(7, torch.arange(5, 9), 40, 3, 50, 50))    # prefix-stable in Q
    full = beta_noise(3, torch.arange(57), 33, 7, 50, 50)
    for start, n in ((0, 1), (5, 2), (20, 5), (50, 7)):                # vector tails round alike
        part = beta_noise(3, torch.arange(start, start + n), 33, 7, 50, 50)
        assert torch.equal(part, full[start:start + n])


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
def test_paper_nets_run_in_each_precision(precision):
    torch.manual_seed(0)
    clf, vae = PaperCNN(width=8), BetaVAE(latent_dim=4, width=8)
    images, labels = torch.rand(6, 1, 32, 32), torch.randint(0, 10, (6,))
    cfg = IdentifyConfig(samples_per_image=16, max_per_image=4, precision=precision)
    f = identify(clf, vae, images, labels, cfg, device="cpu")
    assert f.latents.shape == (len(f), 4) and np.isfinite(f.latents).all()
    assert np.all(f.pred_label != f.true_label) and np.all((f.pred_label >= 0) & (f.pred_label < 10))
    assert np.all(np.bincount(f.source_index, minlength=6) <= 4)
    assert f.metrics["precision"] == plan_inference(torch.device("cpu"), precision).precision
    assert clf.training and vae.training                                  # the caller's models are untouched:
    assert clf.features[0].weight.is_contiguous()                         # a copy ran in eval, channels_last


def test_helpers_decode_and_classify(toy):
    clf, vae, _, _, mu = toy
    images = decode_latents(vae, mu.numpy(), device="cpu", batch_size=3)
    assert images.shape == (10, 1, 2, 2) and images.dtype == torch.float32
    clf.train()
    preds, probs = classify(clf, images, batch_size=4)
    assert clf.training                                                     # mode restored
    assert preds.tolist() == [0, 0, 1, 0, 2, 0, 1, 0, 0, 0] and torch.allclose(probs.sum(1), torch.ones(10))
    assert not probs.is_inference() and not probs.requires_grad
    assert decode_latents(vae, np.zeros((0, 2)), device="cpu").shape == (0, 1, 2, 2)
    with pytest.raises(ValueError, match=r"latents must be \(n, latent_dim=2\); got shape \(3, 5\)"):
        decode_latents(vae, np.zeros((3, 5)))


def test_failures_round_trip_through_arrays(toy):
    clf, vae, images, labels, _ = toy
    f = identify(clf, vae, images, labels, IdentifyConfig(samples_per_image=20, **FP32), device="cpu")
    g = Failures.from_arrays(f.to_arrays(), f.metrics)
    _same(f, g)
    assert g.metrics == f.metrics and len(g) == len(f)


@pytest.mark.parametrize("kwargs, match", [
    (dict(samples_per_image=0), r"samples_per_image must be an integer in \[1, 1048576\]; got 0"),
    (dict(samples_per_image=2.5), r"samples_per_image must be an integer in \[1, 1048576\]; got 2.5"),
    (dict(beta_a=0.0), r"beta_a must be a finite number in \(0, 1000000\]; got 0.0"),
    (dict(beta_b=float("inf")), r"beta_b must be a finite number in \(0, 1000000\]; got inf"),
    (dict(max_per_image=0), r"max_per_image must be an integer in \[1, 1048576\]; got 0"),
    (dict(centered="yes"), r"centered must be True or False; got 'yes'"),
    (dict(skip_misreconstructed=1), r"skip_misreconstructed must be True or False; got 1"),
    (dict(subset=0), r"subset must be None or an integer >= 1; got 0"),
    (dict(subset_mode="last"), r"subset_mode must be one of \['first', 'random'\]; got 'last'"),
    (dict(batch_size=0), r"batch_size must be None or an integer in \[1, 134217728\]; got 0"),
    (dict(precision="fp8"), r"precision must be one of \['auto', 'bf16', 'fp16', 'fp32'\]; got 'fp8'"),
    (dict(seed=-1), r"seed must be an integer in \[0, 9223372036854775807\]; got -1"),
    (dict(chunk_images=0), r"chunk_images must be an integer in \[1, 16777216\]; got 0"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IdentifyConfig(**kwargs)


def test_bad_inputs(toy):
    clf, vae, images, labels, _ = toy
    run = lambda *a, **kw: identify(*a, IdentifyConfig(samples_per_image=2), device="cpu", **kw)  # noqa: E731
    msg = r"images must be \(N, C, H, W\) floats in \[0, 1\]; got shape \(10, 2, 2\)"
    with pytest.raises(ValueError, match=msg):
        run(clf, vae, images[:, 0], labels)
    with pytest.raises(ValueError, match=r"got values in \[0, 175.3\] \(divide 8-bit images by 255"):
        run(clf, vae, images * 255, labels)
    with pytest.raises(ValueError, match=r"dtype torch.int64"):
        run(clf, vae, images.long(), labels)
    with pytest.raises(ValueError, match="labels must have one entry per image: got 9 labels for 10 images"):
        run(clf, vae, images, labels[:9])
    with pytest.raises(ValueError, match=r"labels must be a 1-D integer array; got shape \(10, 1\)"):
        run(clf, vae, images, labels[:, None])
    with pytest.raises(ValueError, match="labels must be >= 0"):
        run(clf, vae, images, labels - 5)
    with pytest.raises(ValueError, match="labels go up to 7 but the classifier has 3 outputs"):
        run(clf, vae, images, torch.full((10,), 7))
    msg = r"latent_dim mismatch: .* codes of shape \(1, 2\) for one image but vae.latent_dim is 3"
    with pytest.raises(ValueError, match=msg):
        run(clf, ToyVAE(latent_dim=3), images, labels)
    with pytest.raises(ValueError, match=r"the VAE decodes to images of shape \(1, 2, 2\) but the images"):
        run(clf, vae, torch.zeros(10, 1, 2, 3), labels)
    with pytest.raises(ValueError, match="vae must have encode"):
        run(clf, nn.Linear(2, 2), images, labels)
    with pytest.raises(TypeError, match="cfg must be an IdentifyConfig"):
        identify(clf, vae, images, labels, {"samples_per_image": 2})
