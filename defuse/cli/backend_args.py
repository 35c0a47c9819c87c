"""The CLI's choice of backend: ``--backend``, ``--ray-address``, ``--ray-workers`` (argparse stays in cli/)."""

from __future__ import annotations

from ..distributed.backend import RayBackend
from ..distributed.cluster import BACKENDS, check_address, import_ray


def add_backend_args(p) -> None:
    g = p.add_argument_group("backend")
    g.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local (this process) or ray (Ray Data actors / Ray tasks; results are the same)")
    g.add_argument("--ray-address", default=None,
                   help="HOST:PORT of a running cluster (`ray start --head` prints it); default: a local instance")
    g.add_argument("--ray-workers", type=int, default=None,
                   help="parallel workers (default: one per GPU of the cluster, else one per CPU)")


def backend_from_args(args):
    """The Ray backend the options ask for, or None for the local backend."""
    if getattr(args, "backend", "local") == "local":
        if getattr(args, "ray_address", None):
            raise ValueError("--ray-address needs --backend ray")
        return None
    import_ray()
    if args.ray_address:
        check_address(args.ray_address)   # before any work: a typo fails in seconds, not after loading data
    return RayBackend(address=args.ray_address, workers=args.ray_workers)
