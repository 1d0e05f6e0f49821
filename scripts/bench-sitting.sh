#!/bin/bash
# One benchmark sitting on the CPU, as BENCHMARKS.md reports it: the machine's
# matrix-product peak (numpy, 4096², 1 and 2 threads), then the training step
# on Flex, on LibTorch (burn-tch) and in PyTorch, alternating, narrow geometry
# three rounds, paper geometry once. Run it on an otherwise idle machine.
#
#   FLEX=target/release/imex-run TCH=target-tch/release/imex-run PYTHON=python3 \
#     OUT=bench-sitting scripts/bench-sitting.sh
#
# TCH is a binary built with --features tch (README "LibTorch"); leave it unset
# (or point it at a missing file) to skip LibTorch. BEFORE, if set, is a Flex
# binary of an earlier commit, run in the same rounds for a before/after
# comparison. PYTHON needs numpy and torch.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-sitting}
FLEX=${FLEX:-target/release/imex-run}
TCH=${TCH:-target-tch/release/imex-run}
BEFORE=${BEFORE:-}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
log() { echo "== $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a "$OUT/sitting.log"; }
ours() { # label binary device geometry steps warmup
  log "$4 $1"
  "$2" bench --device "$3" --geometry "$4" --skip-ops --steps "$5" --warmup "$6" --json "$OUT/$1_$4$7.json" 2>&1 \
    | grep -E "train step|forward|rror" | tee -a "$OUT/sitting.log"
}
torch() { # geometry steps warmup suffix
  log "$1 torch"
  "$PY" scripts/bench_torch.py --device cpu --geometry "$1" --skip-ops --steps "$2" --warmup "$3" --threads 2 \
    --json "$OUT/torch_$1$4.json" 2>&1 | grep -E "train step" | tee -a "$OUT/sitting.log"
}
log start
for threads in 1 2; do
  OPENBLAS_NUM_THREADS=$threads "$PY" - <<PYTHON 2>&1 | tee -a "$OUT/sitting.log"
import numpy as np, statistics, time
n = 4096
a, b = (np.random.rand(n, n).astype(np.float32) for _ in range(2))
a @ b
times = []
for _ in range(5):
    t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)
print("peak threads=$threads best %.1f median %.1f GFLOP/s"
      % (2 * n**3 / min(times) / 1e9, 2 * n**3 / statistics.median(times) / 1e9))
PYTHON
done
for round in 1 2 3; do
  [ -n "$BEFORE" ] && ours before "$BEFORE" cpu narrow 10 3 "_$round"
  ours flex "$FLEX" cpu narrow 10 3 "_$round"
  [ -x "$TCH" ] && ours tch "$TCH" tch narrow 10 3 "_$round"
  torch narrow 10 3 "_$round"
done
[ -n "$BEFORE" ] && ours before "$BEFORE" cpu paper 3 1 ""
ours flex "$FLEX" cpu paper 3 1 ""
[ -x "$TCH" ] && ours tch "$TCH" tch paper 3 1 ""
torch paper 3 1 ""
log end
