#!/usr/bin/env python3
"""The scaling figure and tables of BENCHMARKS.md, from scripts/bench-scaling.sh's JSON files.

    python3 scripts/plot_scaling.py bench-scaling --out figures/bench_scaling

Writes OUT.png and OUT.svg (needs matplotlib) and prints the Markdown tables.
"""
import argparse
import json
import re
from pathlib import Path

SIZES = (32, 64, 128, 256)
WIDTHS = (8, 32, 128, 256)


def ours(path):
    """{name: median ms} of an imex-run bench JSON."""
    return {t["name"]: t["median_ms"] for t in json.loads(path.read_text())["timings"]}


def torch(path):
    return json.loads(path.read_text())


def op_rows(folder):
    rows = []
    for size in SIZES:
        mine, theirs = ours(folder / f"flex_ops_{size}.json"), torch(folder / f"torch_ops_{size}.json")
        for op in theirs["ops"]:
            c = op["channels"]
            shape = f"[{theirs['settings']['batch']},{c},{size},{size}]"
            rows.append(dict(size=size, channels=c,
                             conv=mine[f"conv3x3 fwd+bwd {shape}"], solve=mine[f"implicit solve fwd+bwd {shape}"],
                             torch_conv=op["conv3x3_fwd_bwd_ms"], torch_solve=op["implicit_solve_fwd_bwd_ms"]))
    return rows


def step_rows(folder, kind, keys):
    rows = []
    for key in keys:
        mine, theirs = ours(folder / f"flex_{kind}_{key}.json"), torch(folder / f"torch_{kind}_{key}.json")
        steps = {re.sub(r"\s+", " ", name.split("train step")[1]).strip().split()[-1]: ms
                 for name, ms in mine.items() if name.startswith("train step")}
        for run in theirs["train"]:
            rows.append(dict(key=key, arch=run["mode"], ours=steps[run["mode"]] / 1e3,
                             torch=run["median_s_per_step"]))
    return rows


def tables(ops, sizes, widths):
    print("Building blocks, forward + backward, batch 8, ms (ours: dense Hartley solve; PyTorch: FFT solve):\n")
    print("| size | C | conv ours | conv PyTorch | solve ours | solve PyTorch | solve / conv (ours) | solve ours / PyTorch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in ops:
        print(f"| {r['size']} | {r['channels']} | {r['conv']:.2f} | {r['torch_conv']:.2f} | {r['solve']:.2f} | "
              f"{r['torch_solve']:.2f} | {r['solve'] / r['conv']:.2f} | {r['solve'] / r['torch_solve']:.2f} |")
    for title, rows, label in (("Narrow training step (8/16/32) against image size", sizes, "size"),
                               ("Training step of one block of 4 layers, 64×64, against width", widths, "width")):
        print(f"\n{title}, s/step (speed vs PyTorch = PyTorch's time / ours):\n")
        print(f"| {label} | network | ours | PyTorch | speed vs PyTorch |\n| --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r['key']} | {r['arch']} | {r['ours']:.4f} | {r['torch']:.4f} | {r['torch'] / r['ours']:.2f}× |")


def figure(ops, sizes, widths, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    ax = axes[0]
    for c, colour in zip(sorted({r["channels"] for r in ops}), ("tab:blue", "tab:orange", "tab:green")):
        rs = [r for r in ops if r["channels"] == c]
        x = [r["size"] for r in rs]
        ax.plot(x, [r["solve"] for r in rs], "-o", color=colour, label=f"solve, ours (Hartley), C={c}")
        ax.plot(x, [r["torch_solve"] for r in rs], "--s", color=colour, label=f"solve, PyTorch (FFT), C={c}")
        ax.plot(x, [r["conv"] for r in rs], ":", color=colour, label=f"3×3 conv, ours, C={c}")
    ax.set(xscale="log", yscale="log", xlabel="image size (H = W)", ylabel="forward + backward, ms",
           title="implicit solve vs 3×3 convolution (batch 8)")
    ax.set_xticks(SIZES, [str(s) for s in SIZES])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.legend(fontsize=7)
    for ax, rows, xlabel, title in ((axes[1], sizes, "image size (H = W)", "narrow training step (8/16/32) against image size"),
                                    (axes[2], widths, "width (one block of 4 layers, 64×64)",
                                     "training step against width")):
        for arch, colour in (("imex", "tab:red"), ("resnet", "tab:gray")):
            rs = [r for r in rows if r["arch"] == arch]
            x = [r["key"] for r in rs]
            ax.plot(x, [r["ours"] for r in rs], "-o", color=colour, label=f"{arch}, imex-run")
            ax.plot(x, [r["torch"] for r in rs], "--s", color=colour, label=f"{arch}, PyTorch")
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="s / step", title=title)
        ax.set_xticks(sorted({r["key"] for r in rows}), [str(k) for k in sorted({r["key"] for r in rows})])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.legend(fontsize=8)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(f"{out}.{ext}", dpi=110)
        print(f"wrote {out}.{ext}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", default="figures/bench_scaling")
    a = ap.parse_args()
    ops = op_rows(a.folder)
    sizes = step_rows(a.folder, "narrow", SIZES)
    widths = step_rows(a.folder, "width", WIDTHS)
    tables(ops, sizes, widths)
    figure(ops, sizes, widths, a.out)


if __name__ == "__main__":
    main()
