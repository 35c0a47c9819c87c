#!/bin/bash
# Issue #24: the judge's figures with the trainers in fp32 (the loop before issue 24) and in the product's plan
# (bf16 autocast + channels_last where the CPU computes bf16), the same quick run otherwise; both at once, one thread each.
cd /work/main
for prec in fp32 auto; do
  ws=/work/runs/ms-judge-$prec; rm -rf $ws
  if [ $prec = fp32 ]; then export DEFUSE_TRAIN_PRECISION=fp32; else unset DEFUSE_TRAIN_PRECISION; fi
  .venv/bin/python benchmarks/paper_table.py --dataset mnist-sample --quick --vae-recipe --threads 1 -w $ws --json $ws.json > $ws.log 2>&1 &
done
wait
