#!/usr/bin/env python3
"""Gatys iteration time per pair: sequential (B=1) vs batched (B=4, 8), and peak memory at 512 px.

Random VGG-19 weights (the speed is the same as with trained ones), the default preset's layers
(content conv4_2, style conv1_1..conv5_1), mean losses, L-BFGS without line search so every
iteration is exactly one batched forward/backward. Prints JSON lines and a markdown table.

usage: python bench/gatys.py [--sizes 128 256] [--batches 1 4 8] [--iters 5] [--threads 2] [--memory_size 512]
                            [--winograd on|off]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import torch

from brushwork import gatys, optim, vgg

CONTENT = ["conv4_2"]
STYLE = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]


def problem(B, size, device="cpu", winograd=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = vgg.load_state(random_init=True)
    V = vgg.VGGFeatures(CONTENT + STYLE, state, pooling="avg", winograd=winograd).to(device).eval()
    g = torch.Generator().manual_seed(0)
    contents = torch.rand(B, 3, size, size, generator=g).to(device)
    styles = torch.rand(B, 3, size, size, generator=g).to(device)
    ct = gatys.content_targets(V, contents, CONTENT)
    grams = [gatys.style_targets(V, [styles[[b]]], [1.0], STYLE, "mean") for b in range(B)]
    t = lambda v: torch.full((B,), v, device=device)
    targets = gatys.Targets(ct, {l: torch.stack([gm[l] for gm in grams]) for l in STYLE},
                            torch.ones(B, 1, device=device), torch.full((B, 5), 0.2, device=device), t(1.0), t(1e6), t(0.0))
    return gatys.GatysObjective(V, targets, CONTENT, STYLE, "mean"), contents


def seconds_per_iteration(B, size, iters, device="cpu", winograd=True):
    objective, x0 = problem(B, size, device, winograd)
    optim.batched_lbfgs(x0, objective, max_iter=2, line_search_fn=None)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    _, hist = optim.batched_lbfgs(x0, objective, max_iter=iters, line_search_fn=None, tolerance_change=0,
                                  tolerance_grad=0)
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    evals = len(hist[0])
    return dt / evals  # one evaluation = one iteration for every pair in the batch


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--memory_size", type=int, default=512)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--winograd", choices=("on", "off"), default="on",
                   help="VGG's wide 3x3 convs as Winograd F(4x4,3x3) on CPU (the runner's default) or direct")
    p.add_argument("--_memory_child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args._memory_child:
        seconds_per_iteration(1, args.memory_size, 3, args.device, args.winograd == "on")
        peak = torch.cuda.max_memory_allocated() if args.device == "cuda" else \
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({"peak_bytes": peak}))
        return
    rows = []
    for size in args.sizes:
        for B in args.batches:
            s = seconds_per_iteration(B, size, args.iters, args.device, args.winograd == "on")
            row = {"size": size, "batch": B, "s_per_eval": round(s, 4), "s_per_iteration_per_pair": round(s / B, 4),
                   "pairs_iterations_per_s": round(B / s, 3)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    child = subprocess.run([sys.executable, __file__, "--_memory_child", "--memory_size", str(args.memory_size),
                            "--threads", str(args.threads), "--device", args.device, "--winograd", args.winograd],
                           capture_output=True, text=True, check=True)
    peak = json.loads(child.stdout.strip().splitlines()[-1])["peak_bytes"]
    print(json.dumps({"memory_size": args.memory_size, "peak_gib": round(peak / 2 ** 30, 2)}))
    print("\n| px | B | s per iteration per pair | speed-up vs B=1 |\n| --- | --- | --- | --- |")
    for r in rows:
        base = next(x for x in rows if x["size"] == r["size"] and x["batch"] == min(args.batches))
        print(f"| {r['size']} | {r['batch']} | {r['s_per_iteration_per_pair']:.3f} | "
              f"{base['s_per_iteration_per_pair'] / r['s_per_iteration_per_pair']:.2f}x |")
    print(f"\npeak memory, one pair at {args.memory_size} px ({args.device}): {peak / 2 ** 30:.2f} GiB")


if __name__ == "__main__":
    main()
