#!/usr/bin/env bash
# The CUDA path, verified on an NVIDIA machine, in one go (issue 4, part 3):
#
#   1. facts         nvidia-smi, the binary's version, CUDA_PATH
#   2. check         imex-run check: peer fixtures and one paper-geometry training
#                    step on the GPU against the CPU (PASS/FAIL table)
#   3. bench         imex-run bench: the training step, both geometries
#   4. torch         scripts/bench_torch.py: the same step in PyTorch on the same GPU
#                    (skipped, with the reason, where torch cannot see a CUDA device)
#   5. epochs        two epochs of experiments/qtips_imex.toml and qtips_resnet.toml,
#                    timed, extrapolated to the 100-epoch study
#   6. ops           imex-run bench --only-ops: the building blocks (if time is left)
#
# then one summary table (scripts/gpu_check_summary.py), also in summary.md.
#
# Usage:  bash scripts/gpu-check.sh [--quick] [BINARY]
#         BINARY: the release build, plain or gzipped (`make gpu-bin`); by default
#         target/release/imex-run, else target/gpu/imex-run.gz
# Environment:
#   DEVICE   cuda (default) or cpu: everything on the CPU, to test this script anywhere
#   OUT      where the results go (the device tool sets it); else ./gpu-check-out
#   BUDGET   seconds the whole script may take (default 540); stages get what is left
#   PYTHON   the Python with torch (default python3)
#   WORK     scratch folder for the data set and run folders (default /tmp/gpu-check-work)
# --quick: narrow geometry, tiny inputs, one truncated epoch; for testing the script.
#
# Writes at most 8 files to OUT (the device tool brings back no more): summary.md,
# gpu-check.log (every stage's output), check.json, bench_rust.json,
# bench_torch.json, bench_rust_ops.json, metrics_imex.csv, metrics_resnet.csv.
set -u -o pipefail

QUICK=0
BIN=
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        -*) echo "gpu-check: unknown option $arg (try --help)" >&2; exit 2 ;;
        *) BIN=$arg ;;
    esac
done
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-./gpu-check-out}
BUDGET=${BUDGET:-540}
PYTHON=${PYTHON:-python3}
WORK=${WORK:-/tmp/gpu-check-work}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

case "$DEVICE" in cuda|cpu) ;; *) echo "gpu-check: DEVICE must be cuda or cpu, not '$DEVICE'" >&2; exit 2 ;; esac
mkdir -p "$OUT" "$WORK" || exit 2
if [ -z "$BIN" ]; then
    for b in target/release/imex-run target/gpu/imex-run.gz; do
        if [ -f "$b" ]; then BIN=$b; break; fi
    done
fi
# The release binary (~87 MB) is over the device tool's 64 MiB carry limit:
# `make gpu-bin` strips and gzips it, and it is unpacked here.
case "$BIN" in
    *.gz)
        gunzip -c "$BIN" > "$WORK/imex-run" && chmod +x "$WORK/imex-run" || {
            echo "gpu-check: cannot unpack $BIN into $WORK" >&2; exit 2; }
        BIN=$WORK/imex-run ;;
esac
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    echo "gpu-check: no executable binary (${BIN:-target/release/imex-run or target/gpu/imex-run.gz}):" \
        "build it first (make gpu-bin) and carry it" >&2
    exit 2
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu-check.log
: > "$LOG"
cd "$ROOT" || exit 2

START=$(date +%s)
declare -a STAGES=()        # name=status, for the summary

# run_stage NAME DEFAULT_TIMEOUT COMMAND...: runs with a timeout that fits the
# budget, logs to $LOG, records ok / failed (exit N) / timed out / skipped.
run_stage() {
    local name=$1 limit=$2; shift 2
    local left=$(( BUDGET - ($(date +%s) - START) - 20 ))
    if [ "$left" -lt 15 ]; then
        STAGES+=("$name=skipped: out of time budget (BUDGET=$BUDGET s)")
        echo "== $name: skipped, out of time budget"
        return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (timeout ${limit}s): $*"
    { echo; echo "===== $name (timeout ${limit}s): $*"; } >> "$LOG"
    local t0 rc
    t0=$(date +%s.%N)
    timeout --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
    rc=$?
    local secs
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    echo "$name: exit $rc after $secs s" >> "$LOG"
    case $rc in
        0) STAGES+=("$name=ok (${secs} s)") ;;
        124|137) STAGES+=("$name=timed out after ${limit} s") ;;
        *) STAGES+=("$name=failed (exit $rc, ${secs} s)") ;;
    esac
    echo "   $name: ${STAGES[-1]#*=}"
    if [ "$rc" -ne 0 ]; then
        echo "   last lines of its output (all of it in $LOG):"
        tail -n 15 "$LOG" | sed 's/^/   | /'
    fi
    return "$rc"
}

# ---- 1. facts ---------------------------------------------------------------
{
    echo "===== facts"
    date -u
    uname -a
    "$BIN" --version
    nproc
} >> "$LOG" 2>&1
if [ "$DEVICE" = cuda ]; then
    if [ -z "${CUDA_PATH:-}" ]; then
        for d in /usr/local/cuda /usr/local/cuda-*; do
            if [ -d "$d/include" ]; then export CUDA_PATH=$d; break; fi
        done
    fi
    echo "CUDA_PATH=${CUDA_PATH:-unset}" | tee -a "$LOG"
    if command -v nvidia-smi > /dev/null; then
        timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,utilization.gpu \
            --format=csv 2>&1 | tee -a "$LOG"
    else
        echo "nvidia-smi: not found" | tee -a "$LOG"
    fi
fi

if [ "$QUICK" = 1 ]; then
    CHECK_ARGS=(--geometry narrow --batch 1 --size 16)
    BENCH_ARGS=(--geometry narrow --size 16 --warmup 1 --steps 2)
    TORCH_ARGS=(--geometry narrow --size 16 --warmup 1 --steps 2 --skip-ops)
    OPS_ARGS=(--size 16 --warmup 1 --steps 1)
    EPOCH_ARGS=(--set 'model.widths=[8, 16, 32]' --set data.train_limit=16 --set training.epochs=1)
else
    CHECK_ARGS=(--geometry paper --batch 2 --size 64)
    BENCH_ARGS=(--geometry all --warmup 5 --steps 20)
    TORCH_ARGS=(--geometry all --warmup 5 --steps 20 --cudnn-benchmark --op-reps 20)
    OPS_ARGS=(--warmup 3 --steps 10)
    EPOCH_ARGS=(--set training.epochs=2)
fi

# ---- 2. check ---------------------------------------------------------------
run_stage check 150 "$BIN" check --device "$DEVICE" "${CHECK_ARGS[@]}" --json "$OUT/check.json"

# ---- 3. bench (Rust) --------------------------------------------------------
run_stage bench 120 "$BIN" bench --device "$DEVICE" --skip-ops "${BENCH_ARGS[@]}" \
    --json "$OUT/bench_rust.json"

# ---- 4. bench (PyTorch) -----------------------------------------------------
TORCH_WHY=""
if ! command -v "$PYTHON" > /dev/null; then
    TORCH_WHY="no $PYTHON on this machine"
elif ! "$PYTHON" -c 'import torch' > /dev/null 2>&1; then
    TORCH_WHY="$PYTHON cannot import torch"
elif [ "$DEVICE" = cuda ] && ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
        > /dev/null 2>&1; then
    TORCH_WHY="torch $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>&1) sees no CUDA device"
fi
if [ -n "$TORCH_WHY" ]; then
    STAGES+=("torch=skipped: $TORCH_WHY")
    echo "== torch: skipped: $TORCH_WHY" | tee -a "$LOG"
else
    run_stage torch 100 env PYTHONUNBUFFERED=1 "$PYTHON" "$HERE/bench_torch.py" --device "$DEVICE" \
        "${TORCH_ARGS[@]}" --json "$OUT/bench_torch.json"
fi

# ---- 5. epochs of the paper configuration -----------------------------------
for arch in imex resnet; do
    rm -f "$OUT/metrics_$arch.csv"
    run_stage "epochs_$arch" 120 "$BIN" "experiments/qtips_$arch.toml" --device "$DEVICE" "${EPOCH_ARGS[@]}" \
        --set "experiment.name=gpucheck_$arch" --set "experiment.output_dir=$WORK/runs" \
        --set "data.path=$WORK/qtips" --restart
    # What finished is kept even after a time-out: the CSV gains a row per epoch.
    if [ -f "$WORK/runs/gpucheck_$arch/metrics.csv" ]; then
        cp "$WORK/runs/gpucheck_$arch/metrics.csv" "$OUT/metrics_$arch.csv"
    fi
done

# ---- 6. building blocks (whatever time is left) -----------------------------
run_stage ops 90 "$BIN" bench --device "$DEVICE" --only-ops "${OPS_ARGS[@]}" --json "$OUT/bench_rust_ops.json"

# ---- summary ----------------------------------------------------------------
SUMMARY_ARGS=(--out "$OUT" --device "$DEVICE" --elapsed "$(( $(date +%s) - START ))")
[ "$QUICK" = 1 ] && SUMMARY_ARGS+=(--quick)
for s in "${STAGES[@]}"; do SUMMARY_ARGS+=(--stage "$s"); done
SUMMARY_PY=$PYTHON
command -v "$SUMMARY_PY" > /dev/null || SUMMARY_PY=python3
echo
"$SUMMARY_PY" "$HERE/gpu_check_summary.py" "${SUMMARY_ARGS[@]}" | tee "$OUT/summary.md"
exit "${PIPESTATUS[0]}"
