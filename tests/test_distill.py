"""Tests of the distillation step: the torch mixture against scikit-learn, scenarios, validation."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture

from defuse.distill.dpgmm import DPGaussianMixture, limit_threads
from defuse.distill.scenarios import DistillConfig, DistillConvergenceWarning, Scenarios, distill
from defuse.identify.search import Failures
from defuse.runtime.progress import Cancelled

BLOB_CENTRES = np.array([[0.0, 0.0, 0.0, 0.0], [6.0, 0.0, 0.0, 0.0], [0.0, 6.0, 0.0, 0.0]])
SMALL = dict(max_components=10)  # K small enough to keep every fit here well under a second


def _failures(codes: np.ndarray, true: np.ndarray, pred: np.ndarray | None = None) -> Failures:
    n = len(codes)
    pred = (true + 1) % 3 if pred is None else pred
    return Failures(codes.astype(np.float32), np.arange(n), true.astype(np.int64), pred.astype(np.int64),
                    np.ones(n, np.float32))


@pytest.fixture(scope="module")
def blobs() -> Failures:
    """600 codes from 3 well-separated blobs in 4-D; the true label is the blob."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, 3, 600)
    return _failures(BLOB_CENTRES[true] + rng.normal(0, 0.5, (600, 4)), true)


@pytest.fixture(scope="module")
def mixed() -> np.ndarray:
    """2,000 points in 5-D: 4 well-separated Gaussians plus 2 overlapping ones."""
    rng = np.random.default_rng(1)
    centres = np.vstack([np.eye(5)[:4] * 10.0, [[-5, -5, 0, 0, 0], [-4, -5, 0, 0, 0]]])
    scales = np.array([0.5, 0.7, 1.0, 0.6, 1.0, 1.0])
    label = rng.integers(0, 6, 2000)
    return centres[label] + rng.normal(0, 1, (2000, 5)) * scales[label, None]


class _GivenInit(BayesianGaussianMixture):
    """scikit-learn's mixture started from given responsibilities instead of its own k-means."""

    resp0 = None

    def _initialize_parameters(self, X, *args, **kwargs):
        self._initialize(X, self.resp0)


def test_torch_mixture_matches_sklearn_from_identical_init(mixed):
    k = 20
    with limit_threads(1):  # scikit-learn's default threads crawl on a busy 2-core machine
        labels = KMeans(n_clusters=k, n_init=1, random_state=3).fit(mixed).labels_
        resp0 = np.eye(k)[labels]
        ref = _GivenInit(n_components=k, covariance_type="full",
                         weight_concentration_prior_type="dirichlet_process")
        ref.resp0 = resp0
        ref.fit(mixed)
        ref_labels = ref.predict(mixed)
    ours = DPGaussianMixture(k).fit(mixed, init_resp=resp0)
    assert ours.n_iter_ == ref.n_iter_ and ours.converged_ == ref.converged_
    assert abs(ours.lower_bound_ - ref.lower_bound_) <= 0.005 * abs(ref.lower_bound_)
    kept, kept_ref = (ours.weights_ > 0.01).sum(), (ref.weights_ > 0.01).sum()
    assert abs(kept - kept_ref) <= max(1, 0.1 * kept_ref)
    assert adjusted_rand_score(ref_labels, ours.predict(mixed)) >= 0.9
    # The updates are the same, not only the quality: parameters agree to rounding.
    np.testing.assert_allclose(ours.weights_, ref.weights_, atol=1e-8)
    np.testing.assert_allclose(ours.means_, ref.means_, atol=1e-6)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, atol=1e-6)


def test_distill_backends_agree(mixed):
    failures = _failures(mixed, np.zeros(len(mixed), np.int64))
    cfg = DistillConfig(max_components=20, seed=3)
    ours = distill(failures, cfg)
    ref = distill(failures, DistillConfig(max_components=20, seed=3, backend="sklearn"))
    assert (ours.backend, ref.backend) == ("torch", "sklearn")
    assert abs(ours.lower_bound - ref.lower_bound) <= 0.005 * abs(ref.lower_bound)
    assert abs(len(ours) - len(ref)) <= max(1, 0.1 * len(ref))
    assert adjusted_rand_score(ref.assignment, ours.assignment) >= 0.9


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_chunked_e_step_is_exact(mixed):
    """Blocks of rows change only the order of the sums, not the fit."""
    settings = DistillConfig(seed=0, max_iter=20)
    whole = DPGaussianMixture(8, settings, chunk_size=10_000).fit(mixed[:500])
    blocks = DPGaussianMixture(8, settings, chunk_size=64).fit(mixed[:500])
    assert whole.n_iter_ == blocks.n_iter_
    np.testing.assert_allclose(whole.lower_bounds_, blocks.lower_bounds_, rtol=1e-10)
    np.testing.assert_array_equal(whole.predict(mixed), blocks.predict(mixed))


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_planted_blobs_become_three_scenarios(blobs, backend):
    s = distill(blobs, DistillConfig(**SMALL, backend=backend))
    assert len(s) == 3 and s.converged and s.n_fitted == 600 and s.n_components == 10
    order = [int(np.argmin(np.linalg.norm(BLOB_CENTRES - mu, axis=1))) for mu in s.means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(s.means, BLOB_CENTRES[order], atol=0.15)
    assert s.covariances.shape == (3, 4, 4) and np.all(np.diff(s.weights) <= 0)  # heaviest first
    assert (s.assignment >= 0).all() and s.sizes.sum() == 600
    assert 0.99 < s.weights.sum() <= 1.0 + 1e-12  # raw mixture weights, not renormalised over the kept ones
    np.testing.assert_array_equal(s.sizes, np.bincount(s.assignment, minlength=3))


def test_label_mix_counts(blobs):
    pred = np.random.default_rng(5).integers(0, 7, len(blobs))
    failures = _failures(blobs.latents, blobs.true_label, pred)
    s = distill(failures, DistillConfig(**SMALL), num_classes=9)
    assert s.true_label_mix.shape == s.pred_label_mix.shape == (len(s), 9) and s.num_classes == 9
    for j in range(len(s)):
        members = s.assignment == j
        true_counts = np.bincount(blobs.true_label[members], minlength=9)
        np.testing.assert_array_equal(s.true_label_mix[j], true_counts)
        np.testing.assert_array_equal(s.pred_label_mix[j], np.bincount(pred[members], minlength=9))
    assert s.true_label_mix.sum(1).tolist() == s.sizes.tolist()
    # Each planted blob is one true label.
    assert ((s.true_label_mix > 0).sum(1) == 1).all()
    assert distill(failures, DistillConfig(**SMALL)).true_label_mix.shape[1] == 7  # max label + 1


def test_weight_threshold_drops_small_components():
    rng = np.random.default_rng(2)
    true = np.repeat([0, 1, 2], [495, 495, 10])  # a third blob of 1% of the codes
    codes = BLOB_CENTRES[true] + rng.normal(0, 0.3, (1000, 4))
    failures = _failures(codes, true)
    loose = distill(failures, DistillConfig(**SMALL, weight_threshold=0.001))
    strict = distill(failures, DistillConfig(**SMALL, weight_threshold=0.02))
    assert len(loose) == 3 and len(strict) == 2
    assert (strict.weights > 0.02).all() and (strict.assignment[true == 2] == -1).all()
    assert (strict.assignment[true < 2] >= 0).all()
    assert np.isin(strict.component_ids, loose.component_ids).all()
    empty = distill(failures, DistillConfig(**SMALL, weight_threshold=0.99))
    assert len(empty) == 0 and (empty.assignment == -1).all()
    assert empty.means.shape == (0, 4) and empty.covariances.shape == (0, 4, 4)
    assert empty.true_label_mix.shape == (0, 3) and empty.sizes.shape == (0,)


def _same(a: Scenarios, b: Scenarios) -> None:
    (arrays_a, meta_a), (arrays_b, meta_b) = a.to_arrays(), b.to_arrays()
    meta_a.pop("fit_seconds"), meta_b.pop("fit_seconds")
    assert meta_a == meta_b and arrays_a.keys() == arrays_b.keys()
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)


def test_down_sampling_without_replacement_and_deterministic(blobs):
    cfg = DistillConfig(**SMALL, max_samples=200, seed=7)
    first, again = distill(blobs, cfg), distill(blobs, cfg)
    assert first.n_fitted == 200 and first.fitted_index.shape == (200,)
    assert len(np.unique(first.fitted_index)) == 200 and (np.diff(first.fitted_index) > 0).all()
    assert first.assignment.shape == (600,) and (first.assignment >= 0).all()  # every failure assigned
    _same(first, again)
    other = distill(blobs, DistillConfig(**SMALL, max_samples=200, seed=8))
    assert not np.array_equal(other.fitted_index, first.fitted_index)


def test_k_is_capped_by_the_number_of_codes(blobs):
    few = _failures(blobs.latents[:6], blobs.true_label[:6])
    s = distill(few, DistillConfig(max_components=100))
    assert s.n_components == 6 and s.n_fitted == 6 and s.assignment.shape == (6,)


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_non_convergence_warns_and_is_recorded(blobs, backend):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = distill(blobs, DistillConfig(**SMALL, max_iter=2, backend=backend))
    # One warning, ours: the backend's own ConvergenceWarning is not issued a second time.
    assert [w.category for w in caught] == [DistillConvergenceWarning]
    assert "did not converge in 2 EM iterations" in str(caught[0].message)
    assert s.converged is False and s.n_iter == 2


def test_convergence_does_not_warn(blobs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert distill(blobs, DistillConfig(**SMALL)).converged


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(max_components=0), r"max_components must be an integer in \[1, 100000\]; got 0"),
    (dict(max_components=2.5), r"max_components must be an integer in \[1, 100000\]; got 2.5"),
    (dict(weight_threshold=1.0), r"weight_threshold must be a finite number in \[0, 1\); got 1.0"),
    (dict(weight_threshold=-0.1), r"weight_threshold must be a finite number in \[0, 1\); got -0.1"),
    (dict(max_samples=1), r"max_samples must be an integer in \[2, 1000000000\]; got 1"),
    (dict(covariance_type="diag"), r"covariance_type must be one of \['full'\]; got 'diag'"),
    (dict(max_iter=0), r"max_iter must be an integer in \[1, 1000000\]; got 0"),
    (dict(tol=-1.0), r"tol must be a finite number in \[0, 1000000\]; got -1.0"),
    (dict(tol=float("nan")), r"tol must be a finite number in \[0, 1000000\]; got nan"),
    (dict(n_init=0), r"n_init must be an integer in \[1, 1000\]; got 0"),
    (dict(reg_covar=-1e-6), r"reg_covar must be a finite number in \[0, 1000000\]; got -1e-06"),
    (dict(weight_concentration_prior=0.0),
     r"weight_concentration_prior must be None or a finite number in \(0, 1000000\]"),
    (dict(seed=-1), r"seed must be an integer in \[0, 4294967295\]; got -1"),
    (dict(seed=True), r"seed must be an integer in \[0, 4294967295\]; got True"),
    (dict(backend="cuml"), r"backend must be one of \['sklearn', 'torch'\]; got 'cuml'"),
    (dict(device="tpu"), r"device must be one of \['auto', 'cpu', 'cuda', 'mps'\] or 'cuda:N'; got 'tpu'"),
    (dict(threads=0), r"threads must be None or an integer in \[1, 4096\]; got 0"),
])
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillConfig(**kwargs)


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_failures_raise(n):
    failures = _failures(np.zeros((n, 4)), np.zeros(n, np.int64))
    match = rf"no unrestricted adversarial examples to distill: run identify with .*found {n} failures"
    with pytest.raises(ValueError, match=match):
        distill(failures, DistillConfig(**SMALL))


def test_bad_failures_raise(blobs):
    with pytest.raises(ValueError, match=r"failures.latents must be \(n, latent_dim\); got shape \(600,\)"):
        distill(_failures(blobs.latents[:, 0], blobs.true_label), DistillConfig(**SMALL))
    codes = blobs.latents.copy()
    codes[3, 1] = np.nan
    with pytest.raises(ValueError, match="failures.latents contains NaN or inf"):
        distill(_failures(codes, blobs.true_label), DistillConfig(**SMALL))
    with pytest.raises(ValueError, match=r"failures.true_label must be \(600,\) integers >= 0"):
        distill(_failures(blobs.latents, -blobs.true_label - 1), DistillConfig(**SMALL))
    match = r"num_classes must be an integer >= 3 \(largest label \+ 1\), got 2"
    with pytest.raises(ValueError, match=match):
        distill(blobs, DistillConfig(**SMALL), num_classes=2)


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_progress_reports_each_iteration_and_cancel_propagates(blobs, backend):
    events = []
    s = distill(blobs, DistillConfig(**SMALL, backend=backend), on_progress=events.append)
    assert [e.done for e in events[:-1]] == list(range(1, s.n_iter + 1))
    assert all(e.step == "distill" and e.total == 100 and "lower_bound" in e.metrics for e in events)
    assert events[-1].done == 100 and events[-1].metrics["scenarios"] == len(s)
    assert events[-2].metrics["lower_bound"] == pytest.approx(s.lower_bound)

    def cancel_at_two(progress):
        if progress.done == 2:
            raise Cancelled("stop")

    with pytest.raises(Cancelled, match="stop"):
        distill(blobs, DistillConfig(**SMALL, backend=backend), on_progress=cancel_at_two)


def test_to_arrays_from_arrays_round_trip(blobs, tmp_path):
    s = distill(blobs, DistillConfig(**SMALL, max_samples=300))
    arrays, meta = s.to_arrays()
    np.savez(tmp_path / "scenarios.npz", **arrays)
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with np.load(tmp_path / "scenarios.npz") as loaded:
        back = Scenarios.from_arrays(loaded, json.loads((tmp_path / "meta.json").read_text()))
    _same(s, back)
    assert back.fit_seconds == s.fit_seconds and isinstance(back.converged, bool)


def _flat(blobs: Failures) -> Failures:
    """The blobs with their last coordinate constant: every covariance is singular without a diagonal."""
    codes = np.array(blobs.latents, copy=True)
    codes[:, -1] = 1.0
    return _failures(codes, blobs.true_label, blobs.pred_label)


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_singular_covariances_retry_with_a_larger_reg_covar_and_say_so(blobs, backend):
    cfg = DistillConfig(**SMALL, reg_covar=0.0, backend=backend)
    with pytest.warns(UserWarning, match="singular with reg_covar=0; fitted with reg_covar=1e-10"):
        s = distill(_flat(blobs), cfg)
    assert s.reg_covar == pytest.approx(1e-10)
    assert len(s) == 3 and sorted(np.bincount(s.assignment[s.assignment >= 0])) == sorted(np.bincount(blobs.true_label))
    # The default diagonal is enough here: nothing is retried, and what was used is recorded.
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert distill(_flat(blobs), DistillConfig(**SMALL, backend=backend)).reg_covar == 1e-6


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_a_label_code_makes_the_prior_singular_and_the_retry_regularises_it(blobs, backend):
    # A conditional VAE's code ends in the label's code: one-hot columns summing to 1 make the codes'
    # covariance (every component's prior) singular, which no diagonal on the components' scatter cures.
    codes = np.hstack([blobs.latents, np.eye(3)[blobs.true_label]])
    labelled = _failures(codes, blobs.true_label, blobs.pred_label)
    with pytest.warns(UserWarning, match="singular with reg_covar=1e-06; fitted with reg_covar=0.0001"):
        s = distill(labelled, DistillConfig(**SMALL, backend=backend))
    assert s.reg_covar == 1e-4 and len(s) == 3
    assert adjusted_rand_score(blobs.true_label, s.assignment) == 1.0


def test_singular_covariances_past_the_ceiling_raise_what_was_tried(blobs):
    codes = np.zeros_like(blobs.latents)  # no variance at all: no diagonal below 1% of it exists
    with pytest.raises(ValueError, match=r"stayed singular with reg_covar 0 .*--max-components"):
        distill(_failures(codes, blobs.true_label), DistillConfig(**SMALL, reg_covar=0.0))


def test_scenarios_saved_before_reg_covar_was_recorded_load_with_nan(blobs):
    arrays, meta = distill(blobs, DistillConfig(**SMALL, max_samples=300)).to_arrays()
    del meta["reg_covar"]
    assert np.isnan(Scenarios.from_arrays(arrays, meta).reg_covar)
