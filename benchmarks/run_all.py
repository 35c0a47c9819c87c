"""`make bench`: every speed benchmark in turn, each against its own baseline measured in the same run.

Prints each script's output and, at the end, the ratio lines together. ``--quick`` passes --quick on;
memory_bounds.py always gets it (its full run: ``python benchmarks/memory_bounds.py``, about 5 minutes).
``--json`` also writes everything (device, torch version, threads, date, each command, its raw output and
ratio lines) to one file: `make bench` writes docs/runs/bench-latest.json, the form README's figures cite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["identify_speed.py", "distill_speed.py", "correct_speed.py", "memory_bounds.py", "page_render.py",
              "check_speed.py"]
# Always run short: the full memory benchmark (60,000 sources, 1M failures) takes minutes more than `make bench`
# has, and the render benchmark's point is the pages, not building its project.
ALWAYS_QUICK = {"memory_bounds.py", "page_render.py"}


def environment() -> dict:
    """What the figures were measured on (torch imported here only, not in the timed children)."""
    import torch

    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "python": platform.python_version(),
            "torch": torch.__version__, "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "CPU",
            "threads_env": os.environ.get("DEFUSE_THREADS", "all cores (each benchmark's own --threads)")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short version of every benchmark")
    parser.add_argument("--json", default=None, help="also write the environment and every raw output here")
    args = parser.parse_args()
    summary, failed, runs = [], 0, []
    for name in BENCHMARKS:
        cmd = [sys.executable, str(HERE / name), *(["--quick"] if args.quick or name in ALWAYS_QUICK else [])]
        print(f"=== {name} {' '.join(cmd[2:])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(proc.stdout + proc.stderr, flush=True)
        failed += proc.returncode != 0
        ratios = [line for line in proc.stdout.splitlines() if ":" in line and line.split(":")[0].isidentifier()]
        summary += [f"{name}: {line}" for line in ratios[-2:]] + [f"{name}: wall {time.perf_counter() - t0:.0f} s"]
        runs.append({"command": " ".join(["python", f"benchmarks/{name}", *cmd[2:]]), "returncode": proc.returncode,
                     "wall_s": round(time.perf_counter() - t0, 1), "ratio_lines": ratios,
                     "stdout": proc.stdout, "stderr": proc.stderr[-4000:]})
    print("=== summary", *summary, sep="\n")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**environment(), "quick": args.quick, "runs": runs}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
