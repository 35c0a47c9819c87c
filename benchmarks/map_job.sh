#!/usr/bin/env bash
# The Explore page's UMAP map job as the app runs it: UMAP's warm-up into an empty numba cache, then
# `python -m defuse embed --method umap` twice in fresh processes on a fresh demo project (its shipped
# failures), each with its progress events (codes placed, ETA). Raw log: docs/runs/map-job-umap-cpu.log
#
#   bash benchmarks/map_job.sh > docs/runs/map-job-umap-cpu.log 2>&1
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "# date: $(date -u +%FT%TZ)  cores: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)  threads: 1"
$PY -c "import umap, numba, sklearn, torch, platform; print(f'# python {platform.python_version()} torch {torch.__version__} umap-learn {umap.__version__} numba {numba.__version__} sklearn {sklearn.__version__}; device CPU')"
export NUMBA_CACHE_DIR="$WORK/numba" DEFUSE_THREADS=1
start=$(date +%s.%N)
$PY -m defuse.distill.umap_warmup > /dev/null 2>&1
echo "warm-up into an empty numba cache (python -m defuse.distill.umap_warmup): $($PY -c "print(round($(date +%s.%N) - $start, 1))") s"
$PY -c "from defuse.steps.demo import open_demo_project; open_demo_project('$WORK/demo')" > /dev/null
for run in 1 2; do
  start=$(date +%s.%N)
  $PY -m defuse embed -w "$WORK/demo" --method umap --threads 1 --quiet --progress-jsonl "$WORK/p$run.jsonl" 2>&1 \
    | grep -vi warn
  echo "run $run: python -m defuse embed -w DEMO --method umap --threads 1: $($PY -c "print(round($(date +%s.%N) - $start, 1))") s, process start to exit"
  $PY - "$WORK/p$run.jsonl" <<'PY'
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
t0 = lines[0]["time"]
events = [e for e in lines if e.get("step") == "embed"]
done = [e["done"] for e in events]
print(f"  {len(events)} progress events, done strictly growing: {all(b > a for a, b in zip(done, done[1:]))}, "
      f"metrics {events[-1]['metrics']}")
for e in events:
    eta = "--" if e["eta_s"] is None else f"{e['eta_s']:.1f} s"
    print(f"  t={e['time'] - t0:5.1f} s  {e['done']:>6,} of {e['total']:,}  ETA {eta}")
PY
done
