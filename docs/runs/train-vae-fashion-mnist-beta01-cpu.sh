#!/bin/bash
# Issue #24 (d): a weaker KL for Fashion-MNIST's blurry VAE: β 0.4 -> 0.1 (the recipe otherwise), then with more room too.
cd /work/main
while pgrep -f "pytest -q -n 2" > /dev/null; do sleep 10; done
out=/work/runs/speed
stamp() { echo "# $(date -Is) load: $(cut -d' ' -f1-3 /proc/loadavg); running: $(pgrep -fa 'paper_table|pytest|defuse' | grep -v pgrep | cut -c1-120 | tr '\n' ';')"; }
for variant in "beta01:--beta 0.1" "beta01-room:--beta 0.1 --latent-dim 20 --width 64"; do
  name=${variant%%:*}; flags=${variant#*:}
  ws=$out/fm-vae-$name; rm -rf $ws; cp -r $out/fm-vae $ws; rm -rf $ws/vae $ws/jobs
  log=$out/train-vae-fashion-mnist-$name-cpu.log
  { stamp; echo "\$ python -m defuse train-vae -w $ws $flags --threads 1"; } > $log
  /usr/bin/time -v .venv/bin/python -m defuse train-vae -w $ws $flags --threads 1 --progress-jsonl $out/train-vae-$name.jsonl >> $log 2>&1
  stamp >> $log
  cp $ws/vae/history.json $out/train-vae-fashion-mnist-$name-history.json
done
