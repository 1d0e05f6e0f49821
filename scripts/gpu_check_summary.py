#!/usr/bin/env python3
"""The one summary table of scripts/gpu-check.sh, from what the stages wrote to OUT:
check.json (imex-run check), bench_rust.json (imex-run bench), bench_torch.json
(scripts/bench_torch.py), metrics_{imex,resnet}.csv (two epochs of the paper
configuration). Standard library only. Exits 1 if the check failed or did not run.

Targets (issue 4): on the GPU, at least PyTorch's speed for the same training step,
and the whole study (IMEX + ResNet, paper geometry, 100 epochs of 128 steps each)
within 10 minutes.
"""
import argparse
import csv
import json
import os
import re

STUDY_EPOCHS = 100
TRAIN_IMAGES = 1024      # the paper configuration: 128 steps of batch 8
TARGET_MINUTES = 10.0


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def epochs_of(path):
    """[(train_s, eval_s, train_images)] per epoch of a metrics.csv."""
    try:
        with open(path) as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    out = []
    for r in rows:
        train_s, eval_s = float(r["train_seconds"]), float(r["eval_seconds"])
        images = round(float(r["train_images_per_second"]) * train_s)
        if abs(images - TRAIN_IMAGES) <= TRAIN_IMAGES // 100:   # the CSV's rounding
            images = TRAIN_IMAGES
        out.append((train_s, eval_s, images))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--elapsed", type=float, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stage", action="append", default=[], help="name=status")
    a = ap.parse_args()
    p = lambda name: os.path.join(a.out, name)  # noqa: E731
    lines = []
    say = lines.append

    say(f"# gpu-check summary ({a.device}{', QUICK mode: not a measurement' if a.quick else ''})")
    say("")
    torch = load_json(p("bench_torch.json"))
    facts = (torch or {}).get("facts", {})
    if facts.get("gpu"):
        say(f"GPU: {facts['gpu']}; PyTorch {facts['torch_version']} (CUDA {facts.get('cuda_version')}, "
            f"cuDNN {facts.get('cudnn_version')}, cudnn.benchmark {facts.get('cudnn_benchmark')}, "
            f"TF32 matmul {facts.get('tf32_matmul')} / conv {facts.get('tf32_cudnn')})")
        say("")

    say("| stage | status |")
    say("| --- | --- |")
    for s in a.stage:
        name, _, status = s.partition("=")
        say(f"| {name} | {status} |")
    say("")

    # ---- numerical check
    check = load_json(p("check.json"))
    check_ok = False
    if check is None:
        say("Numerical check: **did not run or wrote nothing** (see gpu-check.log)")
    else:
        rows = check["rows"]
        verdicts = [r["verdict"] for r in rows]
        n_fail = verdicts.count("fail")
        n_tf32 = verdicts.count("pass_tf32")
        check_ok = n_fail == 0
        worst = {}
        for r in rows:
            if r["error"] is None:       # NaN is written as null
                r["error"] = float("nan")
            kind = r["check"].split(" ")[0]
            prev = worst.get(kind, 0.0)
            worst[kind] = float("nan") if r["error"] != r["error"] or prev != prev else max(prev, r["error"])
        say(f"Numerical check on {check['device']}: **{'PASS' if check_ok else 'FAIL'}** — "
            f"{len(rows)} comparisons, {n_fail} failed, {n_tf32} within the TF32 tolerance only; "
            + ", ".join(f"worst {k} error {v:.1e}" for k, v in worst.items()))
        for r in rows:
            if r["verdict"] != "pass":
                say(f"  - {r['check']} / {r['quantity']}: error {r['error']:.2e} "
                    f"(f32 tolerance {r['tolerance']:.0e}) → {r['verdict']}")
    say("")

    # ---- step times
    rust = load_json(p("bench_rust.json"))
    ours = {}
    for t in (rust or {}).get("timings", []):
        m = re.match(r"train step\s+(\w+)\s+(\w+)$", t["name"])
        if m:
            ours[(m.group(1), m.group(2))] = t["median_ms"]
    theirs = {(r["geometry"], r["mode"]): 1e3 * r["median_s_per_step"] for r in (torch or {}).get("train", [])}
    say("Training step (projection, forward, weighted cross-entropy, backward, SGD), float32, median:")
    say("")
    say("| geometry | network | imex-run ms/step | PyTorch ms/step | PyTorch time / ours (≥ 1: target met) |")
    say("| --- | --- | --- | --- | --- |")
    speed_ok = None
    for key in sorted(set(ours) | set(theirs), key=lambda k: (k[0] != "narrow", k[1])):
        o, t = ours.get(key), theirs.get(key)
        ratio = t / o if o and t else None
        if ratio is not None and key[0] == "paper":
            speed_ok = (speed_ok is not False) and ratio >= 1.0
        say(f"| {key[0]} | {key[1]} | {f'{o:.2f}' if o else 'n/a'} | {f'{t:.2f}' if t else 'n/a'} | "
            f"{f'{ratio:.2f}×' if ratio else 'n/a'} |")
    if not ours and not theirs:
        say("| - | - | n/a | n/a | n/a |")
    say("")

    # ---- epochs and the extrapolated study
    say(f"Epochs of the paper configuration (extrapolated to {STUDY_EPOCHS} epochs of "
        f"{TRAIN_IMAGES // 8} steps; the first epoch includes kernel compilation):")
    say("")
    say("| network | epochs run | epoch 1 s | last epoch s (train + eval) | 100 epochs, minutes |")
    say("| --- | --- | --- | --- | --- |")
    study = 0.0
    complete = True
    for arch in ("imex", "resnet"):
        eps = epochs_of(p(f"metrics_{arch}.csv"))
        if not eps:
            complete = False
            say(f"| {arch} | 0 | n/a | n/a | n/a |")
            continue
        # Scale a truncated epoch (data.train_limit) to the full 1024 images.
        full = [tr * TRAIN_IMAGES / max(img, 1) + ev for tr, ev, img in eps]
        total = full[0] + (STUDY_EPOCHS - 1) * full[-1] if len(full) > 1 else STUDY_EPOCHS * full[0]
        study += total
        trunc = "" if all(img == TRAIN_IMAGES for _, _, img in eps) else f" (from {eps[-1][2]} images)"
        say(f"| {arch} | {len(eps)} | {full[0]:.1f} | {full[-1]:.1f}{trunc} | {total / 60:.1f} |")
    say("")

    # ---- verdicts
    say("| target | value | met? |")
    say("| --- | --- | --- |")
    say(f"| numerical check | {'pass' if check_ok else 'fail / not run'} | {'yes' if check_ok else 'NO'} |")
    paper_ratios = [theirs[k] / ours[k] for k in ours if k in theirs and k[0] == "paper"]
    say(f"| step at least PyTorch's speed (paper geometry) | "
        f"{', '.join(f'{r:.2f}×' for r in paper_ratios) or 'not measured'} | "
        f"{'n/a' if speed_ok is None else ('yes' if speed_ok else 'NO')} |")
    say(f"| whole study ≤ {TARGET_MINUTES:.0f} min | "
        f"{f'{study / 60:.1f} min' if complete else 'not measured'} | "
        f"{('yes' if study / 60 <= TARGET_MINUTES else 'NO') if complete else 'n/a'} |")
    if a.elapsed is not None:
        say("")
        say(f"gpu-check took {a.elapsed:.0f} s.")
    print("\n".join(lines))
    return 0 if check_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
