#!/bin/bash
# The whole prepared GPU session, about 10 minutes on an H200; every log goes to $OUT (default ./gpu-out):
#   1. train_speed.py: steps/s and GPU utilisation of VAE, classifier, reviewer member and λ-sweep training,
#      before/after the GPU-friendly loops (+ the VAE under torch.compile)   -> train-speed.{json,log}
#   2. paper_table.py at the paper's settings (no --quick) on Fashion-MNIST: the 60,000 training images
#      (54,000 train + the 6,000 validation images carved from them), Q=500, M=100, 17 λ x 3 epochs,
#      with per-stage times and the models' training steps/s                -> fm.{json,log}
#   3. gpu_identify_full.py: identify over all 60,000 real training images with the models of step 2
#                                                                            -> identify-full.log
#   gpu-util.csv samples the GPU every 0.5 s for the whole session; env.log names GPU, driver, torch.
# Fashion-MNIST: $FM_ROOT holding FashionMNIST/raw/*-ubyte, or gzipped files in .gpu/fm/ (git-ignored).
#
#   benchmarks/gpu_session.sh             # on the GPU machine
#   benchmarks/gpu_session.sh --dry-run   # the same steps on a CPU, tiny settings (5 minutes on 2 busy cores;
#                                         # SKIP_TABLE=1 leaves out step 2, which tests/test_paper_table.py runs;
#                                         # SKIP_SPEED=1 step 1, which tests/test_train_speed.py runs)
set -u
DRY=0; [ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
WORK=${WORK:-$(mktemp -d)}
export PYTHONUNBUFFERED=1
T0=$(date +%s)
stamp() { echo "[$1 at $(( $(date +%s) - T0 )) s]" | tee -a "$OUT/session.log"; }

if [ $DRY = 1 ]; then
  DEV=cpu; DATA=(--dataset mnist-sample); THREADS=1
  SPEED=(--steps 2 --rounds 1); TABLE=(--smoke); FULL=(--images 64 --samples 10 --max-per-image 5)   # SPEED: every phase, as the real run
  T_SPEED=300; BUDGET=540
else
  DEV=cuda; THREADS=8
  FM_ROOT=${FM_ROOT:-}
  if [ -z "$FM_ROOT" ]; then
    FM_ROOT=$WORK/data; mkdir -p "$FM_ROOT/FashionMNIST/raw"
    for f in .gpu/fm/*.gz; do gunzip -c "$f" > "$FM_ROOT/FashionMNIST/raw/$(basename "$f" .gz)"; done
  fi
  DATA=(--dataset fashion-mnist --root "$FM_ROOT"); SPEED=(--steps 300 --rounds 1 --compile); TABLE=(); FULL=()
  T_SPEED=200; BUDGET=590   # train_speed also measures each network's raw step (4 variants, 4 s at most each)
fi

{ date -u +%FT%TZ; hostname; nproc
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  $PY -c "import torch, platform; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', platform.python_version())"
  echo "git: $(git rev-parse HEAD 2>/dev/null) dry_run=$DRY device=$DEV"; } > "$OUT/env.log" 2>&1
SAMPLER=
if command -v nvidia-smi >/dev/null && [ $DRY = 0 ]; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 500 > "$OUT/gpu-util.csv" &
  SAMPLER=$!
fi

if [ $DRY = 1 ] && [ "${SKIP_SPEED:-0}" = 1 ]; then
  stamp "train_speed skipped (SKIP_SPEED=1)"   # its quick path is tests/test_train_speed.py
else
  stamp "train_speed start"
  timeout $T_SPEED $PY benchmarks/train_speed.py --device $DEV --threads $THREADS "${DATA[@]}" "${SPEED[@]}" \
    --json "$OUT/train-speed.json" > "$OUT/train-speed.log" 2>&1
  stamp "train_speed done (rc $?)"
fi

MODELS=(--models-from "$WORK/fm")
if [ $DRY = 1 ] && [ "${SKIP_TABLE:-0}" = 1 ]; then
  stamp "paper_table skipped (SKIP_TABLE=1)"; MODELS=()   # the full identify then uses the demo models
else
  LEFT=$(( BUDGET - ($(date +%s) - T0) - 45 ))   # leaves about 45 s for the full identify
  stamp "paper_table start, $LEFT s left for it"
  timeout $LEFT $PY benchmarks/paper_table.py "${DATA[@]}" "${TABLE[@]}" --device $DEV --threads $THREADS \
    -w "$WORK/fm" --json "$OUT/fm.json" > "$OUT/fm.log" 2>&1
  stamp "paper_table done (rc $?)"
fi

LEFT=$(( BUDGET + 30 - ($(date +%s) - T0) ))
if { [ ${#MODELS[@]} = 0 ] || [ -f "$WORK/fm/vae/model.json" ]; } && [ $LEFT -gt 10 ]; then
  timeout $LEFT $PY benchmarks/gpu_identify_full.py "${DATA[@]}" "${FULL[@]}" "${MODELS[@]}" \
    --device $DEV --threads $THREADS > "$OUT/identify-full.log" 2>&1
  stamp "identify full done (rc $?)"
else
  stamp "identify full skipped ($LEFT s left, models there: $([ -f "$WORK/fm/vae/model.json" ] && echo yes || echo no))"
fi

[ -n "$SAMPLER" ] && kill $SAMPLER 2>/dev/null
[ -d "$WORK/fm" ] && (cd "$WORK/fm" && tar czf "$OUT/fm-models.tgz" project.json classifier vae 2>/dev/null)
stamp "all done"
ls -la "$OUT" >> "$OUT/session.log"
