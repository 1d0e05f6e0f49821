#!/usr/bin/env python3
"""PyTorch timings of the IMEXnet / ResNet training step, on the CPU or a CUDA GPU:
the side-by-side figure for `imex-run bench`.

Source: an extension of the peer reference's benchmark, shared/peer/bench_ref.py,
with the network of shared/peer/imex_ref.py (torch back end: t_project, t_bn,
t_padded_kernel, t_implicit_solve, t_forward, init_params, layer_table), both
written independently of this project from the mathematics and the authors'
semantics (HaberGroup/SemiImplicitDNNs), and checked there against the authors'
code. The network functions below are copied unchanged (dump hooks and the
in-graph projection option left out); this copy adds --device cpu|cuda (CUDA:
torch.cuda.synchronize around every timing, warm-up steps, optional
cudnn.benchmark and TF32 switches), --geometry as `imex-run bench`, a summary
table and the device facts in the JSON.

1. A full training step = forward + weighted cross entropy + backward + plain
   SGD update (lr 1e-3, momentum 0; parameters K_j, L_j (IMEX), W, as in the
   authors' synth.py; same-width K_j, L_j projected to zero mean in place
   before each forward, BN gamma/beta not trained), float32, batch 8, 64x64
   single-channel input, for
     paper  geometry: widths 64,128,256, depths 4,4,4
     narrow geometry: widths  8, 16, 32, depths 4,4,4
   and for both imex and resnet. Median seconds per step and images per second
   over --steps timed steps after --warmup steps.
2. The implicit solve alone (FFT based) against one 3x3 convolution C->C of the
   same shape (batch 8, 64x64), forward and forward+backward.

Usage: python3 scripts/bench_torch.py [--device cpu|cuda] [--geometry narrow|paper|all]
           [--steps 5] [--warmup 2] [--batch 8] [--size 64] [--skip-ops] [--skip-train]
           [--op-reps 30] [--threads N] [--cudnn-benchmark] [--tf32 default|on|off]
           [--json out.json]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------
# the network: shared/peer/imex_ref.py, torch back end, unchanged
# --------------------------------------------------------------------------
DEFAULT_CONFIG = dict(mode="imex", in_channels=1, widths=[64, 128, 256], depths=[4, 4, 4],
                      h=1.0, n_classes=4, bn_eps=1e-5, project=True, bn_before_implicit=True)
QTIPS_WEIGHTS = [0.061463356018066406, 0.9810366630554199, 0.9787864685058594, 0.9787135124206543]
GEOMS = {
    "paper": dict(widths=[64, 128, 256], depths=[4, 4, 4]),
    "narrow": dict(widths=[8, 16, 32], depths=[4, 4, 4]),
}


def merged_config(base):
    cfg = dict(DEFAULT_CONFIG)
    cfg.update(base)
    assert cfg["mode"] in ("imex", "resnet"), cfg["mode"]
    return cfg


def layer_table(cfg):
    """[(c_in, c_out)] per layer, block by block."""
    layers = []
    cprev = int(cfg["in_channels"])
    for w, d in zip(cfg["widths"], cfg["depths"]):
        w, d = int(w), int(d)
        assert d >= 1
        layers.append((cprev, w))
        layers.extend([(w, w)] * (d - 1))
        cprev = w
    return layers


def is_step(cin, cout):
    return cin == cout


def project_np(K):
    s = K.shape
    k = K.reshape(-1, s[-2] * s[-1])
    return (k - k.mean(1, keepdims=True)).reshape(s)


def init_params(cfg, seed=0, k_scale=1e-3, l_scale=1.0, w_scale=1e-3):
    """Authors' initialisation: K ~ U[0,1)*1e-3 then projected, L ~ U[0,1),
    W ~ U[0,1)*1e-3, BN gamma=1, beta=0."""
    rng = np.random.default_rng(seed)
    t = {}
    for j, (ci, co) in enumerate(layer_table(cfg)):
        t[f"K{j}"] = project_np(rng.random((co, ci, 3, 3)) * k_scale).astype(np.float32)
        if cfg["mode"] == "imex" and is_step(ci, co):
            t[f"L{j}"] = (rng.random((co, 1, 3, 3)) * l_scale).astype(np.float32)
        t[f"bn{j}_weight"] = np.ones(co, np.float32)
        t[f"bn{j}_bias"] = np.zeros(co, np.float32)
    c_last = layer_table(cfg)[-1][1]
    t["W"] = (rng.random((int(cfg["n_classes"]), c_last)) * w_scale).astype(np.float32)
    return t


def t_project(K):
    s = K.shape
    k = K.reshape(-1, s[-2] * s[-1])
    return (k - k.mean(1, keepdim=True)).reshape(s)


def t_bn(x, g, b, eps):
    return F.batch_norm(x, None, None, g, b, training=True, momentum=0.0, eps=eps)


def t_padded_kernel(L, H, W):
    """(C,1,3,3) -> (C,H,W): zero-padded, tap (a,b) at ((a-1) mod H, (b-1) mod W)."""
    L = L.reshape(L.shape[0], 3, 3)
    Kp = L.new_zeros(L.shape[0], H, W)
    Kp = Kp.clone()
    Kp[:, :3, :3] = L
    return torch.roll(Kp, shifts=(-1, -1), dims=(1, 2))


def t_implicit_solve(x, L, h):
    H, W = x.shape[-2:]
    Lh = torch.fft.fft2(t_padded_kernel(L, H, W))
    den = 1.0 + h * (Lh.real ** 2 + Lh.imag ** 2)
    return torch.fft.ifft2(torch.fft.fft2(x) / den[None]).real


def t_forward(p, x, cfg):
    """Same-width K_j/L_j must already be projected (outside autograd)."""
    h = float(cfg["h"])
    eps = float(cfg["bn_eps"])
    for j, (ci, co) in enumerate(layer_table(cfg)):
        K = p[f"K{j}"]
        g, b = p[f"bn{j}_weight"], p[f"bn{j}_bias"]
        if not is_step(ci, co):
            x = F.relu(t_bn(F.conv2d(x, K, padding=1), g, b, eps))
        else:
            z = F.relu(t_bn(F.conv2d(x, K, padding=1), g, b, eps))
            x = x + h * F.conv_transpose2d(z, K, padding=1)
            if cfg["mode"] == "imex":
                if cfg["bn_before_implicit"]:
                    x = t_bn(x, g, b, eps)
                x = t_implicit_solve(x, p[f"L{j}"], h)
    logits = F.conv2d(x, p["W"][:, :, None, None])
    return logits, x


# --------------------------------------------------------------------------
# the benchmark: shared/peer/bench_ref.py, extended to a device
# --------------------------------------------------------------------------
DEVICE = torch.device("cpu")


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def make_params(cfg, seed=0):
    t = init_params(cfg, seed=seed)  # authors' init scales
    p = {}
    for k, v in t.items():
        trainable = k.startswith("K") or k.startswith("L") or k == "W"
        p[k] = torch.tensor(v, dtype=torch.float32, device=DEVICE, requires_grad=trainable)
    return p


def train_step(p, cfg, x, lab, cw, lr):
    with torch.no_grad():   # authors: projection on .data, outside autograd
        for j, (ci, co) in enumerate(layer_table(cfg)):
            if ci == co:
                p[f"K{j}"].copy_(t_project(p[f"K{j}"]))
                if f"L{j}" in p:
                    p[f"L{j}"].copy_(t_project(p[f"L{j}"]))
    logits, _ = t_forward(p, x, cfg)
    loss = F.cross_entropy(logits, lab, weight=cw)
    loss.backward()
    with torch.no_grad():
        for v in p.values():
            if v.grad is not None:
                v.sub_(lr * v.grad)
                v.grad = None
    return loss.item()   # a read-back: waits for the device, as imex-run bench does


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def bench_train(geom, mode, a):
    cfg = merged_config(dict(mode=mode, **GEOMS[geom], h=1.0))
    return bench_config(geom, mode, cfg, a)


def bench_config(geom, mode, cfg, a):
    p = make_params(cfg)
    g = torch.Generator().manual_seed(0)   # on the host: the same batch on every device
    x = torch.randn(a.batch, 1, a.size, a.size, generator=g).to(DEVICE)
    lab = torch.randint(0, 4, (a.batch, a.size, a.size), generator=g).to(DEVICE)
    cw = torch.tensor(QTIPS_WEIGHTS, device=DEVICE)
    times, losses = [], []
    load0 = loadavg()
    for i in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        losses.append(train_step(p, cfg, x, lab, cw, 1e-3))
        sync()
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)
    med = statistics.median(times)
    ft = []
    with torch.no_grad():
        for i in range(max(2, a.steps // 2) + 1):
            sync()
            t0 = time.perf_counter()
            t_forward(p, x, cfg)
            sync()
            if i > 0:
                ft.append(time.perf_counter() - t0)
    res = dict(geometry=geom, mode=mode, widths=cfg["widths"], depths=cfg["depths"], batch=a.batch,
               size=a.size, median_s_per_step=med, images_per_s=a.batch / med,
               step_times_s=[round(t, 6) for t in times], min_s_per_step=min(times),
               loadavg_before=load0, loadavg_after=loadavg(),
               forward_only_median_s=statistics.median(ft),
               first_loss=losses[0], last_loss=losses[-1])
    print(f"train step  {geom:6s} {mode:6s}: median {med:9.5f} s/step  {a.batch / med:9.2f} img/s"
          f"  min {min(times):.5f} s  (forward only {statistics.median(ft):.5f} s;"
          f" loss {losses[0]:.4f} -> {losses[-1]:.4f}; load {load0} -> {res['loadavg_after']})",
          flush=True)
    return res


def timeit(fn, reps, warm=3):
    """median wall seconds, the device synchronised around each call"""
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_ops(a):
    out = []
    g = torch.Generator().manual_seed(1)
    for C in a.op_widths:
        x = torch.randn(a.batch, C, a.size, a.size, generator=g).to(DEVICE)
        K = (torch.randn(C, C, 3, 3, generator=g) * 0.1).to(DEVICE)
        L = t_project(torch.rand(C, 1, 3, 3, generator=g)).to(DEVICE)
        reps = a.op_reps if C * a.size ** 2 <= 64 ** 3 else max(5, a.op_reps // 3)
        t_conv = timeit(lambda: F.conv2d(x, K, padding=1), reps)
        t_solve = timeit(lambda: t_implicit_solve(x, L, 1.0), reps)
        xg = x.clone().requires_grad_(True)
        Kg = K.clone().requires_grad_(True)
        Lg = L.clone().requires_grad_(True)
        gy = torch.randn_like(x)

        def conv_fb():
            y = F.conv2d(xg, Kg, padding=1)
            y.backward(gy)
            xg.grad = None
            Kg.grad = None

        def solve_fb():
            y = t_implicit_solve(xg, Lg, 1.0)
            y.backward(gy)
            xg.grad = None
            Lg.grad = None
        t_conv_fb = timeit(conv_fb, reps)
        t_solve_fb = timeit(solve_fb, reps)
        r = dict(channels=C, shape=[a.batch, C, a.size, a.size], loadavg=loadavg(),
                 conv3x3_fwd_ms=1e3 * t_conv, implicit_solve_fwd_ms=1e3 * t_solve,
                 solve_over_conv_fwd=t_solve / t_conv,
                 conv3x3_fwd_bwd_ms=1e3 * t_conv_fb, implicit_solve_fwd_bwd_ms=1e3 * t_solve_fb,
                 solve_over_conv_fwd_bwd=t_solve_fb / t_conv_fb)
        print(f"ops C={C:3d}: conv3x3 {r['conv3x3_fwd_ms']:8.3f} ms, implicit solve {r['implicit_solve_fwd_ms']:8.3f} ms"
              f" (ratio {r['solve_over_conv_fwd']:.3f});  fwd+bwd: conv {r['conv3x3_fwd_bwd_ms']:8.3f} ms,"
              f" solve {r['implicit_solve_fwd_bwd_ms']:8.3f} ms (ratio {r['solve_over_conv_fwd_bwd']:.3f})", flush=True)
        out.append(r)
    return out


def facts_of(a):
    facts = dict(torch_version=torch.__version__, numpy_version=np.__version__, device=str(DEVICE),
                 torch_num_threads=torch.get_num_threads(), nproc=os.cpu_count(),
                 python=platform.python_version(), machine=platform.machine(),
                 cpu=open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t")
                 if os.path.exists("/proc/cpuinfo") else "?",
                 mkldnn=torch.backends.mkldnn.is_available())
    if DEVICE.type == "cuda":
        facts.update(gpu=torch.cuda.get_device_name(DEVICE), cuda_version=torch.version.cuda,
                     cudnn_version=torch.backends.cudnn.version(),
                     cudnn_benchmark=torch.backends.cudnn.benchmark,
                     tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                     tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return facts


def summary_table(res):
    lines = ["| geometry | network | s/step (median) | img/s | forward only s |",
             "| --- | --- | --- | --- | --- |"]
    for r in res["train"]:
        lines.append(f"| {r['geometry']} | {r['mode']} | {r['median_s_per_step']:.5f} | "
                     f"{r['images_per_s']:.2f} | {r['forward_only_median_s']:.5f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--geometry", choices=["narrow", "paper", "all"], default="all")
    ap.add_argument("--widths", default=None,
                    help="block widths instead of --geometry, 4 layers each, e.g. 32 or 8,16,32"
                         " (as imex-run bench --widths)")
    ap.add_argument("--arch", choices=["imex", "resnet", "both"], default="both")
    ap.add_argument("--only", choices=["paper", "narrow"], default=None,
                    help="bench_ref.py's spelling of --geometry")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-ops", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--op-reps", type=int, default=30)
    ap.add_argument("--op-widths", type=lambda v: [int(c) for c in v.split(",")],
                    default=[8, 16, 32, 64, 128, 256], help="channel counts of the building blocks")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="let cuDNN time its algorithms on the first calls (CUDA)")
    ap.add_argument("--tf32", choices=["default", "on", "off"], default="default",
                    help="TF32 in matrix products and cuDNN convolutions (CUDA); default: torch's own"
                         " (convolutions on, matmul off); the JSON records what ran")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.batch < 1 or a.size < 3:
        ap.error("need --steps >= 1, --warmup >= 0, --batch >= 1, --size >= 3")
    global DEVICE
    if a.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit(f"error: --device cuda but torch {torch.__version__} sees no CUDA device "
                     f"(built for CUDA {torch.version.cuda})")
        DEVICE = torch.device("cuda:0")
        torch.backends.cudnn.benchmark = a.cudnn_benchmark
        if a.tf32 != "default":
            torch.backends.cuda.matmul.allow_tf32 = a.tf32 == "on"
            torch.backends.cudnn.allow_tf32 = a.tf32 == "on"
    if a.threads:
        torch.set_num_threads(a.threads)
    geometry = a.only or a.geometry
    facts = facts_of(a)
    print(json.dumps(facts), flush=True)
    res = dict(facts=facts, settings=dict(steps=a.steps, warmup=a.warmup, batch=a.batch, size=a.size),
               train=[], ops=[])
    modes = ("imex", "resnet") if a.arch == "both" else (a.arch,)
    if a.widths and not a.skip_train:
        widths = [int(w) for w in a.widths.split(",")]
        for mode in modes:
            cfg = merged_config(dict(mode=mode, widths=widths, depths=[4] * len(widths), h=1.0))
            res["train"].append(bench_config(f"widths {widths}", mode, cfg, a))
    for geom in ("narrow", "paper"):
        if a.skip_train or a.widths or geometry not in ("all", geom):
            continue
        for mode in modes:
            res["train"].append(bench_train(geom, mode, a))
    if not a.skip_ops:
        res["ops"] = bench_ops(a)
    if res["train"]:
        print(summary_table(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
        print("wrote", a.json)


if __name__ == "__main__":
    main()
