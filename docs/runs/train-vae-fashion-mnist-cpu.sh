#!/bin/bash
# Its correct part was stopped after 22 minutes (it was training the project reviewer first) and redone,
# reviewer and correct timed apart, by reviewer-correct-fashion-mnist-cpu.sh.
# Issue #24: a user's own data on these 2 cores, at the app's defaults (one thread, as the app's jobs use here).
# Fashion-MNIST full (54,000 train / 6,000 val). Waits for train_speed to finish first.
cd /work/main
while pgrep -f benchmarks/train_speed.py > /dev/null; do sleep 10; done
out=/work/runs/speed
stamp() { echo "# $(date -Is) load: $(cut -d' ' -f1-3 /proc/loadavg); running: $(pgrep -fa 'paper_table|pytest|defuse' | grep -v pgrep | cut -c1-120 | tr '\n' ';')"; }
ws=$out/fm-vae; rm -rf $ws
.venv/bin/python - $ws <<'PY'
import sys
from pathlib import Path
from defuse.data.config import DatasetSpec
from defuse.steps.project import init_project
init_project(Path(sys.argv[1]), DatasetSpec(source="fashion-mnist", root="../shared/data"),
             classifier=Path("/work/runs/fm-P7-two_sided/classifier/model.json"))
PY
{ stamp; echo "\$ python -m defuse train-vae -w $ws --threads 1"; } > $out/train-vae-fashion-mnist-cpu.log
/usr/bin/time -v .venv/bin/python -m defuse train-vae -w $ws --threads 1 --progress-jsonl $out/train-vae.jsonl >> $out/train-vae-fashion-mnist-cpu.log 2>&1
stamp >> $out/train-vae-fashion-mnist-cpu.log
cp $ws/vae/fidelity.json $out/train-vae-fashion-mnist-fidelity.json; cp $ws/vae/history.json $out/train-vae-fashion-mnist-history.json
for h in "" "--halving"; do
  ws=$out/fm-correct${h:+-halving}; rm -rf $ws; cp -r /work/runs/fm-P7-two_sided $ws; rm -rf $ws/correct $ws/jobs
  log=$out/correct-fashion-mnist${h:+-halving}-cpu.log
  { stamp; echo "\$ python -m defuse correct -w $ws --lambdas 0.01,0.1,1,10 --epochs 2 --samples 128 --reviewer auto --threads 1 $h"; } > $log
  /usr/bin/time -v .venv/bin/python -m defuse correct -w $ws --lambdas 0.01,0.1,1,10 --epochs 2 --samples 128 --reviewer auto --threads 1 $h >> $log 2>&1
  stamp >> $log
done
