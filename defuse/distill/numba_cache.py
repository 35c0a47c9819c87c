"""Where numba keeps UMAP's compiled functions between processes: the projection and the warm-up both point it
there (:mod:`defuse.distill.projections`, :mod:`defuse.distill.umap_warmup`)."""

from __future__ import annotations

import os
from pathlib import Path


def numba_cache_dir() -> Path:
    """Where numba keeps compiled functions between processes (NUMBA_CACHE_DIR, else under ~/.cache)."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or Path.home() / ".cache" / "defuse" / "numba")


def use_numba_cache() -> Path:
    """Point numba at the shared cache; call before umap (and numba) is imported."""
    path = numba_cache_dir()
    os.environ["NUMBA_CACHE_DIR"] = str(path)
    return path
