#!/bin/bash
# Issue #21 (go13): the product's default reviewer as A (trained by go12's Fashion-MNIST run) with the clear rule.
cd /work/main
while pgrep -f go24c.sh > /dev/null; do sleep 10; done
ws=/work/runs/fm-C13-paper; rm -rf $ws
.venv/bin/python - $ws <<'PY'
import sys
from pathlib import Path
from defuse.data.config import DatasetSpec
from defuse.steps.project import init_project
init_project(Path(sys.argv[1]), DatasetSpec(source="fashion-mnist", root="../shared/data"),
             classifier=Path("/work/runs/fm-P7-two_sided/classifier/model.json"), vae=Path("/work/runs/fm-cfree/vae/model.json"))
PY
cp -r /work/runs/fm-C12-paper/reviewer-a $ws/reviewer-a   # go12's reviewer A (--reviewer-recipe), reused
.venv/bin/python benchmarks/paper_table.py --quick --threads 1 --vae-recipe --conditional --vae-beta 4 --centered --beta 2 2 --noise-scale 4 --verify clear --reviewer-recipe --accept-low-fidelity --classifier-epochs 20 --paper-method --selection two_sided --dataset fashion-mnist --root ../shared/data --models-from /work/runs/fm-P7-two_sided -w $ws --json $ws.json > $ws.log 2>&1
