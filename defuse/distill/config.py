"""Settings of the distill package, each declared once (:mod:`defuse.runtime.settings`): the 2-D map's."""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.settings import check_settings, setting

PROJECTION_NAMES = ("umap", "tsne", "pca")   # the keys of defuse.distill.projections.PROJECTIONS
MAX_POINTS = 10**8


@dataclass(frozen=True)
class EmbedConfig:
    """Settings of the 2-D map."""

    # UMAP by default: fitted per source, it shows the demo's scenarios as clusters (10-NN from other sources in
    # the same scenario: 74%, PCA 17%, UMAP fitted on every code 9%; docs/runs/map-readability-cpu.json).
    method: str = setting("umap", choices=PROJECTION_NAMES, label="“Projection”",
                          help="the projection: umap, tsne or pca")
    max_points: int = setting(60_000, low=10, high=MAX_POINTS, label="“Points at most”",
                              help="codes projected at most (down-sampled), training codes included")
    train_points: int = setting(5_000, low=0, high=MAX_POINTS, label="“Training codes”",
                                help="training codes (the background) at most")
    seed: int = setting(0, low=0, high=2**32 - 1, help="seed of the down-sampling and the projection")
    n_neighbors: int = setting(15, low=2, high=10_000, help="UMAP's neighbours")
    min_dist: float = setting(0.1, low=0.0, high=1.0, help="UMAP's minimum distance")
    perplexity: float = setting(30.0, low=0.0, low_open=True, high=10_000.0, help="t-SNE's perplexity")
    # Failure codes of one source image the projection is fitted on (with the training codes); every other code
    # is then placed with the fitted projection. 0 fits on every code (UMAP then draws each source as a dot).
    fit_per_source: int = setting(3, low=0, high=10_000, help="failure codes per source image the projection is "
                                  "fitted on, with the training codes; the others are then placed on the fitted map "
                                  "(0: fitted on every code, which draws each source's near-duplicate codes as a dot)")

    def __post_init__(self):
        check_settings(self)

