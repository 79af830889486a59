"""What the benchmarks share: the trainer's real CycleGAN step on random inputs, timing, and the original code."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from brushwork.cyclegan import CycleGANTrainer
from brushwork.schemas.train import CycleGANConfig

REPO = Path(__file__).resolve().parent.parent
ORIGINAL = REPO.parent / "shared" / "reference" / "junyanz_bench.py"


def paper_trainer(device: str = "cpu", winograd: bool = True, join_passes: bool | None = None,
                  fused_adam: bool | None = None, accelerator=None, **overrides) -> CycleGANTrainer:
    """The trainer with the paper's model (resnet_9blocks ngf 64, PatchGAN ndf 64, LSGAN, λ 10, identity 0.5, pool 50)."""
    cfg = CycleGANConfig(winograd=winograd, **overrides)
    return CycleGANTrainer(cfg, accelerator, device=device, join_passes=join_passes, fused_adam=fused_adam)


def random_batch(size: int, batch: int, device: str = "cpu", generator: torch.Generator | None = None,
                 channels_last: bool = False) -> dict:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    draw = lambda: (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(device, memory_format=fmt)
    return {"A": draw(), "B": draw()}


def synchronize(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(trainer: CycleGANTrainer, size: int, batch: int, iters: int, warmup: int,
               channels_last: bool = False) -> list[float]:
    """Seconds of each timed ``trainer.step`` (after ``warmup`` untimed ones)."""
    gen = torch.Generator().manual_seed(1)
    times = []
    for i in range(warmup + iters):
        data = random_batch(size, batch, trainer.device, gen, channels_last)
        synchronize(trainer.device)
        t0 = time.perf_counter()
        trainer.step(data)
        synchronize(trainer.device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def time_original(size: int, batch: int, iters: int, warmup: int, threads: int) -> list[float]:
    """Seconds per ``optimize_parameters()`` of the original code, in a subprocess (its own imports)."""
    cmd = [sys.executable, str(ORIGINAL), "--size", str(size), "--batch", str(batch), "--iters", str(iters),
           "--warmup", str(warmup), "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["s_per_iter_all"]


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def machine() -> str:
    """One line naming the machine, for the tables."""
    import os
    import platform

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} (CPU)"
