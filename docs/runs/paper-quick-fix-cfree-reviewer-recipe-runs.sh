#!/bin/bash
# Issue #21 (go12): reviewer A is the product's default reviewer (--reviewer-recipe), verification by its vote.
cd /work/main
while pgrep -f go11.sh > /dev/null; do sleep 10; done
route="--quick --threads 1 --vae-recipe --conditional --vae-beta 4 --centered --beta 2 2 --noise-scale 4 --verify --reviewer-recipe --accept-low-fidelity --classifier-epochs 20 --paper-method --selection two_sided"
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
ws=/work/runs/mn-C12-paper
init $ws mn /work/runs/mn-P7-two_sided/classifier/model.json /work/runs/mn-C10-paper/vae/model.json
.venv/bin/python benchmarks/paper_table.py $route --dataset mnist-idx --path ../shared/data/mnist-test --models-from /work/runs/mn-P7-two_sided -w $ws --json $ws.json > $ws.log 2>&1
ws=/work/runs/fm-C12-paper
init $ws fm /work/runs/fm-P7-two_sided/classifier/model.json /work/runs/fm-cfree/vae/model.json
.venv/bin/python benchmarks/paper_table.py $route --dataset fashion-mnist --root ../shared/data --models-from /work/runs/fm-P7-two_sided -w $ws --json $ws.json > $ws.log 2>&1
