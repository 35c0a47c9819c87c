"""Connecting to Ray: a local instance by default, or a running cluster at ``--ray-address``.

Ray is imported only here and in the Ray backends, so the local backend never needs it. Models,
data and this package reach the workers through Ray (the object store and ``runtime_env``): no
shared filesystem is assumed, and results come back to the driver, which writes the workspace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..runtime.words import option

BACKENDS = ("local", "ray")
DEFAULT_RAY_PORT = 6379
CONNECT_TIMEOUT_S = 3.0
_PACKAGE_DIR = Path(__file__).resolve().parents[1]   # defuse/: on a cluster, shipped to every worker


@dataclass(frozen=True)
class ClusterInfo:
    """What the driver is connected to: shown in the app's sidebar and recorded in metrics."""

    address: str          # "local" for an instance this process started
    cpus: float
    gpus: float
    nodes: int

    def describe(self) -> str:
        gpus = f", {self.gpus:g} GPU{'s' if self.gpus != 1 else ''}" if self.gpus else ""
        where = "a local Ray instance" if self.address == "local" else f"Ray at {self.address}"
        return f"{where}: {self.nodes} node{'s' if self.nodes != 1 else ''}, {self.cpus:g} CPUs{gpus}"


def import_ray():
    """``ray``, or a ValueError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError("the Ray backend needs the `ray` package: pip install 'ray[data]>=2.60' "
                         f"(or use {option('backend-local')})") from None
    return ray


def check_address(address: str) -> tuple[str, int]:
    """(host, port) of ``address`` ("HOST[:PORT]" or "ray://HOST:PORT") once something answers there.

    ray.init itself retries a dead address for minutes; this fails in seconds with the fix.
    """
    text = address.strip()
    bare = text.removeprefix("ray://")
    host, _, port_text = bare.rpartition(":") if ":" in bare else (bare, "", str(DEFAULT_RAY_PORT))
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{option('ray-address')} must look like HOST:PORT (e.g. 10.0.0.5:6379, as printed by "
                         f"`ray start --head`) or ray://HOST:10001; got {address!r}")
    try:
        with socket.create_connection((host, int(port_text)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise ValueError(f"no Ray cluster answers at {host}:{port_text} ({e.strerror or e}); start one with "
                         "`ray start --head` on the head node and pass the address it prints, "
                         f"or leave {option('ray-address')} empty to start a local Ray instance") from None
    return host, int(port_text)


def init_kwargs(*, num_cpus: Optional[int] = None) -> dict:
    """ray.init options for a quiet local instance: no dashboard, a short temp dir (Unix sockets
    must fit in 107 bytes), worker logs kept out of the job's output.

    Its workers import defuse from this checkout through PYTHONPATH, which they inherit: without a
    ``runtime_env`` they can be Ray's pre-started idle workers (measured: shipping defuse as a
    ``py_modules`` zip instead made a 40-image identify take 21 s, not 13 s).
    """
    path = [str(_PACKAGE_DIR.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    return {"num_cpus": num_cpus, "include_dashboard": False, "log_to_driver": False,
            "logging_level": logging.ERROR, "configure_logging": True,
            "_temp_dir": tempfile.mkdtemp(prefix="ray", dir="/tmp" if os.path.isdir("/tmp") else None)}


_connected = {"address": None}   # the address this process joined (None: a local instance)


def connect(address: Optional[str] = None):
    """Connect once per process; returns the ray module.

    A later call for the same address (or for none, while connected anywhere, e.g. to the test
    session's instance) reuses the connection; another address disconnects and joins that one.
    """
    ray = import_ray()
    address = None if address in (None, "", "local") else address.strip()
    if ray.is_initialized() and address in (None, _connected["address"]):
        return ray
    if ray.is_initialized():
        ray.shutdown()
    _connected["address"] = address
    with _keep_sigterm_handler():
        _init(ray, address)
    return ray


@contextlib.contextmanager
def _keep_sigterm_handler():
    """ray.init installs a SIGTERM handler that aborts the process; Cancel (SIGTERM from the app's job
    control) must instead raise :class:`~defuse.runtime.progress.Cancelled`, so the caller's handler is put back."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None
    try:
        yield
    finally:
        if in_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _init(ray, address: Optional[str]) -> None:
    if address is None:
        ray.init(**init_kwargs())
    else:
        check_address(address)
        try:
            # a cluster's workers get this defuse uploaded (no shared filesystem, no install on the nodes)
            ray.init(address=address, runtime_env={"py_modules": [str(_PACKAGE_DIR)]}, log_to_driver=False,
                     logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError) as e:
            _connected["address"] = None
            raise ValueError(f"could not join the Ray cluster at {address}: {e}. A cluster with token "
                             "authentication (the default of `ray start --head` since Ray 2.59) needs "
                             "RAY_AUTH_MODE=token here and its token in RAY_AUTH_TOKEN or ~/.ray/auth_token "
                             "(`ray get-auth-token` on the head prints it)") from None


def quiet_ray_data() -> None:
    """No progress bars or INFO lines from Ray Data: progress goes through the job's events."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    # Cancel raises inside Ray Data's iterator, which logs it as an internal error with a full trace
    # before it reaches the caller; the caller reports it (or any real error) itself.
    logging.getLogger("ray.data.exceptions").setLevel(logging.CRITICAL)


def cluster_info(address: Optional[str] = None) -> ClusterInfo:
    ray = connect(address)
    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return ClusterInfo(address or "local", float(res.get("CPU", 0)), float(res.get("GPU", 0)), nodes)
