"""Speed of the distillation mixture: defuse's torch backend against scikit-learn (a script, not a test).

Both fit the same synthetic codes (a mixture of Gaussians in latent space, like a β-VAE's codes of
failures) with the same settings (paper defaults: K = 100, full covariances, tol 1e-3, 100
iterations at most) and the same initialisation: scikit-learn's k-means with the same seed, which
both run identically. Both are capped to the same number of CPU threads.

    python benchmarks/distill_speed.py --quick            # 10k codes only
    python benchmarks/distill_speed.py --sizes 10000 50000

The last line is ``speedup_vs_sklearn: Z``, Z = scikit-learn's time / ours on the largest size.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from defuse.distill.dpgmm import DPGaussianMixture, limit_threads  # noqa: E402
from defuse.distill.scenarios import DistillConfig  # noqa: E402


def synthetic_codes(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """(n, dim) float32 codes: unequal, anisotropic Gaussian clusters around a N(0, I)-like cloud."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.5, (clusters, dim))
    shapes = rng.normal(0.0, 1.0, (clusters, dim, dim)) * rng.uniform(0.05, 0.25, (clusters, 1, 1))
    label = rng.choice(clusters, size=n, p=rng.dirichlet(np.full(clusters, 2.0)))
    noise = np.einsum("nij,nj->ni", shapes[label], rng.normal(size=(n, dim)))
    return (centres[label] + noise).astype(np.float32)


def _timed(fit):
    wall, cpu = time.perf_counter(), time.process_time()
    model = fit()
    return model, time.perf_counter() - wall, time.process_time() - cpu


def compare(codes: np.ndarray, k: int, seed: int, threads: int, device: str) -> dict:
    """Fit both on the same codes; return their times and how far apart their results are."""
    ours = DPGaussianMixture(k, DistillConfig(seed=seed, threads=threads), device=device)
    ref = BayesianGaussianMixture(n_components=k, covariance_type="full", random_state=seed,
                                  weight_concentration_prior_type="dirichlet_process")
    x = codes.astype(np.float64)  # distill fits float64 with both backends
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded in converged_ instead
        ours, ours_s, ours_cpu = _timed(lambda: ours.fit(x))
        with limit_threads(threads):
            ref, ref_s, ref_cpu = _timed(lambda: ref.fit(x))
            ref_labels = ref.predict(x)
    return dict(ours=(ours, ours_s, ours_cpu), sklearn=(ref, ref_s, ref_cpu),
                lb_rel=abs(ours.lower_bound_ - ref.lower_bound_) / abs(ref.lower_bound_),
                ari=adjusted_rand_score(ref_labels, ours.predict(x)))


def _line(name: str, model, wall: float, cpu: float, eps: float) -> str:
    return (f"  {name:8s} {wall:8.2f} s (cpu {cpu:7.2f} s)  iterations {model.n_iter_:3d}  "
            f"converged {str(model.converged_):5s}  lower bound {model.lower_bound_:.6g}  "
            f"scenarios (weight > {eps}) {int((model.weights_ > eps).sum())}")


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--quick", action="store_true", help="10k codes only")
    parser.add_argument("--dim", type=int, default=10, help="latent dimension (paper: 10 or 15)")
    parser.add_argument("--clusters", type=int, default=30, help="planted clusters")
    parser.add_argument("--components", type=int, default=100, help="K (paper: 100)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, both implementations")
    parser.add_argument("--device", default="cpu", help="torch device for ours (cpu, cuda)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [10_000] if args.quick else args.sizes
    # Warm-up: torch's and scikit-learn's first calls load libraries; not part of a fit's cost.
    warm = synthetic_codes(500, args.dim, 5, args.seed)
    compare(warm, 5, args.seed, args.threads, args.device)
    speedup = float("nan")
    for n in sizes:
        codes = synthetic_codes(n, args.dim, args.clusters, args.seed)
        r = compare(codes, args.components, args.seed, args.threads, args.device)
        speedup = r["sklearn"][1] / r["ours"][1]
        print(f"n={n} dim={args.dim} K={args.components} threads={args.threads} device={args.device} "
              f"(k-means init, random_state={args.seed}, identical in both)")
        print(_line("torch", *r["ours"], 0.01))
        print(_line("sklearn", *r["sklearn"], 0.01))
        print(f"  lower-bound relative difference {r['lb_rel']:.2e}  ARI {r['ari']:.4f}  "
              f"speedup {speedup:.2f}x (cpu time {r['sklearn'][2] / r['ours'][2]:.2f}x)", flush=True)
    print(f"speedup_vs_sklearn: {speedup:.2f}")
    return speedup


if __name__ == "__main__":
    main()
