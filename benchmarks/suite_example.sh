#!/usr/bin/env bash
# The README's worked example of `suite` and `check`, logged to docs/runs/suite-example.log:
# the demo project through `run --quick`, its suite (with the test split), then three checks.
#   bash benchmarks/suite_example.sh [WORKDIR]
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
W=${1:-/tmp/defuse-suite-example}
LOG=docs/runs/suite-example.log
rm -rf "$W"
mkdir -p "$W"
{
  echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cores; $($PY -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__)')"
  echo "\$ python -m defuse run -w $W/demo --quick --threads 1 --quiet   (output not shown)"
  $PY -m defuse run -w "$W/demo" --quick --threads 1 --quiet > "$W/run.log" 2>&1; echo "exit $?"
  for cmd in \
    "suite -w $W/demo --with-test" \
    "check --suite $W/demo/exports/suite --classifier $W/demo/classifier/model.json" \
    "check --suite $W/demo/exports/suite --classifier $W/demo/exports/demo-corrected.json --baseline original --min-accuracy 0.8 --json $W/check.json" \
    "check --suite $W/demo/exports/suite --classifier $W/demo/classifier/model.json --baseline $W/demo/exports/demo-corrected.json --min-accuracy 0.8" \
    "embed -w $W/demo --method pca" \
    "select-export -w $W/demo --kind failure --scenario 1 --out $W/sel.zip"; do
    echo
    echo "\$ python -m defuse $cmd"
    t=$(date +%s.%N)
    $PY -m defuse $cmd --threads 1 --quiet 2>&1
    echo "exit $?  ($(echo "$(date +%s.%N) - $t" | bc | cut -c1-5) s wall)"
  done
  echo
  echo "\$ cat $W/check.json"
  cat "$W/check.json"
} 2>&1 | tee "$LOG"
