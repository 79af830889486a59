#!/usr/bin/env python3
"""This machine's fp32 matmul / conv throughput, the FLOPs of one CycleGAN step, and the utilisation.

  python bench/roofline.py --sizes 128 256 --iters 3

Two FLOP counts per step (torch.utils.flop_counter over one real trainer step; Adam not counted):
*model FLOPs* are the direct-convolution arithmetic of the network (what the original code
executes), *executed FLOPs* what brushwork's step actually runs (with --block_conv winograd the
ResNet-block convs become Winograd products, about a quarter of their direct FLOPs). Utilisation is
model FLOPs per second of the measured step over the direct-conv peak (MFU); above 100 % means
fewer operations than the model's, not a faster machine.
"""

from brushwork import cli
from brushwork.schemas.bench import RooflineBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(RooflineBench, None, __doc__))

import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import machine, paper_trainer, random_batch, time_steps  # noqa: E402


def best_rate(fn, flops, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return flops / min(times)


def peak_rates():
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    matmul = best_rate(lambda: a @ b, 2 * n ** 3)
    x, w = torch.randn(1, 256, 66, 66), torch.randn(256, 256, 3, 3)
    conv = best_rate(lambda: torch.nn.functional.conv2d(x, w), 2 * 256 * 256 * 9 * 64 * 64)
    return matmul, conv


def step_flops(size: int, winograd: bool) -> int:
    trainer = paper_trainer(winograd=winograd)
    data = random_batch(size, 1, generator=torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.step(data)
    return counter.get_total_flops()


def run(cfg: RooflineBench) -> int:
    torch.set_num_threads(cfg.threads)
    matmul, conv = peak_rates()
    print(json.dumps({"machine": machine(), "threads": cfg.threads, "matmul_gflops": round(matmul / 1e9, 1),
                      "conv_gflops": round(conv / 1e9, 1),
                      "cpu_native_bf16": bool(getattr(torch.backends.mkldnn, "is_bf16_supported", lambda: False)())}))
    winograd = cfg.block_conv == "winograd"
    for size in cfg.sizes:
        model, executed = step_flops(size, winograd=False), step_flops(size, winograd=winograd)
        seconds = statistics.median(time_steps(paper_trainer(winograd=winograd), size, 1, cfg.iters, 1))
        print(json.dumps({"size": size, "block_conv": cfg.block_conv, "model_gflop": round(model / 1e9, 1),
                          "executed_gflop": round(executed / 1e9, 1), "step_s": round(seconds, 3),
                          "model_gflops_per_s": round(model / seconds / 1e9, 1),
                          "executed_gflops_per_s": round(executed / seconds / 1e9, 1),
                          "mfu_vs_conv_peak": round(model / seconds / conv, 3)}), flush=True)
    return 0


COMMAND = cli.Command(RooflineBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
