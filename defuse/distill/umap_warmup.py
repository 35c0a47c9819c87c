"""Pay UMAP's first-time cost ahead of need: compile its numba functions into the on-disk cache.

A fresh machine spends a minute or more compiling UMAP before its first map. The app
starts ``python -m defuse.distill.umap_warmup`` in the background when it starts, so that compile happens
while the user looks around, not behind the Explore page's spinner. The warm-up fits UMAP on random
codes shaped like a real map (float32, thousands of them, through :func:`defuse.distill.embed.embed_codes`
as a map job does) and leaves a marker naming the versions, so later starts skip it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .numba_cache import numba_cache_dir, use_numba_cache  # noqa: F401  (use_numba_cache: re-exported)

# As many codes as a small map is fitted on.
WARM_POINTS = 5000


def marker_path() -> Path:
    """The marker of a finished warm-up for the installed umap and numba (a new version compiles anew)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tag = f"umap-{version('umap-learn')}-numba-{version('numba')}"
    except PackageNotFoundError:
        tag = "unknown-versions"
    return numba_cache_dir() / f"warm-{tag}"


def warm_up(points: int = WARM_POINTS, dims: int = 10) -> Path:
    """Fit UMAP once on random codes (compiling and caching numba's functions); returns the marker."""
    use_numba_cache()
    from .embed import EmbedConfig, embed_codes

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(points, dims)).astype(np.float32)
    embed_codes(codes[: points // 2], codes[points // 2:], EmbedConfig(method="umap", max_points=points,
                                                                       train_points=points))
    marker = marker_path()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("UMAP's numba functions compiled into this cache\n")
    return marker


if __name__ == "__main__":
    print(warm_up())
