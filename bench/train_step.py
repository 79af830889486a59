#!/usr/bin/env python3
"""CycleGAN training-step time: brushwork vs the original code, same size / batch / threads, one run.

Times brushwork.cyclegan.train_step (the trainer's step) on random inputs with the paper's model
(resnet_9blocks ngf 64, PatchGAN ndf 64, LSGAN, λ 10, identity 0.5, pool 50, Adam 2e-4) and, when
../shared/reference/junyanz_bench.py exists, the original CycleGANModel.optimize_parameters() in a
subprocess right after, alternating per configuration. Prints one JSON line per measurement and a
markdown table at the end. Compare medians: this machine varies 10-30 % between runs.

usage: python bench/train_step.py [--sizes 128 256] [--batches 1 2] [--iters 5] [--warmup 2] [--repeats 1]
                                  [--threads 2]
                                  [--channels_last] [--no_original] [--block_conv winograd|direct]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from brushwork.cyclegan import StepWeights, train_step
from brushwork.networks import NLayerDiscriminator, ResnetGenerator, init_weights
from brushwork.pool import ImagePool

REPO = Path(__file__).resolve().parent.parent
ORIGINAL = REPO.parent / "shared" / "reference" / "junyanz_bench.py"


def time_brushwork(size, batch, iters, warmup, channels_last=False, device="cpu", mixed=None, join_passes=None,
                   winograd=True):
    """Seconds per step; join_passes defaults to the trainer's rule (joined on GPU, separate on CPU)."""
    join_passes = device == "cuda" if join_passes is None else join_passes
    torch.manual_seed(0)
    nets = {n: init_weights(ResnetGenerator(ngf=64, n_blocks=9, winograd=winograd) if n[0] == "G" else NLayerDiscriminator(ndf=64))
            for n in ("G_A", "G_B", "D_A", "D_B")}
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for net in nets.values():
        net.to(device, memory_format=fmt)
    opt_G = torch.optim.Adam(list(nets["G_A"].parameters()) + list(nets["G_B"].parameters()), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(list(nets["D_A"].parameters()) + list(nets["D_B"].parameters()), 2e-4, betas=(0.5, 0.999))
    pools = {"A": ImagePool(50, 0), "B": ImagePool(50, 1)}
    gen = torch.Generator().manual_seed(1)
    autocast = (lambda: torch.autocast(device_type=device, dtype=mixed)) if mixed else None
    times = []
    for i in range(warmup + iters):
        a = (torch.rand(batch, 3, size, size, generator=gen) * 2 - 1).to(device, memory_format=fmt)
        b = (torch.rand(batch, 3, size, size, generator=gen) * 2 - 1).to(device, memory_format=fmt)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        kwargs = {"autocast": autocast} if autocast else {}
        kwargs["join_passes"] = join_passes
        train_step(a, b, G_A=nets["G_A"], G_B=nets["G_B"], D_A=nets["D_A"], D_B=nets["D_B"], raw_D_A=nets["D_A"],
                   raw_D_B=nets["D_B"], opt_G=opt_G, opt_D=opt_D, pools=pools, w=StepWeights(), **kwargs)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def time_original(size, batch, iters, warmup, threads):
    cmd = [sys.executable, str(ORIGINAL), "--size", str(size), "--batch", str(batch), "--iters", str(iters),
           "--warmup", str(warmup), "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["s_per_iter_all"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1, help="alternate brushwork / original this many times")
    p.add_argument("--channels_last", action="store_true")
    p.add_argument("--no_original", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the original harness always runs on CPU)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for brushwork (GPU)")
    p.add_argument("--join_passes", choices=("auto", "on", "off"), default="auto",
                   help="batch passes through the same network together (auto: on GPU only, as the trainer)")
    p.add_argument("--block_conv", choices=("winograd", "direct"), default="winograd",
                   help="ResNet-block convs: Winograd F(4x4,3x3) (the trainer's CPU default) or direct conv2d")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for size in args.sizes:
        for batch in args.batches:
            ours, orig = [], []
            for _ in range(args.repeats):  # alternate, so drift in machine speed hits both sides alike
                ours += time_brushwork(size, batch, args.iters, args.warmup, args.channels_last, args.device,
                                       torch.bfloat16 if args.bf16 else None,
                                       {"auto": None, "on": True, "off": False}[args.join_passes],
                                       args.block_conv == "winograd")
                if not args.no_original and ORIGINAL.exists() and args.device == "cpu":
                    orig += time_original(size, batch, args.iters, args.warmup, args.threads)
            row = {"size": size, "batch": batch, "block_conv": args.block_conv, "brushwork_s": statistics.median(ours),
                   "brushwork_all": [round(t, 3) for t in ours]}
            if orig:
                row.update(original_s=statistics.median(orig), original_all=orig,
                           speedup=statistics.median(orig) / statistics.median(ours))
            row["images_per_s"] = 2 * batch / row["brushwork_s"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("\n| px | batch | brushwork s/iter | images/s | original s/iter | speed-up |\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        orig = f"{r['original_s']:.2f}" if "original_s" in r else "-"
        speed = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
        print(f"| {r['size']} | {r['batch']} | {r['brushwork_s']:.2f} | {r['images_per_s']:.2f} | {orig} | {speed} |")


if __name__ == "__main__":
    main()
