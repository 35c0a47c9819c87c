"""The Ray backend object that ``identify`` and ``correct`` accept as ``backend=``.

It only replaces their compute loops (the chunk search, the training of λ groups); everything else,
the stores, the progress events, the selection, runs on the driver as with the local backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..runtime.words import option
from .cluster import cluster_info


@dataclass(frozen=True)
class WorkerPool:
    """How many workers, on which kind of device, for one step (from the cluster's resources)."""

    address: Optional[str]
    workers: int
    gpu: bool
    cluster: str            # ClusterInfo.describe()

    @property
    def device_type(self) -> str:
        return "cuda" if self.gpu else "cpu"

    def describe(self) -> dict:
        return {"backend": "ray", "ray_workers": self.workers, "ray_cluster": self.cluster,
                "device": self.device_type}


class RayBackend:
    """Identification on Ray Data actors and the λ sweep as Ray tasks, at ``address`` (None: local)."""

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"{option('ray-workers')} must be an integer >= 1 (or left out); got {workers!r}")
        self.address, self.workers = address, workers

    def pool(self) -> WorkerPool:
        """Connects on first use. One worker per GPU when the cluster has GPUs, else one per CPU."""
        info = cluster_info(self.address)
        gpu = info.gpus >= 1
        default = int(info.gpus) if gpu else max(1, int(info.cpus))
        return WorkerPool(self.address, self.workers or default, gpu, info.describe())

    # --- identify ---------------------------------------------------------------------------------
    def plan_settings(self, plan, cfg) -> dict:
        """The chunk store's device and precision: the workers', so resumed chunks match fresh ones."""
        kind = self.pool().device_type
        return {"device": kind, "precision": plan.precision if kind == plan.device.type else cfg.precision}

    def search(self, clf, dec, sources, cfg, plan, store, on_progress):
        from .identify_ray import search

        return search(clf, dec, sources, cfg, plan, store, on_progress, pool=self.pool())

    # --- correct ----------------------------------------------------------------------------------
    def train_groups(self, groups, template, inp, cfg, dev, track):
        from .sweep_ray import train_groups

        return train_groups(groups, template, inp, cfg, track, pool=self.pool())
