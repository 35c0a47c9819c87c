"""`make bench`: every speed benchmark in turn, each against its own baseline measured in the same run.

Prints each script's output and, at the end, the ratio lines together. ``--quick`` passes --quick on;
memory_bounds.py always gets it (its full run: ``python benchmarks/memory_bounds.py``, about 5 minutes).
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short version of every benchmark")
    args = parser.parse_args()
    summary, failed = [], 0
    for name in BENCHMARKS:
        cmd = [sys.executable, str(HERE / name), *(["--quick"] if args.quick or name in ALWAYS_QUICK else [])]
        print(f"=== {name} {' '.join(cmd[2:])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(proc.stdout + proc.stderr, flush=True)
        failed += proc.returncode != 0
        ratios = [line for line in proc.stdout.splitlines() if ":" in line and line.split(":")[0].isidentifier()]
        summary += [f"{name}: {line}" for line in ratios[-2:]] + [f"{name}: wall {time.perf_counter() - t0:.0f} s"]
    print("=== summary", *summary, sep="\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
