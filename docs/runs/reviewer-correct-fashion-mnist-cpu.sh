#!/bin/bash
# Issue #24 (b): the reviewer once per project (label --reviewer auto), then correct at the app's default sweep
# (4 λ, 2 epochs, the control and the baseline), then the same with successive halving. One thread, as the app's jobs.
cd /work/main
out=/work/runs/speed
stamp() { echo "# $(date -Is) load: $(cut -d' ' -f1-3 /proc/loadavg); running: $(pgrep -fa 'paper_table|pytest|defuse' | grep -v pgrep | cut -c1-120 | tr '\n' ';')"; }
ws=$out/fm-correct; rm -rf $ws; cp -r /work/runs/fm-P7-two_sided $ws; rm -rf $ws/correct $ws/jobs
log=$out/reviewer-fashion-mnist-cpu.log
{ stamp; echo "\$ python -m defuse label -w $ws --reviewer auto --threads 1"; } > $log
/usr/bin/time -v .venv/bin/python -m defuse label -w $ws --reviewer auto --threads 1 --progress-jsonl $out/reviewer.jsonl >> $log 2>&1
stamp >> $log
for h in "" "--halving"; do
  log=$out/correct-fashion-mnist${h:+-halving}-cpu.log; rm -rf $ws/correct
  { stamp; echo "\$ python -m defuse correct -w $ws --lambdas 0.01,0.1,1,10 --epochs 2 --samples 128 --reviewer auto --threads 1 $h"; } > $log
  /usr/bin/time -v .venv/bin/python -m defuse correct -w $ws --lambdas 0.01,0.1,1,10 --epochs 2 --samples 128 --reviewer auto --threads 1 $h --progress-jsonl $out/correct${h}.jsonl >> $log 2>&1
  stamp >> $log
  cp $ws/correct/sweep.json $out/correct-fashion-mnist${h:+-halving}-sweep.json
done
