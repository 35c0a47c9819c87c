"""How long the import-time dry run (defuse/nets/preflight.py) takes: the demo classifier and a user-style
network (conv + batch norm + dropout, colour, 12 classes), one CPU thread. Writes a log to stdout.

    python benchmarks/preflight_time.py > docs/runs/preflight-time-cpu.log
"""

import datetime
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from defuse.nets import checkpoints  # noqa: E402
from defuse.nets.preflight import check_pipeline_ready  # noqa: E402
from tests.toys import bar_images  # noqa: E402
from tests.user_nets import SignNet  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    print(f"# {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} torch {torch.__version__} "
          f"threads {torch.get_num_threads()} {platform.machine()} {torch.backends.cpu.get_cpu_capability()}")
    x, y = bar_images(4, num_classes=12, size=32, channels=3)
    demo = checkpoints.load_model(ROOT / "models" / "demo-classifier.json")[0]
    cases = [("demo paper-cnn, 1x32x32, 10 classes", demo, torch.rand(4, 1, 32, 32), torch.arange(4), 10),
             ("user SignNet, 3x32x32, 12 classes", SignNet(), x, y, 12)]
    for name, model, images, labels, n in cases:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            checks = check_pipeline_ready(model, images, labels, num_classes=n, device="cpu", architecture="check")
            best = min(best, time.perf_counter() - t)
        print(f"{name}: dry run best of 3 {best:.3f} s; passed: {'; '.join(checks)}")


if __name__ == "__main__":
    main()
