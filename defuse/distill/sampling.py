"""Sampling failure scenarios (paper §3.2.3, appendix A algorithm 2).

A failure scenario j is a Gaussian (μ_j, Σ_j) in the β-VAE's latent space. Its instances are latent
codes drawn from N(μ_j, τ·Σ_j) and decoded: τ controls their diversity, tight enough that they all
show one class (the paper: τ = 0.5 for MNIST, 0.01 for SVHN and German signs). The same draws serve
the annotators (Q = 10 per scenario, §4.1) and correction (256 fine-tuning and 256 test images
per scenario, §4.1).

Randomness is per scenario and per purpose (:func:`scenario_stream`): the annotators' review samples,
D_f, failure-validation and failure-test draws and the regression suite's samples of scenario j each have
their own stream, so no sample serves two purposes and adding or removing other scenarios never changes
them. Decoding runs under ``torch.no_grad`` (not ``inference_mode``): the images are ordinary tensors that
fine-tuning can later train on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ..nets.inference import classify, decode_latents, on_device
from ..runtime.checks import check_int, is_int
from ..runtime.devices import resolve_device
from .config import ScenarioDraw  # noqa: F401  (re-exported: the draws' settings, declared with the others)

PAPER_TAU = {"mnist": 0.5, "svhn": 0.01, "gtsrb": 0.01}  # §4.1: sample diversity per dataset
_JITTERS = (0.0, 1e-10, 1e-8, 1e-6)  # relative to the mean variance, tried in turn for a singular Σ
_SYMMETRY_TOL = 1e-6

Seed = int | Sequence[int] | np.random.SeedSequence

# Spawn keys of the correction splits and the regression suite. numpy pads a short entropy with zeros,
# so the streams (seed, j) and (seed, j, 0) were one stream: the review samples were the first samples of
# D_f. A spawn key is hashed apart from the entropy (numpy pads the entropy to its pool size first), which
# keeps these apart from each other and from the review stream.
STREAM_KEYS = {"finetune": 1, "failure-val": 2, "failure-test": 3, "suite": 4, "tau": 5}
STREAMS = ("review", *STREAM_KEYS)
_SPLIT_STREAMS = ("finetune", "failure-val", "failure-test")
_DECODE_BATCH = 512  # codes decoded at once: bounds memory, never changes the images


@dataclass
class ScenarioSamples:
    """Decoded samples of one failure scenario and the classifier's view of them."""

    latents: np.ndarray       # (n, k) float32: codes drawn from N(μ, τ·Σ)
    images: torch.Tensor      # (n, C, H, W) float32 in [0, 1], on the CPU, not an inference tensor
    predictions: np.ndarray   # (n,) int64: the classifier's label for each image
    confidence: np.ndarray    # (n,) float32: the classifier's max softmax probability
    probs: np.ndarray         # (n, C) float32: the classifier's softmax

    def __len__(self) -> int:
        return int(self.latents.shape[0])


@dataclass
class DrawnSplits:
    """The decoded images of one failure scenario's three correction draws, with the scenario's true label: the
    raw material of the correction's :class:`defuse.correct.failure_sets.FailureSet` (which adds the reviewer's
    per-sample labels and what its agreement filter kept)."""

    scenario: int
    label: int
    finetune: torch.Tensor    # (n_finetune, C, H, W) float32 in [0, 1]: the failure instances D_f
    val: torch.Tensor         # (n_val, C, H, W): for choosing λ
    test: torch.Tensor        # (n_test, C, H, W): held out, failure-scenario test accuracy


class ScenarioCodes(NamedTuple):
    """The codes :func:`sample_scenarios` drew (a :class:`ScenarioDraw` is how to draw, this is what was drawn)."""

    latents: np.ndarray       # (m * n, k) float32, scenario by scenario
    scenario_ids: np.ndarray  # (m * n,) int64: the row j of the scenario each code came from


# ------------------------------------------------------------------ validation

Taus = float | tuple | None  # one τ for every scenario, or one per scenario row


def check_taus(tau) -> float | tuple:
    """A valid τ, or a tuple of them (one per scenario row; a list is taken as one)."""
    if isinstance(tau, (list, tuple)):
        if not tau:
            raise ValueError("tau per scenario must hold one τ per scenario row; got none")
        return tuple(_check_tau(t) for t in tau)
    return _check_tau(tau)


def tau_of(tau, j: int) -> float:
    """Scenario row ``j``'s τ from one τ or a tuple of them."""
    if isinstance(tau, tuple):
        if not 0 <= j < len(tau):
            raise ValueError(f"no τ for scenario row {j}: {len(tau)} per-scenario τ given (distill again, then "
                             "choose τ again)")
        return tau[j]
    return _check_tau(tau)


def _check_tau(tau) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) or not math.isfinite(tau) \
            or tau <= 0:
        raise ValueError(f"tau must be a finite number > 0 (the paper: 0.5 for MNIST, 0.01 for SVHN/GTSRB); "
                         f"got {tau!r}")
    return float(tau)


def _check_gaussian(mean, covariance) -> tuple[np.ndarray, np.ndarray]:
    mean, cov = np.asarray(mean, dtype=np.float64), np.asarray(covariance, dtype=np.float64)
    if mean.ndim != 1 or mean.size == 0:
        raise ValueError(f"mean must be a non-empty 1-D array (k,); got shape {mean.shape}")
    k = mean.size
    if cov.shape != (k, k):
        raise ValueError(f"covariance must be (k, k) = ({k}, {k}) to match the mean; got shape {cov.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise ValueError("mean and covariance must be finite; got NaN or infinite values")
    scale = max(float(np.abs(cov).max()), 1e-300)
    if np.abs(cov - cov.T).max() > _SYMMETRY_TOL * scale:
        raise ValueError(f"covariance must be symmetric; largest asymmetry {np.abs(cov - cov.T).max():.3g}")
    return mean, (cov + cov.T) / 2


def _cholesky(cov: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of Σ; a singular (PSD) Σ gets a tiny diagonal jitter, an indefinite one an error."""
    scale = max(float(np.mean(np.diag(cov))), 1e-12)
    for jitter in _JITTERS:
        try:
            return np.linalg.cholesky(cov + jitter * scale * np.eye(len(cov)))
        except np.linalg.LinAlgError:
            continue
    smallest = float(np.linalg.eigvalsh(cov).min())
    raise ValueError(f"covariance is not positive semi-definite (smallest eigenvalue {smallest:.3g}, even "
                     f"with a jitter of {_JITTERS[-1]:g} x its mean variance); check the distilled scenarios")


def scenario_arrays(scenarios) -> tuple[np.ndarray, np.ndarray]:
    """``scenarios``: an object with ``means`` (m, k) and ``covariances`` (m, k, k), or that pair."""
    means, covs = (scenarios.means, scenarios.covariances) if hasattr(scenarios, "means") else scenarios
    means, covs = np.asarray(means, dtype=np.float64), np.asarray(covs, dtype=np.float64)
    if means.ndim != 2 or covs.shape != (means.shape[0], means.shape[1], means.shape[1]):
        raise ValueError(f"scenarios need means (m, k) and covariances (m, k, k); got shapes {means.shape} "
                         f"and {covs.shape}")
    return means, covs


def scenario_stream(seed: int, j: int, purpose: str) -> np.random.SeedSequence:
    """The random stream of scenario row ``j``'s draws for one ``purpose`` (one of :data:`STREAMS`).

    "review" is the stream ``(seed, j)`` the annotators' samples have always come from, so labels
    recorded in existing projects still describe the images shown; the correction splits and the
    regression suite ("suite") use spawn keys (:data:`STREAM_KEYS`), distinct from it and from each other.
    """
    check_int("seed", seed, 0)
    check_int("j", j, 0)
    if purpose == "review":
        return np.random.SeedSequence((int(seed), int(j)))
    if purpose not in STREAM_KEYS:
        raise ValueError(f"purpose must be one of {list(STREAMS)}; got {purpose!r}")
    return np.random.SeedSequence(int(seed), spawn_key=(STREAM_KEYS[purpose], int(j)))


def _stream(seed: Seed) -> np.random.Generator:
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise ValueError(f"seed must be an integer >= 0 or a sequence of them; got {seed!r}") from e


# ------------------------------------------------------------------ sampling latent codes

def sample_scenario(mean, covariance, n: int, *, tau: float, seed: Seed) -> np.ndarray:
    """Draw ``n`` latent codes from N(μ, τ·Σ) (algorithm 2, line 6).

    Parameters
    ----------
    mean : (k,) array, μ.
    covariance : (k, k) symmetric positive semi-definite array, Σ.
    n : number of codes.
    tau : sample diversity τ > 0.
    seed : an int, a sequence of ints, or a :func:`scenario_stream`.

    Returns
    -------
    (n, k) float32 array.
    """
    mean, cov = _check_gaussian(mean, covariance)
    return _sample(mean, _cholesky(cov), check_int("n", n, 1), _check_tau(tau), _stream(seed))


def _sample(mean: np.ndarray, chol: np.ndarray, n: int, tau: float, rng: np.random.Generator) -> np.ndarray:
    eps = rng.standard_normal((n, mean.size))
    return (mean + math.sqrt(tau) * eps @ chol.T).astype(np.float32)


def sample_scenarios(scenarios, n_per_scenario: int, *, tau: float, seed: int) -> ScenarioCodes:
    """``n_per_scenario`` codes from every scenario; row j's come from its review stream.

    Scenario j's codes equal ``sample_scenario(means[j], covariances[j], n, tau=tau,
    seed=scenario_stream(seed, j, "review"))``
    whatever the other scenarios are.

    Parameters
    ----------
    scenarios : object with ``means`` (m, k) and ``covariances`` (m, k, k) (e.g. ``distill.Scenarios``),
        or the pair ``(means, covariances)``.

    Returns
    -------
    ScenarioCodes: ``latents`` (m * n, k) float32 and ``scenario_ids`` (m * n,) int64.
    """
    means, covs = scenario_arrays(scenarios)
    n, tau = check_int("n_per_scenario", n_per_scenario, 1), check_taus(tau)
    check_int("seed", seed, 0)
    draws = [sample_scenario(means[j], covs[j], n, tau=tau_of(tau, j), seed=scenario_stream(seed, j, "review"))
             for j in range(len(means))]
    latents = np.concatenate(draws) if draws else np.zeros((0, means.shape[1]), np.float32)
    return ScenarioCodes(latents, np.repeat(np.arange(len(means), dtype=np.int64), n))


# ------------------------------------------------------------------ decoding

def render_scenario(vae: nn.Module, classifier: nn.Module, latents: np.ndarray, *, device="auto",
                    batch_size: int = _DECODE_BATCH) -> ScenarioSamples:
    """Decode a scenario's codes (from :func:`sample_scenario`) and let the classifier label them.

    Returns
    -------
    ScenarioSamples: latents (n, k), images (n, C, H, W) float32 in [0, 1] on the CPU, predictions (n,),
    confidence (n,), probs (n, C).
    """
    latents = np.asarray(latents, dtype=np.float32)
    dev = resolve_device(device)
    batch_size = check_int("batch_size", batch_size, 1)
    with on_device(vae, dev), on_device(classifier, dev):
        images = decode_latents(vae, latents, device=dev, batch_size=batch_size)
        _, probs = classify(classifier, images, device=dev, batch_size=batch_size)
    conf, preds = probs.max(dim=1)
    return ScenarioSamples(latents, images, preds.numpy().astype(np.int64), conf.numpy().astype(np.float32),
                           probs.numpy().astype(np.float32))


def draw_failure_splits(vae: nn.Module, scenarios, j: int, label: int, draw: ScenarioDraw, *,
                        device="auto") -> DrawnSplits:
    """The fine-tuning, validation and test images of failure scenario ``j``, ``draw.n`` each (§4.1: 256).

    Each split has its own stream (:func:`scenario_stream` "finetune", "failure-val", "failure-test"),
    distinct from each other and from the annotators' review stream.

    Parameters
    ----------
    scenarios : object with ``means`` (m, k) and ``covariances`` (m, k, k), or that pair.
    j : row of the failure scenario, 0 <= j < m.
    label : its true label (the annotators' majority).
    draw : samples per split, τ (must be set) and seed.
    """
    means, covs = scenario_arrays(scenarios)
    if not is_int(j) or not 0 <= j < len(means):
        raise ValueError(f"j must be a scenario row in 0..{len(means) - 1}; got {j!r}")
    check_int("label", label, 0)
    mean, cov = _check_gaussian(means[j], covs[j])
    chol, tau = _cholesky(cov), tau_of(check_taus(draw.tau), int(j))
    latents = np.concatenate([_sample(mean, chol, draw.n, tau, _stream(scenario_stream(draw.seed, int(j), purpose)))
                              for purpose in _SPLIT_STREAMS])
    dev = resolve_device(device)
    with on_device(vae, dev):
        images = decode_latents(vae, latents, device=dev, batch_size=_DECODE_BATCH)
    finetune, val, test = torch.split(images, draw.n)
    return DrawnSplits(int(j), int(label), finetune, val, test)


@dataclass(frozen=True)
class ReviewSamples:
    """The samples annotators see of each failure scenario: row j's come from N(μ_j, τ·Σ_j) on the stream
    ``(seed, j)``, decoded by the VAE and labelled by the classifier, so every annotator, the automatic
    reviewer and the pages see the same images (D_f's and the suite's streams differ from them)."""

    vae: nn.Module
    classifier: nn.Module
    scenarios: object     # ``means`` (m, k) and ``covariances`` (m, k, k), or that pair
    tau: float | tuple    # one τ, or one per scenario row
    seed: int = 0

    def __len__(self) -> int:
        return len(scenario_arrays(self.scenarios)[0])

    def render(self, j: int, n: int, *, device="auto") -> ScenarioSamples:
        """The first ``n`` samples of scenario row ``j``."""
        means, covs = scenario_arrays(self.scenarios)
        latents = sample_scenario(means[j], covs[j], n, tau=tau_of(check_taus(self.tau), int(j)),
                                  seed=scenario_stream(self.seed, int(j), "review"))
        return render_scenario(self.vae, self.classifier, latents, device=device)
