#!/usr/bin/env python3
"""Where a training step's time goes, from a perf profile with call graphs.

    perf record --call-graph dwarf,16384 -F 499 -o step.perf -- \\
        imex-run bench --geometry narrow --arch resnet --skip-ops --skip-eval --steps 20 --warmup 2
    perf script -i step.perf -F tid,ip,sym | python3 scripts/profile_step.py

(`make profile ARCH=resnet` does both.) Each sample is charged to the first
category, in the order below, that a frame of its stack names: the kernels
are recognised by their module, so that their matrix products, copies and
allocations count as theirs; what is left is told apart by its leaf frame.
Samples outside the timed steps (start-up, building the network) land in
"set-up", which a long enough --steps makes small.
"""
import sys
from collections import Counter

# (category, substrings of a frame's symbol), tried in order over the whole stack.
BY_STACK = [
    ("set-up (network, data, Fourier tables)", ["Network<B>::new", "FourierBasis<B>::new", "Tensor<B,_>::random"]),
    ("implicit solve (Hartley products)", ["flex::solve::"]),
    ("convolution: Winograd products", ["flex::products::"]),
    ("convolution: Winograd transforms", ["flex::winograd::"]),
    ("convolution: im2col", ["flex::conv::im2col"]),
    ("convolution: matrix products", ["flex::host::matmul"]),
    ("convolution: other (kernel flip, ∂K sum)", ["flex::conv::"]),
    ("batch normalisation (and ReLU)", ["flex::batchnorm::"]),
    ("residual update", ["flex::residual::"]),
    ("optimiser (SGD update)", ["burn_optim::", "burn_core::optim", "Optimizer", "GradientsParams"]),
    ("kernel projection (zero mean)", ["project_zero_mean", "project_kernels"]),
    ("loss (log-softmax, weighted NLL)", ["weighted_nll", "log_softmax", "flex::softmax::"]),
    ("activation (ReLU)", ["relu", "Relu"]),
]
# Tried on the leaf frame only, for what no kernel above claimed.
BY_LEAF = [
    ("memory: zeroing, copies, allocation", ["memset", "memmove", "memcpy", "malloc", "free", "_int_", "page", "clear_page"]),
    ("other Burn operations (add, scale, layout)", ["burn_flex::", "burn_backend::", "macerator", "StridedIter"]),
    ("autodiff bookkeeping", ["burn_autodiff::", "Gradients"]),
]


def samples(lines):
    stack = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if stack:
                yield stack
            stack = []
        elif line.startswith(("\t", " ")):
            parts = line.strip().split(None, 1)
            stack.append(parts[1] if len(parts) > 1 else parts[0])
        # a header line (thread id) starts a sample
    if stack:
        yield stack


def category(stack):
    for name, keys in BY_STACK:
        if any(key in frame for frame in stack for key in keys):
            return name
    leaf = stack[0]
    for name, keys in BY_LEAF:
        if any(key in leaf for key in keys):
            return name
    if any("burn_autodiff::" in frame for frame in stack):
        return "autodiff bookkeeping"
    if any("rayon" in frame for frame in stack[:3]):
        return "thread pool (rayon scheduling, idle spin)"
    return "other"


def main():
    counts = Counter(category(stack) for stack in samples(sys.stdin))
    total = sum(counts.values())
    if total == 0:
        sys.exit("no samples on stdin: pipe in `perf script -F tid,ip,sym` of a --call-graph profile")
    print(f"| where | share of samples |\n| --- | --- |")
    for name, n in counts.most_common():
        print(f"| {name} | {100 * n / total:.1f}% |")
    print(f"\n{total} samples")


if __name__ == "__main__":
    main()
