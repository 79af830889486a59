#!/usr/bin/env python3
"""This machine's achievable fp32 matmul / conv throughput, the FLOPs of one CycleGAN step, and MFU.

FLOPs are counted by torch.utils.flop_counter over one real training step (forward of G_A, G_B,
reconstructions and identities, D passes, both backward passes; the Adam update is not counted).
MFU = step FLOPs / (step time x measured conv throughput). Step times come from bench/train_step.py
in the same run unless --step_seconds is given.

usage: python bench/roofline.py [--sizes 128 256] [--threads 2] [--iters 3]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import time_brushwork  # noqa: E402

from brushwork.cyclegan import StepWeights, train_step  # noqa: E402
from brushwork.networks import NLayerDiscriminator, ResnetGenerator, init_weights  # noqa: E402
from brushwork.pool import ImagePool  # noqa: E402


def best_rate(fn, flops, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return flops / min(times)


def peak_rates(dtype=torch.float32):
    n = 2048
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    matmul = best_rate(lambda: a @ b, 2 * n ** 3)
    x = torch.randn(1, 256, 66, 66, dtype=dtype)
    w = torch.randn(256, 256, 3, 3, dtype=dtype)
    conv = best_rate(lambda: torch.nn.functional.conv2d(x, w), 2 * 256 * 256 * 9 * 64 * 64)
    return matmul, conv


def step_flops(size, batch=1):
    nets = {n: init_weights(ResnetGenerator() if n[0] == "G" else NLayerDiscriminator()) for n in ("G_A", "G_B", "D_A", "D_B")}
    opt_G = torch.optim.Adam(list(nets["G_A"].parameters()) + list(nets["G_B"].parameters()), 2e-4)
    opt_D = torch.optim.Adam(list(nets["D_A"].parameters()) + list(nets["D_B"].parameters()), 2e-4)
    a, b = torch.rand(batch, 3, size, size) * 2 - 1, torch.rand(batch, 3, size, size) * 2 - 1
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(a, b, G_A=nets["G_A"], G_B=nets["G_B"], D_A=nets["D_A"], D_B=nets["D_B"], raw_D_A=nets["D_A"],
                   raw_D_B=nets["D_B"], opt_G=opt_G, opt_D=opt_D, pools={"A": ImagePool(50), "B": ImagePool(50)},
                   w=StepWeights())
    return counter.get_total_flops()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    matmul, conv = peak_rates()
    print(json.dumps({"threads": args.threads, "matmul_gflops": round(matmul / 1e9, 1), "conv_gflops": round(conv / 1e9, 1)}))
    bf16 = getattr(torch.backends.mkldnn, "is_bf16_supported", lambda: False)()
    print(json.dumps({"cpu_native_bf16": bool(bf16)}))
    for size in args.sizes:
        flops = step_flops(size)
        seconds = statistics.median(time_brushwork(size, 1, args.iters, 1))
        print(json.dumps({"size": size, "step_gflop": round(flops / 1e9, 1), "step_s": round(seconds, 3),
                          "achieved_gflops": round(flops / seconds / 1e9, 1), "mfu_vs_conv_peak": round(flops / seconds / conv, 3)}))


if __name__ == "__main__":
    main()
