"""What the benchmarks share: the trainer's real CycleGAN step on random inputs, timing, and the original code."""

from __future__ import annotations

if __name__ == "__main__":  # a module the benchmarks import, not a command
    print("bench/harness.py: the trainer's step, timing and the original code's runner, shared by the benchmarks; not a command. "
          "Run a benchmark instead (each answers --help): bench/train_step.py, bench/loader.py, bench/gatys.py, bench/fast_style.py, "
          "bench/conv.py, bench/roofline.py, bench/profile_step.py, bench/ddp_overhead.py, bench/gpu_check.py")
    raise SystemExit(0)

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from brushwork.schemas.train import CycleGANConfig
from brushwork.training.cyclegan import CycleGANTrainer

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
    return time_calls(trainer.step, lambda: random_batch(size, batch, trainer.device, gen, channels_last), iters,
                      warmup, trainer.device)


def time_calls(step, make_batch, iters: int, warmup: int = 1, device="cpu") -> list[float]:
    """Seconds of each timed ``step(make_batch())`` (the batch made outside the clock), after ``warmup`` untimed
    calls: any trainer's step."""
    times = []
    for i in range(warmup + iters):
        data = make_batch()
        synchronize(device)
        t0 = time.perf_counter()
        step(data)
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


class Measured(subprocess.Popen):
    """A Popen whose wait records the child's own peak RSS in bytes (``os.wait4``: that child, not the others)."""

    peak_bytes = 0

    def _try_wait(self, wait_flags):
        import os

        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid:
            self.peak_bytes = usage.ru_maxrss * 1024  # KiB on Linux
        return pid, status


def run_measured(cmd: list[str], **popen) -> tuple[int, str, str]:
    """(peak RSS of the child in bytes, its stdout, its stderr); raises with its stderr if it fails."""
    proc = Measured(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{cmd[1]} failed: {err[-2000:]}")
    return proc.peak_bytes, out, err


def time_original(size: int, batch: int, iters: int, warmup: int, threads: int) -> tuple[list[float], int]:
    """(seconds per ``optimize_parameters()`` of the original code, peak RSS), in a subprocess of its own."""
    cmd = [sys.executable, str(ORIGINAL), "--size", str(size), "--batch", str(batch), "--iters", str(iters),
           "--warmup", str(warmup), "--threads", str(threads)]
    peak, out, _ = run_measured(cmd)
    return json.loads(out.strip().splitlines()[-1])["s_per_iter_all"], peak


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def machine() -> str:
    """One line naming the machine, for the tables."""
    import os
    import platform

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} (CPU)"
