"""The Ray backend on one local Ray instance (2 CPUs, started once per session): identification and
the λ sweep give the local backend's results bit for bit, survive a killed worker, cancel and resume."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from defuse.cli.main import main
from defuse.correct.sweep import CorrectConfig, FailureSet, correct
from defuse.data.datasets import DatasetSpec, ImageData, Split
from defuse.identify.search import IdentifyConfig, identify
from defuse.nets.architectures import BetaVAE, PaperCNN
from defuse.runtime.progress import Cancelled, RunOptions
from tests.toys import bar_images

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.xdist_group("ray")   # under pytest-xdist every Ray test runs in one worker: one Ray
from defuse.distributed.backend import RayBackend  # noqa: E402
from defuse.distributed.cluster import check_address, init_kwargs  # noqa: E402

IDENTIFY = IdentifyConfig(samples_per_image=100, max_per_image=10, chunk_images=4, precision="fp32", seed=3)
SWEEP = CorrectConfig(lambdas=(10.0,), epochs=1, batch_size=64, parallel="off")


@pytest.fixture(scope="session")
def local_ray():
    kwargs = init_kwargs(num_cpus=2)
    ray.init(**kwargs)
    yield ray
    ray.shutdown()
    shutil.rmtree(kwargs["_temp_dir"], ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # as the Ray workers run; tiny nets gain nothing from more
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def search_inputs():
    torch.manual_seed(0)
    images, labels = bar_images(32, seed=0)
    return PaperCNN(1, 32, 4, width=8).eval(), BetaVAE(1, 32, 4, width=8).eval(), images, labels


@pytest.fixture(scope="module")
def local_failures(search_inputs):
    return identify(*search_inputs, IDENTIFY, device="cpu")


def _same_failures(a, b) -> None:
    assert len(a) > 50      # the untrained classifier fails often: a real comparison
    for name, arr in a.to_arrays().items():
        np.testing.assert_array_equal(arr, b.to_arrays()[name], err_msg=name)


def _kill_one(title: str) -> int | None:
    """SIGKILL one process of this session's Ray (a descendant of this process) whose title starts so."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(title.encode()) \
                    and _descends_from_me(int(entry.name)):
                os.kill(int(entry.name), signal.SIGKILL)
                return int(entry.name)
        except OSError:
            continue
    return None


@contextlib.contextmanager
def _killing_the_first(title: str):
    """While the block runs, poll for this session's Ray process titled so and SIGKILL the first one seen."""
    killed, done = [], threading.Event()

    def watch():
        while not done.is_set() and not killed:
            pid = _kill_one(title)
            if pid is not None:
                killed.append(pid)
            done.wait(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield killed
    finally:
        done.set()
        watcher.join()


def _descends_from_me(pid: int) -> bool:
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if pid == os.getpid():
            return True
    return False


def test_identify_on_ray_equals_local_bit_for_bit_despite_a_killed_actor(local_ray, search_inputs,
                                                                         local_failures, tmp_path):
    killed, after_kill = [], []

    def kill_after_first_chunk(event):
        if event.metrics.get("chunk") == 1:
            killed.append(_kill_one("ray::MapWorker(MapBatches(SearchWorker))"))
        elif killed:
            after_kill.append(event.done)

    failures = identify(*search_inputs, IDENTIFY, device="cpu", backend=RayBackend(workers=2),
                        resume_dir=tmp_path, on_progress=kill_after_first_chunk)
    assert killed[0] is not None and len(after_kill) >= 2   # chunks kept arriving after the kill
    _same_failures(local_failures, failures)
    assert failures.metrics["backend"] == "ray" and failures.metrics["ray_workers"] == 2
    assert failures.metrics["ray_cluster"] == "a local Ray instance: 1 node, 2 CPUs"
    assert failures.metrics["chunks"] == len(list(tmp_path.glob("chunk-*.npz"))) == 8


def test_identify_on_ray_cancelled_keeps_its_chunks_and_resumes_to_the_same_result(local_ray, search_inputs,
                                                                                    local_failures, tmp_path):
    def cancel_after_three_chunks(event):
        if event.metrics.get("chunk") == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        identify(*search_inputs, IDENTIFY, device="cpu", backend=RayBackend(), resume_dir=tmp_path,
                 on_progress=cancel_after_three_chunks)
    kept = len(list(tmp_path.glob("chunk-*.npz")))
    assert 3 <= kept < 8
    resumed = identify(*search_inputs, IDENTIFY, device="cpu", backend=RayBackend(), resume_dir=tmp_path)
    assert resumed.metrics["chunks_resumed"] == kept
    _same_failures(local_failures, resumed)


def _dotted(n: int, seed: int) -> torch.Tensor:
    x, y = bar_images(4 * n, seed=seed)
    x = x[y == 0][:n].clone()
    x[:, :, 20:26, 20:26] = 1.0
    return x


@pytest.fixture(scope="module")
def sweep_inputs():
    data = ImageData(*(Split(*bar_images(n, seed=s)) for s, n in enumerate((128, 64, 64))),
                     class_names=["c0", "c1", "c2", "c3"], spec=DatasetSpec(source="npz"))
    torch.manual_seed(0)
    sets = [FailureSet(3, 0, _dotted(32, 10), _dotted(32, 11), _dotted(32, 12))]
    return PaperCNN(1, 32, 4, width=8).eval(), data, sets, (_dotted(16, 13), torch.zeros(16, dtype=torch.int64))


def _without_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_sweep_on_ray_equals_local_and_survives_a_killed_task(local_ray, sweep_inputs, tmp_path):
    clf, data, sets, uae = sweep_inputs
    here = correct(clf, data, sets, SWEEP, baseline=uae, run=RunOptions(device="cpu"))
    events = []
    # A watcher kills the first training task it sees running: the job hears of a task's epochs only when it
    # polls, often after that task ended, so killing on the first event raced the task's end.
    with _killing_the_first("ray::_train_group_task") as killed:
        remote = correct(clf, data, sets, SWEEP, baseline=uae,
                         run=RunOptions("cpu", events.append, RayBackend(), resume_dir=tmp_path))
    assert killed, "no training task was seen running, so none was killed"
    assert _without_seconds(remote.rows) == _without_seconds(here.rows)
    assert _without_seconds([remote.chosen]) == _without_seconds([here.chosen])
    assert remote.chosen["lambda"] == here.chosen["lambda"]
    for kind, lam in (("defuse", 0.0), ("defuse", 10.0), ("baseline", 10.0)):
        mine, theirs = here.state_dict(lam, kind), remote.state_dict(lam, kind)   # theirs: from the store
        assert all(torch.equal(v, theirs[k]) for k, v in mine.items())
    epochs = [e for e in events if e.metrics["event"] == "epoch"]
    assert [e.done for e in epochs] == [1, 2, 3] and epochs[-1].total == 3   # a retry counts once
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "baseline-lambda-10.0.json", "lambda-0.0.json", "lambda-10.0.json"]


def test_bad_ray_address_is_a_clear_cli_error(capsys, tmp_path):
    code = main(["identify", "-w", str(tmp_path / "absent"), "--backend", "ray", "--ray-address", "127.0.0.1:1",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "no Ray cluster answers at 127.0.0.1:1" in err and "ray start --head" in err
    code = main(["correct", "-w", str(tmp_path), "--ray-address", "10.0.0.5:6379", "--quiet"])
    assert code == 2 and "--ray-address needs --backend ray" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["", "host:port", "ray://:10001", "h:70000"])
def test_malformed_ray_address_says_the_expected_form(address):
    with pytest.raises(ValueError, match="must look like HOST:PORT"):
        check_address(address)


def test_ray_workers_must_be_positive():
    with pytest.raises(ValueError, match="--ray-workers must be an integer >= 1"):
        RayBackend(workers=0)
