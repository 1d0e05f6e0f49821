#!/bin/bash
# How cost grows (BENCHMARKS.md "Scaling"): imex-run against PyTorch on the CPU,
#  - the building blocks (3×3 convolution, implicit solve; forward and
#    forward+backward) at 8, 32 and 128 channels, image sizes 32 to 256;
#  - the narrow training step (IMEX and ResNet) at image sizes 32 to 256;
#  - the training step of one block of 4 layers at widths 8 to 256 (64×64).
# Run it on an otherwise idle machine (about 15 minutes on 2 cores).
#
#   FLEX=target/release/imex-run PYTHON=python3 OUT=bench-scaling scripts/bench-scaling.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-scaling}
FLEX=${FLEX:-target/release/imex-run}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
log() { echo "== $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a "$OUT/scaling.log"; }
quiet() { grep -E "median|ops C=|train step" | tee -a "$OUT/scaling.log"; }
log start
for size in 32 64 128 256; do
  log "ops size $size"
  "$FLEX" bench --only-ops --size "$size" --op-widths 8,32,128 --steps 3 --json "$OUT/flex_ops_$size.json" 2>&1 | quiet
  "$PY" scripts/bench_torch.py --device cpu --skip-train --size "$size" --op-widths 8,32,128 --op-reps 12 \
    --threads 2 --json "$OUT/torch_ops_$size.json" 2>&1 | quiet
  log "narrow step size $size"
  "$FLEX" bench --geometry narrow --skip-ops --skip-eval --size "$size" --steps 3 --warmup 1 \
    --json "$OUT/flex_narrow_$size.json" 2>&1 | quiet
  "$PY" scripts/bench_torch.py --device cpu --geometry narrow --skip-ops --size "$size" --steps 3 --warmup 1 \
    --threads 2 --json "$OUT/torch_narrow_$size.json" 2>&1 | quiet
done
for width in 8 32 128 256; do
  log "one block of width $width"
  "$FLEX" bench --widths "$width" --skip-ops --skip-eval --steps 3 --warmup 1 \
    --json "$OUT/flex_width_$width.json" 2>&1 | quiet
  "$PY" scripts/bench_torch.py --device cpu --widths "$width" --skip-ops --steps 3 --warmup 1 \
    --threads 2 --json "$OUT/torch_width_$width.json" 2>&1 | quiet
done
log end
