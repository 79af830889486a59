#!/usr/bin/env python3
"""The GPU acceptance in one command: every GPU-only branch run for real, with a table for BENCHMARKS.md.

  python bench/gpu_check.py                  # on a CUDA machine; elsewhere it says so and exits 0

Runs the trainer's CycleGAN step (the paper's model) at each size and batch in fp32, bf16 autocast,
bf16 + channels_last and bf16 + torch.compile, with joined and with separate passes (fused Adam,
as the trainer uses on GPUs); Gatys batched (B = --gatys_batch) against sequential at
--gatys_size px; the peak GPU memory of each; and, with 2+ GPUs, a 2-rank NCCL step through
accelerate launch (bench/ddp_overhead.py). Every row also checks that the losses are finite.
"""

from brushwork import cli
from brushwork.schemas.bench import GPUCheck

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(GPUCheck, None, __doc__))

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, machine, paper_trainer, time_steps  # noqa: E402


def step_row(name: str, size: int, batch: int, cfg: GPUCheck, *, bf16=False, channels_last=False, compile=False,
             join=True) -> dict:
    torch.cuda.reset_peak_memory_stats()
    trainer = paper_trainer("cuda", winograd=False, join_passes=join, fused_adam=True)
    if channels_last:
        for net in trainer.plain.values():
            net.to(memory_format=torch.channels_last)
    if compile:
        trainer.nets = {n: torch.compile(m) for n, m in trainer.nets.items()}
    if bf16:
        trainer.autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    times = time_steps(trainer, size, batch, cfg.iters, cfg.warmup, channels_last)
    losses, _ = trainer.step({"A": torch.rand(batch, 3, size, size, device="cuda") * 2 - 1,
                              "B": torch.rand(batch, 3, size, size, device="cuda") * 2 - 1})
    finite = all(bool(torch.isfinite(v).all()) for v in losses.values())
    return {"row": name, "size": size, "batch": batch, "s_per_step": statistics.median(times), "min": min(times),
            "max": max(times), "images_per_s_both_domains": 2 * batch / statistics.median(times),
            "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30, "finite_losses": finite}


def gatys_rows(cfg: GPUCheck) -> list[dict]:
    from gatys import seconds_per_iteration  # bench/gatys.py

    rows = []
    for B in (1, cfg.gatys_batch):
        torch.cuda.reset_peak_memory_stats()
        s = seconds_per_iteration(B, cfg.gatys_size, 10, "cuda")
        rows.append({"row": f"gatys B={B}", "size": cfg.gatys_size, "batch": B, "s_per_iteration_per_pair": s / B,
                     "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30})
    rows[-1]["speedup_vs_B1"] = rows[0]["s_per_iteration_per_pair"] / rows[-1]["s_per_iteration_per_pair"]
    return rows


def nccl_row() -> dict:
    launcher = str(Path(sys.executable).parent / "accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "4"}
    outs = {}
    for n in (1, 2):
        cmd = [launcher, "launch", "--num_processes", str(n), *(["--multi_gpu"] if n > 1 else []),
               "--mixed_precision", "bf16", str(REPO / "bench" / "ddp_overhead.py"), "--size", "256", "--iters", "10",
               "--block_conv", "direct"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout.strip().splitlines()
        outs[n] = json.loads(out[-1])["s_per_step"]
    return {"row": "NCCL 2 ranks vs 1", "s_per_step_1": outs[1], "s_per_step_2": outs[2],
            "overhead": outs[2] / outs[1] - 1}


def run(cfg: GPUCheck) -> int:
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check (run it on a GPU machine)")
        return 0
    torch.backends.cudnn.benchmark = True
    rows = []
    for size in cfg.sizes:
        for batch in cfg.batches:
            rows.append(step_row("fp32", size, batch, cfg))
            rows.append(step_row("bf16", size, batch, cfg, bf16=True))
            rows.append(step_row("bf16 + channels_last", size, batch, cfg, bf16=True, channels_last=True))
            rows.append(step_row("bf16, separate passes", size, batch, cfg, bf16=True, join=False))
            if cfg.compile:
                rows.append(step_row("bf16 + compile", size, batch, cfg, bf16=True, compile=True))
            for r in rows[-5:]:
                print(json.dumps(r), flush=True)
    gatys = gatys_rows(cfg)
    for r in gatys:
        print(json.dumps(r), flush=True)
    nccl = nccl_row() if cfg.nccl and torch.cuda.device_count() >= 2 else None
    if nccl:
        print(json.dumps(nccl), flush=True)
    print(f"\n{machine()}\n")
    print("| step | px | batch | s/step median (min-max) | images/s (A+B) | peak GiB | finite |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['row']} | {r['size']} | {r['batch']} | {r['s_per_step']:.4f} ({r['min']:.4f}-{r['max']:.4f}) | "
              f"{r['images_per_s_both_domains']:.1f} | {r['peak_gib']:.2f} | {r['finite_losses']} |")
    print("\n| Gatys | px | B | s per iteration per pair | peak GiB |\n| --- | --- | --- | --- | --- |")
    for r in gatys:
        print(f"| {r['row']} | {r['size']} | {r['batch']} | {r['s_per_iteration_per_pair']:.4f} | {r['peak_gib']:.2f} |")
    print(f"\nGatys batched vs sequential: {gatys[-1]['speedup_vs_B1']:.2f}x")
    if nccl:
        print(f"NCCL, 2 ranks: {nccl['s_per_step_2']:.4f} s/step vs {nccl['s_per_step_1']:.4f} on 1 "
              f"({100 * nccl['overhead']:+.1f} %)")
    return 0 if all(r["finite_losses"] for r in rows) else 1


COMMAND = cli.Command(GPUCheck, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
