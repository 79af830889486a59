#!/usr/bin/env python3
"""AdaIN against fast style and Gatys on one machine, one run: training step time and seconds per stylised image.

  python bench/adain.py                        # 256 px batch 8 training step; 512 px stylise vs fast style and Gatys

Times (1) one AdaINTrainer step at --train_size, batch --train_batch (the paper's 256 px crops, batch 8; VGG-19 to
relu4_1 three times and the decoder's backward), (2) stylising --images photos of --stylize_size with a style image
of the same size, one at a time, alternating with (3) the fast-style network (width 32, the paper's) on the same
photos, and (4) Gatys at the same size: --gatys_timed L-BFGS iterations of one pair timed, --gatys_iterations
extrapolated. Random VGG weights (the speed is the same with trained ones). Prints JSON lines and a markdown table.
"""

from brushwork import cli
from brushwork.schemas.bench import AdaINBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(AdaINBench, None, __doc__))

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

from brushwork.models.style_net import TransformerNet  # noqa: E402
from brushwork.schemas.train import AdaINConfig  # noqa: E402
from brushwork.training.adain import AdaINTrainer  # noqa: E402


def run(cfg: AdaINBench) -> int:
    torch.set_num_threads(cfg.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = AdaINTrainer(AdaINConfig(random_vgg=True, size=cfg.train_size, load_size=cfg.train_size))
    g = torch.Generator().manual_seed(0)
    batch = lambda: {k: torch.rand(cfg.train_batch, 3, cfg.train_size, cfg.train_size, generator=g) * 2 - 1
                     for k in ("content", "style")}
    steps = time_calls(trainer.step, batch, cfg.iters)
    train = {"train_size": cfg.train_size, "batch": cfg.train_batch, "s_per_step": statistics.median(steps),
             "min": min(steps), "max": max(steps)}
    print(json.dumps(train), flush=True)

    from brushwork.models.adain import AdaINNet

    net = AdaINNet(trainer.encoder).eval()
    net.decoder.load_state_dict(trainer.plain.state_dict())
    fast = TransformerNet(32, 1).eval()
    side = cfg.stylize_size
    photos = [torch.rand(1, 3, side, side, generator=g) for _ in range(cfg.images)]
    style = torch.rand(1, 3, side, side, generator=g)
    times: dict[str, list[float]] = {"adain": [], "fast_style": []}
    with torch.no_grad():
        net.stylize(photos[0], [style])  # warm-up both
        fast(photos[0])
        for x in photos:  # alternated: the machine's drift falls on both alike
            t0 = time.perf_counter()
            net.stylize(x, [style])
            times["adain"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            fast(x)
            times["fast_style"].append(time.perf_counter() - t0)
    per_image = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"stylize_size": side, "images": cfg.images, **{f"{k}_s_per_image": v
                                                                     for k, v in per_image.items()}}), flush=True)
    gatys_iter = seconds_per_iteration(1, side, cfg.gatys_timed)
    gatys_image = gatys_iter * cfg.gatys_iterations
    print(json.dumps({"gatys_size": side, "s_per_iteration": gatys_iter, "iterations": cfg.gatys_iterations,
                      "s_per_image": gatys_image}), flush=True)
    print(f"\n{machine()}, {cfg.threads} threads\n")
    print("| measurement | value |\n| --- | --- |")
    print(f"| AdaIN training step, {cfg.train_size} px, batch {cfg.train_batch} | {train['s_per_step']:.2f} s "
          f"(min {train['min']:.2f}, max {train['max']:.2f}) |")
    print(f"| AdaIN stylise, {side} px (any style; {side} px style image) | {per_image['adain']:.2f} s per image |")
    print(f"| fast style stylise, {side} px (its trained style) | {per_image['fast_style']:.2f} s per image |")
    print(f"| Gatys, {side} px, {cfg.gatys_iterations} L-BFGS iterations | {gatys_image:.0f} s per image "
          f"({gatys_iter:.2f} s per iteration, {cfg.gatys_timed} timed) |")
    print(f"| AdaIN vs Gatys, per image | {gatys_image / per_image['adain']:.0f}x |")
    print(f"| AdaIN vs fast style, per image | {per_image['adain'] / per_image['fast_style']:.1f}x slower |")
    return 0


COMMAND = cli.Command(AdaINBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
