"""The latent map's 2-D projections: each is fitted on some codes, then places every other code.

A source image contributes up to M failure codes, all near-duplicates (its code plus small perturbations).
Fitted on every code, UMAP's neighbour graph links each code only to its own source's copies and lays each
source out as an isolated dot, so a scenario shows as scattered dots beside the blob of training codes
(issue #17). The map is therefore fitted on the training codes plus a few codes of each source
(:func:`per_source_rows`), and every other code is placed with the fitted projection: PCA's linear map; for
UMAP and t-SNE, the inverse-distance mean of the map positions of its nearest fitted codes in latent space.
UMAP's own ``transform`` placed them as readably on the demo (docs/runs/map-readability-cpu.json) but compiles
for about a minute in every fresh process, and t-SNE has none.

Progress counts codes placed. While UMAP optimises its layout, the fitted codes' share grows with its
epochs, read from the progress stream UMAP documents (``tqdm_kwds``); the other codes are placed in chunks.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FractionFn = Callable[[float], None]   # called with the share of the current stage that is done, in [0, 1]
PLACE_CHUNKS = 10                       # codes not fitted are placed in this many chunks (one progress step each)
PLACE_NEIGHBOURS = 5                    # fitted codes whose map positions place a code (UMAP, t-SNE)


@dataclass
class Fitted:
    """A projection fitted on some codes: their coordinates, and how to place other codes."""

    coords: np.ndarray                                 # (n_fit, 2)
    place: Callable[[np.ndarray], np.ndarray]          # (m, k) codes -> (m, 2) map coordinates


def nearest_placement(fit_codes: np.ndarray, coords: np.ndarray,
                      k: int = PLACE_NEIGHBOURS) -> Callable[[np.ndarray], np.ndarray]:
    """Place a code at the inverse-distance mean of the map positions ``coords`` (n, 2) of its ``k`` nearest
    ``fit_codes`` (n, latent); a near-duplicate of a fitted code lands next to it."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=min(k, len(fit_codes))).fit(fit_codes)

    def place(codes: np.ndarray) -> np.ndarray:
        dist, idx = index.kneighbors(codes)
        weight = 1.0 / (dist + 1e-6)   # an exact duplicate takes its twin's position
        return (coords[idx] * weight[..., None]).sum(1) / weight.sum(1, keepdims=True)
    return place


class _EpochStream(io.TextIOBase):
    """The text stream UMAP's tqdm bar writes to, set to print ``epoch/epochs``: each write reports the share
    of the optimisation done to ``target``."""

    def __init__(self, target: FractionFn):
        self.target = target

    def write(self, text: str) -> int:
        found = re.findall(r"(\d+)/(\d+)", text)
        if found and int(found[-1][1]) > 0:
            self.target(int(found[-1][0]) / int(found[-1][1]))
        return len(text)


def epoch_tqdm_kwds(stream: _EpochStream) -> dict:
    """UMAP's ``tqdm_kwds`` that turn its (silent by default) epoch bar into ``stream``'s reports."""
    return {"disable": False, "file": stream, "bar_format": "{n}/{total}", "mininterval": 0.25, "ascii": True}


def _umap(codes: np.ndarray, cfg, on_fraction: FractionFn) -> Fitted:
    # UMAP's numba functions compile for ~40 s in every fresh process unless numba may cache them on disk;
    # the app warms that cache in the background when it starts (umap_warmup).
    from .numba_cache import use_numba_cache

    use_numba_cache()
    import umap  # heavy import (numba): only when asked for

    neighbors = max(2, min(cfg.n_neighbors, len(codes) - 1))
    model = umap.UMAP(n_components=2, n_neighbors=neighbors, min_dist=cfg.min_dist, random_state=cfg.seed,
                      n_jobs=1, tqdm_kwds=epoch_tqdm_kwds(_EpochStream(on_fraction)),  # a seed makes UMAP serial
                      precomputed_knn=exact_neighbours(codes, neighbors))
    with warnings.catch_warnings():  # "no search index: transform unavailable": the map places codes itself
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        coords = model.fit_transform(codes)
    return Fitted(coords, nearest_placement(codes, coords))


def exact_neighbours(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's neighbour graph, exact: indices and distances (n, k), each code its own first neighbour.

    UMAP's own approximate search (pynndescent) compiled for 25 s in every fresh process (measured on 2 busy
    cores); scikit-learn's exact search over the few thousand codes a map is fitted on takes under a second."""
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=k - 1).fit(codes).kneighbors()  # no query: each code's others
    n = len(codes)
    return np.c_[np.arange(n), idx].astype(np.int64), np.c_[np.zeros(n), dist].astype(np.float32)


def _tsne(codes: np.ndarray, cfg, on_fraction: FractionFn) -> Fitted:
    from sklearn.manifold import TSNE

    perplexity = max(1.0, min(cfg.perplexity, (len(codes) - 1) / 3))  # t-SNE needs perplexity < n
    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=cfg.seed).fit_transform(codes)
    return Fitted(coords, nearest_placement(codes, coords))


def _pca(codes: np.ndarray, cfg, on_fraction: FractionFn) -> Fitted:
    from sklearn.decomposition import PCA

    model = PCA(n_components=2, random_state=cfg.seed).fit(codes)
    return Fitted(model.transform(codes), model.transform)


PROJECTIONS = {"umap": _umap, "tsne": _tsne, "pca": _pca}


def per_source_rows(sources: np.ndarray, per_source: int) -> np.ndarray:
    """Sorted positions of at most ``per_source`` entries of each value of ``sources`` (n,), evenly spread
    over that source's entries in their order (a source's failures come by ascending noise norm, so the
    picks span its small and large perturbations)."""
    sources = np.asarray(sources)
    order = np.argsort(sources, kind="stable")
    s = sources[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, len(s)])
    take = np.minimum(counts, per_source)
    picked = [order[starts[i < take] + (i * counts[i < take]) // take[i < take]] for i in range(per_source)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def project(codes: np.ndarray, fit_rows: np.ndarray, method: str, cfg, *,
            on_placed: Callable[[int], None] = lambda done: None) -> np.ndarray:
    """Coordinates (n, 2) float32 of ``codes`` (n, k): ``method`` fitted on ``codes[fit_rows]``, then every
    other code placed with it in :data:`PLACE_CHUNKS` chunks. ``on_placed(done)`` counts codes placed so far
    (fitted codes count as their fit progresses), only when it grew; it may raise to cancel."""
    on_placed = _growing(on_placed)
    fit_rows = np.asarray(fit_rows, np.int64)
    rest = np.setdiff1d(np.arange(len(codes)), fit_rows)
    fitted = PROJECTIONS[method](codes[fit_rows], cfg, lambda f: on_placed(int(f * len(fit_rows))))
    out = np.empty((len(codes), 2), np.float32)
    out[fit_rows] = fitted.coords
    done = len(fit_rows)
    on_placed(done)
    for chunk in np.array_split(rest, min(PLACE_CHUNKS, len(rest))) if len(rest) else []:
        out[chunk] = fitted.place(codes[chunk])
        done += len(chunk)
        on_placed(done)
    return out


def _growing(report: Callable[[int], None]) -> Callable[[int], None]:
    """``report`` called only with counts larger than the last (stages may repeat their last count)."""
    last = [0]  # the caller reported 0 when it started

    def call(done: int) -> None:
        if done > last[0]:
            last[0] = done
            report(done)
    return call
