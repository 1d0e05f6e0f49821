#!/usr/bin/env python3
"""The training-step table of one benchmark sitting (scripts/bench-sitting.sh):
s/step per binary, geometry and network, the median of the rounds' medians
(narrow: the rounds' spread in brackets), and speed against PyTorch.

    python3 scripts/sitting_table.py benchmarks/2026-12-05-winograd
"""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def rounds(folder):
    """{(label, geometry, network): [s/step of each round]}."""
    found = defaultdict(list)
    for path in sorted(Path(folder).glob("*.json")):
        label, geometry = path.stem.split("_")[:2]
        data = json.loads(path.read_text())
        if label == "torch":
            for row in data["train"]:
                found[(label, geometry, row["mode"])].append(row["median_s_per_step"])
        else:
            for row in data["timings"]:
                if row["name"].startswith("train step"):
                    network = row["name"].split()[-1]
                    found[(label, geometry, network)].append(row["median_ms"] / 1000)
    return found


def main(folder):
    found = rounds(folder)
    labels = sorted({label for label, _, _ in found} - {"torch"}) + ["torch"]
    print("| geometry | network | " + " | ".join(labels) + " | " + " | ".join(f"{l} vs PyTorch" for l in labels[:-1]) + " |")
    print("| --- " * (2 + 2 * len(labels) - 1) + "|")
    for geometry in ("narrow", "paper"):
        for network in ("imex", "resnet"):
            cells, medians = [], {}
            for label in labels:
                times = found.get((label, geometry, network))
                if not times:
                    cells.append("—")
                    continue
                medians[label] = statistics.median(times)
                spread = f" ({min(times):.4f}–{max(times):.4f})" if len(times) > 1 else ""
                cells.append(f"{medians[label]:.4f}{spread}")
            ratios = [
                f"{medians['torch'] / medians[l]:.2f}×" if l in medians and "torch" in medians else "—"
                for l in labels[:-1]
            ]
            print(f"| {geometry} | {network} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
