#!/bin/bash
# Issue #24 (c): the gate's own advice for Fashion-MNIST's blurry default VAE (75.0% vs 90.2%): more room
# (latent dims 10 -> 20, width 32 -> 64), the default recipe otherwise, one thread. Waits for go24b.
cd /work/main
while pgrep -f go24b.sh > /dev/null; do sleep 10; done
out=/work/runs/speed
stamp() { echo "# $(date -Is) load: $(cut -d' ' -f1-3 /proc/loadavg); running: $(pgrep -fa 'paper_table|pytest|defuse' | grep -v pgrep | cut -c1-120 | tr '\n' ';')"; }
ws=$out/fm-vae-room; rm -rf $ws; cp -r $out/fm-vae $ws; rm -rf $ws/vae $ws/jobs
log=$out/train-vae-fashion-mnist-room-cpu.log
{ stamp; echo "\$ python -m defuse train-vae -w $ws --latent-dim 20 --width 64 --threads 1"; } > $log
/usr/bin/time -v .venv/bin/python -m defuse train-vae -w $ws --latent-dim 20 --width 64 --threads 1 --progress-jsonl $out/train-vae-room.jsonl >> $log 2>&1
stamp >> $log
cp $ws/vae/history.json $out/train-vae-fashion-mnist-room-history.json
