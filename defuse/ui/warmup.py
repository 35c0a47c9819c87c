"""First-time costs paid in the background when the app starts, never behind a spinner.

UMAP's numba compile (~1.5 minutes on a fresh machine) runs in a low-priority child process as soon as the
server starts, into the same on-disk cache the `embed` jobs read, so the first UMAP map a user asks for
costs only its own fit. Once per server (``st.cache_resource``); skipped when the cache is already warm,
when umap is not installed, or when DEFUSE_NO_WARMUP is set (the tests set it).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import streamlit as st

from ..distill.umap_warmup import marker_path, numba_cache_dir

REPO_ROOT = Path(__file__).resolve().parents[2]


def _lower_priority() -> None:
    os.nice(10)  # the app and the user's jobs come first


@st.cache_resource(show_spinner=False)
def start_umap_warmup() -> Optional[subprocess.Popen]:
    """Start the warm-up once per server; None when there is nothing to warm."""
    if os.environ.get("DEFUSE_NO_WARMUP") or marker_path().exists() or importlib.util.find_spec("umap") is None:
        return None
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache_dir()), "NUMBA_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "defuse.distill.umap_warmup"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_lower_priority if os.name == "posix" else None)
