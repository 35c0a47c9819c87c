"""Identification on Ray Data: source images sharded into the chunk store's chunks, searched by a
pool of actors that each hold the classifier and the decoder once.

The driver encodes and picks the sources (as the local backend does), then streams the unfinished
chunk indices through ``map_batches`` on an actor pool. Each actor runs identify's own chunk
search, so ε (a pure function of seed, source row, sample and dim) and the kept failures are the
local backend's bit for bit. Every chunk is saved in the workspace's chunk store as it arrives: a
killed actor is restarted by Ray Data and redoes only its chunk; a killed driver loses only the
chunks in flight.
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch

from ..identify.chunk_search import Sources, batch_tuner, chunk_slice, run_chunks, search_chunk
from ..identify.failures import FAILURE_ARRAYS
from ..nets.inference import plan_inference, prepare_model
from .cluster import connect, quiet_ray_data
from .models import pack_model, unpack_model

# Ray Data's own tasks need CPU slots too: an actor asking for a whole CPU on every core starved
# them (measured: a 2-actor pool on 2 CPUs hung for minutes; with 0.5 each it finished in 4 s).
ACTOR_CPUS = 0.5


class SearchWorker:
    """One Ray Data actor: the models and the sources' (row, μ, label) arrays, loaded once."""

    def __init__(self, models, shard, cfg, precision: str, gpu: bool):
        import ray

        torch.set_num_threads(1)  # one core per actor: the pool, not torch, spreads over the cores
        models, shard = ray.get([models, shard])  # object-store refs: fetched (zero-copy) once per actor
        self.cfg = cfg
        self.plan = plan_inference(torch.device("cuda" if gpu else "cpu"), precision, cfg.batch_size)
        self.clf, self.dec = (prepare_model(unpack_model(m), self.plan) for m in models)
        self.sources = Sources(*(torch.as_tensor(np.array(a)).to(self.plan.device) for a in shard))
        self.tuner = batch_tuner(cfg, self.plan)

    def __call__(self, batch: dict) -> dict:
        payloads, seconds = [], []
        for i in batch["chunk"]:
            sl = chunk_slice(int(i), len(self.sources), self.cfg.chunk_images)
            t0 = time.perf_counter()
            with torch.inference_mode():
                part = search_chunk(self.clf, self.dec, self.sources[sl], self.cfg, self.plan, self.tuner)
            seconds.append(time.perf_counter() - t0)
            payloads.append(pack_part(part))
        return {"chunk": np.asarray(batch["chunk"]), "payload": np.array(payloads, dtype=object),
                "seconds": np.asarray(seconds), "batch_size": np.full(len(seconds), self.tuner.size())}


def pack_part(part: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **part)
    return buf.getvalue()


def unpack_part(payload: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(payload)) as z:
        return {name: z[name] for name in FAILURE_ARRAYS}


def search(clf, dec, sources: Sources, cfg, plan, store, on_progress, *, pool) -> tuple[list[dict], dict]:
    """identify's ``search_chunks`` on Ray: the same chunk loop (``run_chunks``), the chunks searched by actors;
    the same parts and progress events, plus Ray's figures."""
    ray_figures = {"worker_seconds": 0.0, "batch_size": None}

    def search_on_ray(todo):
        for row in _stream(pool, todo, clf, dec, sources, cfg, plan):
            ray_figures["worker_seconds"] += float(row["seconds"])
            ray_figures["batch_size"] = int(row["batch_size"])
            yield int(row["chunk"]), unpack_part(row["payload"]), float(row["seconds"])

    parts, metrics = run_chunks(len(sources), cfg, store, on_progress, search_on_ray, wall_clock=True)
    return parts, {**metrics, **ray_figures, **pool.describe()}


def _stream(pool, todo: list[int], clf, dec, sources: Sources, cfg, plan):
    """Rows {chunk, payload, seconds, batch_size} as the actors finish them, in any order."""
    if not todo:
        return
    ray = connect(pool.address)
    quiet_ray_data()   # imports ray.data
    models = ray.put((pack_model(clf), pack_model(dec)))
    shard_ref = ray.put(tuple(t.cpu().numpy() for t in (sources.rows, sources.mu, sources.y)))
    # a worker on another kind of device resolves "auto" there; the same kind keeps the driver's choice
    precision = plan.precision if pool.device_type == plan.device.type else cfg.precision
    ds = ray.data.from_items([{"chunk": i} for i in todo], override_num_blocks=len(todo))
    ds = ds.map_batches(SearchWorker, batch_size=1, batch_format="numpy",
                        fn_constructor_args=(models, shard_ref, cfg, precision, pool.gpu),
                        compute=ray.data.ActorPoolStrategy(size=min(pool.workers, len(todo))),
                        num_cpus=ACTOR_CPUS, num_gpus=1 if pool.gpu else 0)
    rows = ds.iter_rows()
    try:
        yield from rows
    finally:  # Cancel or an error: stop the pipeline now, which kills its actors
        close = getattr(rows, "close", None)
        if close is not None:
            close()
