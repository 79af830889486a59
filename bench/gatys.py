#!/usr/bin/env python3
"""Gatys iteration time per pair: sequential (B=1) vs batched (B=4, 8), and peak memory at 512 px.

  python bench/gatys.py --sizes 128 256 --batches 1 4 8 --repeats 3
  python bench/gatys.py --sizes 256 --batches 1 4 --winograd both     # A/B of the Winograd VGG convs

Random VGG-19 weights (the speed is the same as with trained ones), the default preset's layers
(content conv4_2, style conv1_1..conv5_1), mean losses, L-BFGS without line search so every
iteration is exactly one batched forward/backward. The rows are measured ``repeats`` times,
alternated, and reported as median (min-max). Prints JSON lines and a markdown table.
"""

from brushwork import cli
from brushwork.schemas.bench import GatysBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(GatysBench, None, __doc__))

import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import machine  # noqa: E402

from brushwork.gatys import objective as gatys
from brushwork.gatys import optim
from brushwork.models import vgg  # noqa: E402

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
    return (time.perf_counter() - t0) / len(hist[0])  # one evaluation = one iteration for every pair


def peak_memory(cfg: GatysBench, device: str, winograd: str) -> float:
    child = subprocess.run([sys.executable, __file__, "--memory_child", "--memory_size", str(cfg.memory_size),
                            "--threads", str(cfg.threads), "--device", device, "--winograd", winograd],
                           capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])["peak_bytes"]


def run(cfg: GatysBench) -> int:
    torch.set_num_threads(cfg.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    if cfg.memory_child:
        seconds_per_iteration(1, cfg.memory_size, 3, device, cfg.winograd != "off")
        peak = torch.cuda.max_memory_allocated() if device == "cuda" else \
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({"peak_bytes": peak}))
        return 0
    variants = ["off", "on"] if cfg.winograd == "both" else [cfg.winograd]
    cells = [(size, B, w) for size in cfg.sizes for B in cfg.batches for w in variants]
    times = {cell: [] for cell in cells}
    for _ in range(cfg.repeats):  # alternate over the rows, so drift hits every row alike
        for size, B, w in cells:
            times[(size, B, w)].append(seconds_per_iteration(B, size, cfg.iters, device, w == "on") / B)
    rows = []
    for (size, B, w), values in times.items():
        row = {"size": size, "batch": B, "winograd": w, "s_per_iteration_per_pair": statistics.median(values),
               "min": min(values), "max": max(values)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(f"\n{machine()}, {cfg.threads} threads, {cfg.repeats} alternated measurements of {cfg.iters} iterations\n")
    print("| px | B | Winograd | s per iteration per pair, median (min-max) | vs B = 1 |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        base = next(x for x in rows if x["size"] == r["size"] and x["batch"] == min(cfg.batches)
                    and x["winograd"] == r["winograd"])
        print(f"| {r['size']} | {r['batch']} | {r['winograd']} | {r['s_per_iteration_per_pair']:.3f} "
              f"({r['min']:.3f}-{r['max']:.3f}) | {base['s_per_iteration_per_pair'] / r['s_per_iteration_per_pair']:.2f}x |")
    if cfg.memory_size:
        for w in variants:
            peak = peak_memory(cfg, device, w)
            print(f"\npeak memory, one pair at {cfg.memory_size} px ({device}, Winograd {w}): {peak / 2 ** 30:.2f} GiB")
    return 0


COMMAND = cli.Command(GatysBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
