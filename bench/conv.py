#!/usr/bin/env python3
"""One 3x3 stride-1 convolution, forward + backward (input and weight gradients): Winograd against direct.

  python bench/conv.py --maps 16 32 64 --channels 64 128 256 --repeats 10

The ResNet-block conv of the paper's generator is 256 channels (ngf 64 x 4) on 32x32 maps at
128 px images and 64x64 at 256 px. Each cell alternates the two methods ``repeats`` times and
reports the median and spread; ``pays off`` is what ``winograd.pays_off`` decides for that shape
(the trainer runs Winograd only there).
"""

from brushwork import cli
from brushwork.schemas.bench import ConvBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(ConvBench, None, __doc__))

import statistics
import sys
import time

import torch
import torch.nn.functional as F

from brushwork.models import winograd


def once(fn, x, w, b) -> float:
    x = x.detach().requires_grad_(True)
    w = w.detach().requires_grad_(True)
    t0 = time.perf_counter()
    fn(x, w, b).sum().backward()
    return time.perf_counter() - t0


def run(cfg: ConvBench) -> int:
    torch.set_num_threads(cfg.threads)
    print(f"{cfg.threads} threads, {cfg.repeats} alternated runs per cell, times in ms (median, min-max)\n")
    print("| channels | map | direct ms | Winograd ms | speed | pays off |\n| --- | --- | --- | --- | --- | --- |")
    for channels in cfg.channels:
        for side in cfg.maps:
            g = torch.Generator().manual_seed(0)
            x = torch.randn(1, channels, side + 2, side + 2, generator=g)
            w = torch.randn(channels, channels, 3, 3, generator=g) * 0.05
            b = torch.zeros(channels)
            for fn in (F.conv2d, winograd.conv3x3):  # warm-up both
                once(fn, x, w, b)
            direct, fast = [], []
            for _ in range(cfg.repeats):
                direct.append(1000 * once(F.conv2d, x, w, b))
                fast.append(1000 * once(winograd.conv3x3, x, w, b))
            d, f = statistics.median(direct), statistics.median(fast)
            pays = winograd.pays_off(x, w)
            print(f"| {channels} | {side}x{side} | {d:.1f} ({min(direct):.1f}-{max(direct):.1f}) | {f:.1f} "
                  f"({min(fast):.1f}-{max(fast):.1f}) | {d / f:.2f}x | {'yes' if pays else 'no'} |", flush=True)
    return 0


COMMAND = cli.Command(ConvBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
