#!/usr/bin/env python3
"""Fast style against Gatys on one machine, one run: training step time, stylise throughput, seconds per image.

  python bench/fast_style.py                   # 256 px batch 4 training step; 512 px stylise vs Gatys

Times (1) one FastStyleTrainer step at --train_size, batch --train_batch, width --width (the paper's
32) with VGG-16 as the loss network, (2) stylising --images photos at --stylize_size (images/s,
one at a time, the network in eval mode), and (3) Gatys at the same size: --gatys_timed L-BFGS
iterations of one pair timed, the paper's --gatys_iterations extrapolated from them. Random VGG
weights (the speed is the same as with trained ones). Prints JSON lines and a markdown table.
"""

from brushwork import cli
from brushwork.schemas.bench import FastStyleBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(FastStyleBench, None, __doc__))

import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gatys import seconds_per_iteration  # noqa: E402
from harness import machine, time_calls  # noqa: E402

from brushwork.schemas.train import FastStyleConfig  # noqa: E402
from brushwork.training.fast_style import FastStyleTrainer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run(cfg: FastStyleBench) -> int:
    torch.set_num_threads(cfg.threads)
    style = str(REPO / "data_prep/samples/gatys/style/starry_night.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = FastStyleTrainer(FastStyleConfig(style=(style,), random_vgg=True, width=cfg.width,
                                                   size=cfg.train_size, style_size=cfg.train_size))
    g = torch.Generator().manual_seed(0)
    batch = lambda: {"B": torch.rand(cfg.train_batch, 3, cfg.train_size, cfg.train_size, generator=g) * 2 - 1}
    steps = time_calls(trainer.step, batch, cfg.iters)
    train = {"train_size": cfg.train_size, "batch": cfg.train_batch, "width": cfg.width,
             "s_per_step": statistics.median(steps), "min": min(steps), "max": max(steps)}
    print(json.dumps(train), flush=True)

    net = trainer.plain.eval()
    photos = [torch.rand(1, 3, cfg.stylize_size, cfg.stylize_size, generator=g) for _ in range(cfg.images)]
    with torch.no_grad():
        net(photos[0])  # warm-up
        t0 = time.perf_counter()
        for x in photos:
            net(x)
        stylize = time.perf_counter() - t0
    per_image = stylize / cfg.images
    print(json.dumps({"stylize_size": cfg.stylize_size, "images": cfg.images, "images_per_s": 1 / per_image,
                      "s_per_image": per_image}), flush=True)

    gatys_iter = seconds_per_iteration(1, cfg.stylize_size, cfg.gatys_timed)
    gatys_image = gatys_iter * cfg.gatys_iterations
    print(json.dumps({"gatys_size": cfg.stylize_size, "s_per_iteration": gatys_iter,
                      "iterations": cfg.gatys_iterations, "s_per_image": gatys_image}), flush=True)
    print(f"\n{machine()}, {cfg.threads} threads\n")
    print("| measurement | value |\n| --- | --- |")
    print(f"| fast-style training step, {cfg.train_size} px, batch {cfg.train_batch}, width {cfg.width} | "
          f"{train['s_per_step']:.2f} s (min {train['min']:.2f}, max {train['max']:.2f}) |")
    print(f"| fast-style stylise, {cfg.stylize_size} px | {1 / per_image:.2f} images/s ({per_image:.2f} s per image) |")
    print(f"| Gatys, {cfg.stylize_size} px, {cfg.gatys_iterations} L-BFGS iterations | {gatys_image:.0f} s per image "
          f"({gatys_iter:.2f} s per iteration, {cfg.gatys_timed} timed) |")
    print(f"| fast style vs Gatys, per image | {gatys_image / per_image:.0f}x |")
    return 0


COMMAND = cli.Command(FastStyleBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
