#!/bin/bash
# Issue #21 (go11): --verify clear. The class-free conditional route with --verify and a converged (20-epoch) classifier, two-sided λ,
# now that distill retries singular covariances with a larger reg_covar.
cd /work/main
route="--quick --threads 1 --vae-recipe --conditional --vae-beta 4 --centered --beta 2 2 --noise-scale 4 --verify clear --accept-low-fidelity --classifier-epochs 20 --paper-method --selection two_sided"
init() {  # workspace, dataset kind, classifier json, vae json
  rm -rf $1
  .venv/bin/python - "$@" <<'PY'
import sys
from pathlib import Path
from defuse.data.config import DatasetSpec
from defuse.steps.project import init_project
ws, kind, clf, vae = sys.argv[1:5]
spec = DatasetSpec(source="fashion-mnist", root="../shared/data") if kind == "fm" else DatasetSpec(source="mnist-idx", path="../shared/data/mnist-test")
init_project(Path(ws), spec, classifier=Path(clf), vae=Path(vae))
PY
}
for v in paper; do
  ws=/work/runs/fm-C11-$v; extra=""; [ $v = agreed ] && extra="--fix-set agreed"
  init $ws fm /work/runs/fm-P7-two_sided/classifier/model.json /work/runs/fm-cfree/vae/model.json
  .venv/bin/python benchmarks/paper_table.py $route $extra --dataset fashion-mnist --root ../shared/data --models-from /work/runs/fm-P7-two_sided -w $ws --json $ws.json > $ws.log 2>&1
done
ws=/work/runs/mn-C11-paper
init $ws mn /work/runs/mn-P7-two_sided/classifier/model.json /work/runs/mn-C10-paper/vae/model.json
.venv/bin/python benchmarks/paper_table.py $route --dataset mnist-idx --path ../shared/data/mnist-test --models-from /work/runs/mn-P7-two_sided -w $ws --json $ws.json > $ws.log 2>&1
