import numpy as np
import pytest
import torch
from torch.nn import functional as F

from defuse.distill.sampling import (
    PAPER_TAU,
    ReviewSamples,
    ScenarioDraw,
    draw_failure_splits,
    render_scenario,
    sample_scenario,
    sample_scenarios,
    scenario_stream,
)
from defuse.nets.architectures import BetaVAE, PaperCNN

MEAN = np.array([1.0, -2.0, 0.5])
COV = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])


class Scenarios:  # stands in for distill.Scenarios: only the two attributes sampling reads
    def __init__(self, means, covariances):
        self.means, self.covariances = np.asarray(means), np.asarray(covariances)


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return BetaVAE(channels=1, image_size=32, latent_dim=4, width=8).eval(), \
        PaperCNN(channels=1, image_size=32, num_classes=4, width=8).eval()


def test_samples_follow_n_mu_tau_sigma():
    n, tau = 200_000, 0.5
    z = sample_scenario(MEAN, COV, n, tau=tau, seed=1)
    assert z.shape == (n, 3) and z.dtype == np.float32
    se = np.sqrt(np.diag(tau * COV) / n)
    assert np.all(np.abs(z.mean(0) - MEAN) < 5 * se)
    np.testing.assert_allclose(np.cov(z.T), tau * COV, atol=0.02)


def test_tau_scales_the_spread_of_the_same_draws():
    wide = sample_scenario(MEAN, COV, 50, tau=1.0, seed=7)
    tight = sample_scenario(MEAN, COV, 50, tau=0.01, seed=7)
    np.testing.assert_allclose(tight - MEAN, 0.1 * (wide - MEAN), rtol=1e-4, atol=1e-5)
    assert PAPER_TAU == {"mnist": 0.5, "svhn": 0.01, "gtsrb": 0.01}


def test_same_seed_same_codes_other_seed_other_codes():
    a, b = (sample_scenario(MEAN, COV, 20, tau=0.5, seed=3) for _ in range(2))
    assert np.array_equal(a, b)
    assert not np.allclose(a, sample_scenario(MEAN, COV, 20, tau=0.5, seed=4))


def test_each_scenario_has_its_own_stream():
    means, covs = np.stack([MEAN, MEAN + 1]), np.stack([COV, COV])
    two = sample_scenarios(Scenarios(means, covs), 5, tau=0.5, seed=11)
    three = sample_scenarios((np.vstack([means, [MEAN]]), np.vstack([covs, [COV]])), 5, tau=0.5, seed=11)
    assert two.latents.shape == (10, 3) and two.scenario_ids.tolist() == [0] * 5 + [1] * 5
    assert np.array_equal(three.latents[:10], two.latents)          # adding a scenario changes no other
    assert np.array_equal(two.latents[5:], sample_scenario(MEAN + 1, COV, 5, tau=0.5, seed=(11, 1)))
    assert not np.allclose(three.latents[10:], two.latents[:5])      # same Gaussian, different stream


def test_no_scenarios_give_no_codes():
    draws = sample_scenarios((np.zeros((0, 3)), np.zeros((0, 3, 3))), 4, tau=0.5, seed=0)
    assert draws.latents.shape == (0, 3) and draws.scenario_ids.shape == (0,)


def test_singular_covariance_is_sampled_with_a_tiny_jitter():
    z = sample_scenario([0.0, 0.0], [[1.0, 1.0], [1.0, 1.0]], 1000, tau=1.0, seed=0)  # rank 1: z0 == z1
    assert np.isfinite(z).all() and np.abs(z[:, 0] - z[:, 1]).max() < 1e-3 and z[:, 0].std() > 0.5


@pytest.mark.parametrize("kwargs,match", [
    (dict(tau=0), r"tau must be a finite number > 0 .*got 0"),
    (dict(tau=-0.5), "tau must be a finite number > 0"),
    (dict(tau=float("nan")), "tau must be a finite number > 0"),
    (dict(mean=np.zeros((2, 3))), r"mean must be a non-empty 1-D array \(k,\); got shape \(2, 3\)"),
    (dict(covariance=np.eye(2)), r"covariance must be \(k, k\) = \(3, 3\) to match the mean; got shape \(2, 2\)"),
    (dict(covariance=np.triu(np.ones((3, 3)))), "covariance must be symmetric"),
    (dict(covariance=np.diag([1.0, -1.0, 1.0])), r"not positive semi-definite \(smallest eigenvalue -1"),
    (dict(mean=[0.0, np.nan, 0.0]), "must be finite"),
    (dict(n=0), "n must be an integer >= 1; got 0"),
    (dict(seed=-1), "seed must be an integer >= 0"),
])
def test_bad_inputs_are_refused(kwargs, match):
    args = dict(mean=MEAN, covariance=COV, n=4, tau=0.5, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        sample_scenario(args.pop("mean"), args.pop("covariance"), args.pop("n"), **args)


def test_bad_scenario_arrays_are_refused():
    with pytest.raises(ValueError, match=r"means \(m, k\) and covariances \(m, k, k\); got shapes \(2, 3\)"):
        sample_scenarios((np.zeros((2, 3)), np.zeros((2, 3, 2))), 4, tau=0.5, seed=0)
    with pytest.raises(ValueError, match="n_per_scenario must be an integer >= 1"):
        sample_scenarios((np.zeros((1, 3)), np.eye(3)[None]), 0, tau=0.5, seed=0)


def test_render_scenario_decodes_and_classifies(nets):
    vae, clf = nets
    vae.train()  # the caller's mode is put back afterwards
    latents = sample_scenario(np.zeros(4), np.eye(4), 7, tau=0.5, seed=(0, 2))
    s = render_scenario(vae, clf, latents, device="cpu", batch_size=3)
    assert vae.training
    vae.eval()
    assert s.latents.shape == (7, 4) and len(s) == 7
    assert s.images.shape == (7, 1, 32, 32) and s.images.dtype == torch.float32
    assert 0 <= s.images.min() and s.images.max() <= 1
    assert s.predictions.shape == (7,) and s.predictions.dtype == np.int64 and set(s.predictions) <= set(range(4))
    np.testing.assert_allclose(s.probs.sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(s.confidence, s.probs.max(1))
    assert np.array_equal(s.latents, latents)
    again = render_scenario(vae, clf, latents, device="cpu")
    assert torch.allclose(again.images, s.images, atol=1e-6)


def test_rendered_images_can_be_trained_on(nets):
    vae, clf = nets
    s = render_scenario(vae, clf, sample_scenario(np.zeros(4), np.eye(4), 4, tau=0.5, seed=0), device="cpu")
    assert not s.images.is_inference() and not s.images.requires_grad
    images = s.images.requires_grad_()
    clf.zero_grad()
    F.cross_entropy(clf(images), torch.zeros(4, dtype=torch.long)).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is not None for p in clf.parameters())
    clf.zero_grad()


def test_failure_splits_have_their_sizes_and_own_streams(nets):
    vae, _ = nets
    scen = Scenarios(np.stack([np.zeros(4), np.ones(4)]), np.stack([np.eye(4)] * 2))
    draw = ScenarioDraw(5, tau=0.5, seed=2)
    splits = draw_failure_splits(vae, scen, 1, 3, draw, device="cpu")
    assert (splits.scenario, splits.label) == (1, 3)
    assert [tuple(x.shape) for x in (splits.finetune, splits.val, splits.test)] == [(5, 1, 32, 32)] * 3
    again = draw_failure_splits(vae, scen, 1, 3, draw, device="cpu")
    assert torch.allclose(again.test, splits.test, atol=1e-6)
    with pytest.raises(ValueError, match=r"j must be a scenario row in 0\.\.1; got 2"):
        draw_failure_splits(vae, scen, 2, 3, draw)
    with pytest.raises(ValueError, match=r"tau must be a finite number > 0 .*got None"):
        draw_failure_splits(vae, scen, 0, 3, ScenarioDraw(5, seed=2))   # the steps fill in the dataset's τ


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=0), r"n must be an integer in \[1, 1048576\]; got 0"),
    (dict(n=2.5), r"n must be an integer in \[1, 1048576\]; got 2.5"),
    (dict(tau=0.0), "tau must be None or a finite number > 0, or a non-empty list of finite numbers > 0"),
    (dict(tau=()), r"tau must be None or a finite number > 0, .*; got \(\)"),
    (dict(seed=-1), r"seed must be an integer in \[0, 9223372036854775807\]; got -1"),
])
def test_a_bad_draw_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScenarioDraw(**kwargs)


def test_a_draw_takes_the_default_tau_only_when_it_has_none():
    assert ScenarioDraw(8, seed=3).with_tau(0.5) == ScenarioDraw(8, 0.5, 3)
    assert ScenarioDraw(8, 0.01, 3).with_tau(0.5) == ScenarioDraw(8, 0.01, 3)


def _shared_rows(a, b) -> int:
    """How many rows of ``a`` (n, ...) equal some row of ``b`` (m, ...) exactly."""
    rows_b = {bytes(np.ascontiguousarray(r).tobytes()) for r in np.asarray(b).reshape(len(b), -1)}
    return sum(bytes(np.ascontiguousarray(r).tobytes()) in rows_b for r in np.asarray(a).reshape(len(a), -1))


def test_review_finetune_val_test_suite_and_tau_draws_share_no_value(nets):
    """Whole draws, compared by value: no review sample is a D_f, failure-val, failure-test, suite or τ-choice
    sample."""
    vae, clf = nets
    scen = Scenarios(np.stack([np.zeros(4), np.ones(4)]), np.stack([np.eye(4)] * 2))
    n = 300
    review = [ReviewSamples(vae, clf, scen, tau=0.5, seed=2).render(j, n, device="cpu").images.numpy() for j in (0, 1)]
    splits = [draw_failure_splits(vae, scen, j, 3, ScenarioDraw(n, 0.5, 2), device="cpu") for j in (0, 1)]
    suite = [render_scenario(vae, clf, sample_scenario(scen.means[j], scen.covariances[j], n, tau=0.5,
                                                       seed=scenario_stream(2, j, "suite")), device="cpu")
             for j in (0, 1)]   # what steps.suite decodes (before storing it as uint8)
    draws = {f"review{j}": review[j] for j in (0, 1)}
    draws.update({f"suite{j}": suite[j].images.numpy() for j in (0, 1)})
    # the samples that choose τ (defuse.distill.tau): the same draw as choose_taus makes at τ=0.5
    for j in (0, 1):
        eps = np.random.default_rng(scenario_stream(2, j, "tau")).standard_normal((n, 4))
        draws[f"tau{j}"] = vae.decode(torch.from_numpy((scen.means[j] + np.sqrt(0.5) * eps).astype(np.float32)))\
            .clamp(0, 1).detach().numpy()
    draws.update({f"{name}{j}": getattr(splits[j], name).numpy()
                  for j in (0, 1) for name in ("finetune", "val", "test")})
    assert all(_shared_rows(x, x) == n for x in draws.values())  # the comparison finds rows that are there
    names = sorted(draws)
    clashes = {(a, b): _shared_rows(draws[a], draws[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    assert clashes == {pair: 0 for pair in clashes}
    # the review samples are the stream (seed, j) the label store's decisions were recorded on
    assert np.array_equal(sample_scenario(np.zeros(4), np.eye(4), 5, tau=0.5, seed=(2, 0)),
                          sample_scenario(np.zeros(4), np.eye(4), 5, tau=0.5, seed=scenario_stream(2, 0, "review")))


def test_the_old_split_streams_overlapped_the_review_stream():
    """Why the splits have spawn keys: numpy pads entropy with zeros, so (seed, j) == (seed, j, 0)."""
    old_review = sample_scenario(MEAN, COV, 50, tau=0.5, seed=(2, 1))
    old_finetune = sample_scenario(MEAN, COV, 50, tau=0.5, seed=(2, 1, 0))
    assert _shared_rows(old_review, old_finetune) == 50
    new_finetune = sample_scenario(MEAN, COV, 50, tau=0.5, seed=scenario_stream(2, 1, "finetune"))
    assert _shared_rows(old_review, new_finetune) == 0


def test_scenario_stream_rejects_unknown_purposes():
    with pytest.raises(ValueError, match=r"purpose must be one of \['review', 'finetune', 'failure-val', "
                                         r"'failure-test', 'suite', 'tau'\]; got 'train'"):
        scenario_stream(0, 1, "train")
    with pytest.raises(ValueError, match="j must be an integer >= 0; got -1"):
        scenario_stream(0, -1, "review")
