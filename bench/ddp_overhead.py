#!/usr/bin/env python3
"""DDP overhead: the CycleGAN step (ngf 64, 128 px, batch 1 per process) in 1 vs 2 gloo processes.

Run it under accelerate; each process uses one thread, so 1 and 2 processes get equal resources
per process on a 2-core machine. Rank 0 prints the median step time; compare the two runs:
  accelerate launch --num_processes 1 bench/ddp_overhead.py
  accelerate launch --multi_gpu --num_processes 2 bench/ddp_overhead.py
"""

import argparse
import json
import statistics
import time

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs

from brushwork.cyclegan import StepWeights, train_step
from brushwork.networks import NLayerDiscriminator, ResnetGenerator, init_weights
from brushwork.pool import ImagePool


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(1)
    acc = Accelerator(cpu=not torch.cuda.is_available(),
                      kwargs_handlers=[DistributedDataParallelKwargs(gradient_as_bucket_view=True)])
    torch.manual_seed(0)
    nets = {n: init_weights(ResnetGenerator() if n[0] == "G" else NLayerDiscriminator()) for n in ("G_A", "G_B", "D_A", "D_B")}
    opt_G = torch.optim.Adam(list(nets["G_A"].parameters()) + list(nets["G_B"].parameters()), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(list(nets["D_A"].parameters()) + list(nets["D_B"].parameters()), 2e-4, betas=(0.5, 0.999))
    G_A, G_B, D_A, D_B, opt_G, opt_D = acc.prepare(nets["G_A"], nets["G_B"], nets["D_A"], nets["D_B"], opt_G, opt_D)
    pools = {"A": ImagePool(50, acc.process_index), "B": ImagePool(50, 100 + acc.process_index)}
    gen = torch.Generator().manual_seed(acc.process_index)
    times = []
    for i in range(args.warmup + args.iters):
        a = torch.rand(1, 3, args.size, args.size, generator=gen).to(acc.device) * 2 - 1
        b = torch.rand(1, 3, args.size, args.size, generator=gen).to(acc.device) * 2 - 1
        acc.wait_for_everyone()
        t0 = time.perf_counter()
        train_step(a, b, G_A=G_A, G_B=G_B, D_A=D_A, D_B=D_B, raw_D_A=acc.unwrap_model(D_A),
                   raw_D_B=acc.unwrap_model(D_B), opt_G=opt_G, opt_D=opt_D, pools=pools, w=StepWeights(),
                   backward=acc.backward)
        acc.wait_for_everyone()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    if acc.is_main_process:
        print(json.dumps({"processes": acc.num_processes, "size": args.size, "s_per_step": statistics.median(times),
                          "all": [round(t, 3) for t in times]}))


if __name__ == "__main__":
    main()
