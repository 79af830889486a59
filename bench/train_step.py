#!/usr/bin/env python3
"""CycleGAN training-step time: brushwork's trainer step against the original code, alternated in one run.

  python bench/train_step.py --sizes 128 256 --batches 1 --repeats 3
  python bench/train_step.py --device cuda --bf16 --no_original
  python bench/train_step.py --sizes 256 --batches 1 --repeats 2 --memory   # + peak RSS, each step in its own process

Times ``CycleGANTrainer.step`` (the trainer's step) on random inputs with the paper's model
(resnet_9blocks ngf 64, PatchGAN ndf 64, LSGAN, λ 10, identity 0.5, pool 50, Adam 2e-4) and, when
../shared/reference/junyanz_bench.py exists, the original CycleGANModel.optimize_parameters() in a
subprocess right after, alternating per configuration and repeat, so that drift in this machine's
speed hits both alike. Prints one JSON line per row and a markdown table with the median and the
spread (min-max) of every step measured. images/s counts both domains (A and B) of each batch.
"""

from brushwork import cli
from brushwork.schemas.bench import TrainStepBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(TrainStepBench, None, __doc__))

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ORIGINAL, machine, paper_trainer, run_measured, spread, time_original, time_steps  # noqa: E402


def measure_ours(cfg: TrainStepBench, size: int, batch: int) -> list[float]:
    join = {"auto": None, "on": True, "off": False}[cfg.join_passes]
    trainer = paper_trainer(cfg.device, winograd=cfg.block_conv == "winograd", join_passes=join)
    if cfg.compile:
        trainer.nets = {n: torch.compile(m) for n, m in trainer.nets.items()}
    if cfg.channels_last:
        for net in trainer.plain.values():
            net.to(memory_format=torch.channels_last)
    if cfg.bf16:
        trainer.autocast = lambda: torch.autocast(device_type=cfg.device, dtype=torch.bfloat16)
    return time_steps(trainer, size, batch, cfg.iters, cfg.warmup, cfg.channels_last)


def measure_ours_apart(cfg: TrainStepBench, size: int, batch: int) -> tuple[list[float], int]:
    """(step times, peak RSS) of brushwork's step in a fresh process, as the original's are measured."""
    cmd = [sys.executable, __file__, "--sizes", str(size), "--batches", str(batch), "--iters", str(cfg.iters),
           "--warmup", str(cfg.warmup), "--threads", str(cfg.threads), "--no_original", "--device", cfg.device,
           "--block_conv", cfg.block_conv, "--join_passes", cfg.join_passes]
    peak, out, _ = run_measured(cmd)
    return json.loads(out.strip().splitlines()[0])["brushwork_all"], peak


def run(cfg: TrainStepBench) -> int:
    torch.set_num_threads(cfg.threads)
    with_original = cfg.original and ORIGINAL.exists() and cfg.device == "cpu"
    rows = []
    for size in cfg.sizes:
        for batch in cfg.batches:
            ours, orig, peaks = [], [], {"brushwork": [], "original": []}
            for _ in range(cfg.repeats):
                if cfg.memory:
                    times, peak = measure_ours_apart(cfg, size, batch)
                    ours += times
                    peaks["brushwork"].append(peak)
                else:
                    ours += measure_ours(cfg, size, batch)
                if with_original:
                    times, peak = time_original(size, batch, cfg.iters, cfg.warmup, cfg.threads)
                    orig += times
                    peaks["original"].append(peak)
            row = {"size": size, "batch": batch, "block_conv": cfg.block_conv, "brushwork": spread(ours),
                   "brushwork_all": [round(t, 3) for t in ours]}
            if cfg.memory:
                row["peak_rss_gb"] = {k: round(max(v) / 1e9, 2) for k, v in peaks.items() if v}
            if orig:
                row.update(original=spread(orig), original_all=[round(t, 3) for t in orig],
                           speedup=spread(orig)["median"] / spread(ours)["median"])
            row["images_per_s_both_domains"] = 2 * batch / row["brushwork"]["median"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{machine()}, {cfg.threads} threads, {cfg.repeats} alternated repeat(s) x {cfg.iters} steps\n")
    print("| px | batch | brushwork s/step median (min-max) | images/s (A+B) | original s/step median (min-max) | speed-up "
          "| peak RSS GB brushwork / original |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        b = r["brushwork"]
        orig = f"{r['original']['median']:.2f} ({r['original']['min']:.2f}-{r['original']['max']:.2f})" \
            if "original" in r else "-"
        speed = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
        peak = r.get("peak_rss_gb", {})
        peaks = f"{peak.get('brushwork', '-')} / {peak.get('original', '-')}" if peak else "-"
        print(f"| {r['size']} | {r['batch']} | {b['median']:.2f} ({b['min']:.2f}-{b['max']:.2f}) | "
              f"{r['images_per_s_both_domains']:.2f} | {orig} | {speed} | {peaks} |")
    return 0


COMMAND = cli.Command(TrainStepBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
