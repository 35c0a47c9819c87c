"""τ chosen from the data, per failure scenario (issue #21).

The paper sets τ per dataset "because the samples from each of the failure scenarios appear to be in
the same class using these values" (appendix B: 0.5 for MNIST, 0.01 for SVHN and German signs). One fixed τ
is too wide for a tight scenario and too narrow for a broad one: measured at τ=0.5 on the MNIST test set,
a scenario's samples carried its label only 53% of the time, so correction learnt other classes' images
under the scenario's label. Here each scenario gets the largest τ of a grid at which a reader (the
automatic reviewer) reads at least ``target`` of its samples as the scenario's label: the label its
samples carry at the smallest τ, next to the scenario's mean.

The samples that choose τ come from their own stream (:func:`~defuse.distill.sampling.scenario_stream`
"tau"), apart from the review, D_f, failure-validation, failure-test and suite draws. One draw of standard
normal noise serves every τ (scaled by √τ), so a wider τ spreads the very same samples further out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ..nets.inference import decode_latents, on_device
from ..runtime.checks import check_int
from ..runtime.devices import resolve_device
from .sampling import (
    _check_gaussian,
    _check_tau,
    _cholesky,
    _stream,
    scenario_arrays,
    scenario_stream,
)

TAU_GRID = (1.0, 0.5, 0.25, 0.1, 0.05, 0.02, 0.01)  # widest first; the paper's 0.5 and 0.01 are on it
TAU_TARGET = 0.9   # share of samples that must carry the scenario's label
TAU_SAMPLES = 64   # samples per scenario and τ
TAU_AUTO = "auto"  # the word that asks for τ per scenario (review_step, `label --tau auto`)


@dataclass(frozen=True)
class TauSearch:
    """How τ is chosen: the grid (tried widest first), the share of samples that must carry the scenario's
    label, samples per τ, and the seed of the "tau" streams."""

    grid: tuple = TAU_GRID
    target: float = TAU_TARGET
    n: int = TAU_SAMPLES
    seed: int = 0

    def __post_init__(self):
        grid = tuple(sorted({_check_tau(t) for t in self.grid}, reverse=True)) if self.grid else ()
        if not grid:
            raise ValueError(f"grid must hold at least one τ > 0; got {self.grid!r}")
        object.__setattr__(self, "grid", grid)
        if isinstance(self.target, bool) or not isinstance(self.target, (int, float)) or not 0 < self.target <= 1:
            raise ValueError(f"target must be a share in (0, 1]; got {self.target!r}")
        check_int("n", self.n, 1)
        check_int("seed", self.seed, 0)


@dataclass(frozen=True)
class TauChoice:
    """One scenario's τ: the widest τ whose samples carry ``label`` at least ``target`` of the time (else the
    narrowest τ of the grid, ``reached`` False), and the share measured at every τ of the grid."""

    row: int
    tau: float
    label: int
    purity: float          # the share at the chosen τ
    reached: bool
    purities: tuple        # (len(grid),) the share at each τ of the grid, widest first

    def to_dict(self) -> dict:
        return asdict(self) | {"purities": list(self.purities)}


@torch.no_grad()
def choose_taus(vae: nn.Module, read: Callable[[torch.Tensor], np.ndarray], scenarios,
                search: TauSearch = TauSearch(), *, device="auto") -> list[TauChoice]:
    """Each scenario row's τ.

    Parameters
    ----------
    vae : decodes codes (n, k) to images.
    read : images (n, C, H, W) in [0, 1] -> labels (n,) int64, e.g. the reviewer's majority vote.
    scenarios : ``means`` (m, k) and ``covariances`` (m, k, k), or that pair.
    """
    means, covs = scenario_arrays(scenarios)
    dev, out = resolve_device(device), []
    with on_device(vae, dev):
        for j in range(len(means)):
            mean, cov = _check_gaussian(means[j], covs[j])
            eps = _stream(scenario_stream(search.seed, j, "tau")).standard_normal((search.n, mean.size))
            spread = eps @ _cholesky(cov).T
            codes = np.concatenate([mean + math.sqrt(t) * spread for t in search.grid]).astype(np.float32)
            images = decode_latents(vae, codes, device=dev, batch_size=512)
            labels = np.asarray(read(images)).reshape(len(search.grid), search.n)
            label = int(np.bincount(labels[-1]).argmax())  # what the scenario shows next to its mean
            purities = tuple(float(np.mean(row == label)) for row in labels)
            good = [i for i, p in enumerate(purities) if p >= search.target]
            i = good[0] if good else len(search.grid) - 1
            out.append(TauChoice(j, search.grid[i], label, purities[i], bool(good), purities))
    return out
