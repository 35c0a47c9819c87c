"""The λ sweep on Ray: each (kind, [λ...]) group of :func:`defuse.correct.training.plan_groups` is one
Ray task. A task runs :func:`defuse.correct.training.train_groups` on its group, the very loop of the local backend
(same seeds, same batch order), and returns the group's rows and kept weights; the driver writes
them into the per-λ store as they arrive, so a finished λ survives a killed driver, and a killed
worker's task is retried by Ray (``max_retries``). The classifier and the data go through the object
store once; the tasks' epoch events come back through a Ray queue to the job's progress events.
"""

from __future__ import annotations

import torch

from ..correct.training import train_groups as train_groups_here
from .cluster import connect
from .models import pack_model, unpack_model

TASK_CPUS = 1           # one core per fine-tuning task (a GPU task also takes one GPU)
TASK_RETRIES = 3        # a task whose worker dies is run again, from its first epoch
POLL_S = 0.5            # how often the driver drains progress events and notices Cancel (SIGTERM)


class _QueueTracker:
    """The worker side of correct's progress tracker: events go into a Ray queue for the driver."""

    def __init__(self, events):
        self.events = events

    def epoch(self, row: dict) -> None:
        self.events.put(("epoch", row))

    def heartbeat(self, **metrics) -> None:
        self.events.put(("batch", metrics))


def _train_group_task(group, packed_template, inp, cfg, device_type: str, events) -> list:
    torch.set_num_threads(TASK_CPUS)  # the CPUs Ray reserved for the task
    template = unpack_model(packed_template)
    return list(train_groups_here([group], template, inp, cfg, torch.device(device_type), _QueueTracker(events)))


def train_groups(groups, template, inp, cfg, track, *, pool):
    """Like :func:`defuse.correct.training.train_groups`, with up to ``pool.workers`` groups training at once.

    Yields (kind, λ, rows, best, state) in the order the groups finish (the caller keys them by λ).
    """
    if not groups:
        return
    ray = connect(pool.address)
    from ray.util.queue import Queue

    events = Queue(actor_options={"num_cpus": 0})
    task = ray.remote(_train_group_task).options(num_cpus=TASK_CPUS, num_gpus=1 if pool.gpu else 0,
                                                 max_retries=TASK_RETRIES)
    shared = (ray.put(pack_model(template)), ray.put(inp), cfg, pool.device_type, events)
    waiting, running, seen = list(groups), [], set()
    try:
        while waiting or running:
            while waiting and len(running) < pool.workers:
                running.append(task.remote(waiting.pop(0), *shared))
            ready, running = ray.wait(running, num_returns=1, timeout=POLL_S)
            results = [r for ref in ready for r in ray.get(ref)]  # fetched before the events: all are in
            _relay(events, track, seen)
            yield from results
    finally:  # Cancel (SIGTERM raises in this loop) or an error: stop the remaining work
        for ref in running:
            ray.cancel(ref, force=True)
        ray.kill(events.actor)


def _relay(events, track, seen: set) -> None:
    """Pass the workers' events to the job; a retried task's repeated epochs are counted once."""
    while not events.empty():
        kind, payload = events.get_nowait()
        if kind == "batch":
            track.heartbeat(**payload)
            continue
        key = (payload["kind"], payload["lambda"], payload["epoch"])
        if key not in seen:
            seen.add(key)
            track.epoch(payload)
