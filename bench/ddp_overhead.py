#!/usr/bin/env python3
"""DDP overhead: the trainer's CycleGAN step (ngf 64, batch 1 per process) in 1 vs 2 gloo processes.

  python bench/ddp_overhead.py --alternate 3          # 1 and 2 processes alternated 3 times: the overhead
  accelerate launch --num_processes 1 bench/ddp_overhead.py                  # one run by hand
  accelerate launch --multi_gpu --num_processes 2 bench/ddp_overhead.py

Each process uses one thread, so 1 and 2 processes get equal resources per process on a 2-core
machine; the step is the trainer's own (CycleGANTrainer under accelerate, the CPU default of
Winograd block convs). A launched run's rank 0 prints its step times; with --alternate the script
launches the 1- and 2-process runs in turn (so this machine's drift hits both) and prints the medians
and spreads of every step and the overhead.
"""

from brushwork import cli
from brushwork.core import distributed
from brushwork.schemas.bench import DDPBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(DDPBench, None, __doc__))

import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import paper_trainer, time_steps  # noqa: E402


def alternate(cfg: DDPBench) -> int:
    """Launch 1 and 2 processes in turn, ``cfg.alternate`` times each; the overhead of the medians."""
    import os
    import socket
    import subprocess

    launcher = str(Path(sys.executable).parent / "accelerate")
    steps: dict[int, list[float]] = {1: [], 2: []}
    for round_ in range(cfg.alternate):
        for n in (1, 2):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd = [launcher, "launch", "--num_processes", str(n), *(["--multi_gpu"] if n > 1 else []),
                   "--num_machines", "1", "--main_process_port", str(port), "--mixed_precision", "no",
                   "--dynamo_backend", "no", __file__, "--size", str(cfg.size), "--iters", str(cfg.iters),
                   "--warmup", str(cfg.warmup), "--block_conv", cfg.block_conv]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout.strip().splitlines()
            steps[n] += json.loads(out[-1])["all"]
            print(json.dumps({"round": round_, "processes": n, "all": steps[n][-cfg.iters:]}), flush=True)
    median = {n: statistics.median(v) for n, v in steps.items()}
    overhead = median[2] / median[1] - 1
    print(json.dumps({"size": cfg.size, "block_conv": cfg.block_conv, "rounds": cfg.alternate,
                      "median_1": median[1], "median_2": median[2], "overhead": overhead}))
    print("\n| processes | s/step median (min-max) | steps |\n| --- | --- | --- |")
    for n, v in steps.items():
        print(f"| {n} | {median[n]:.2f} ({min(v):.2f}-{max(v):.2f}) | {len(v)} |")
    print(f"| overhead | {100 * overhead:+.1f} % | |")
    return 0


def run(cfg: DDPBench) -> int:
    if cfg.alternate:
        return alternate(cfg)
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    torch.set_num_threads(1)
    acc = Accelerator(cpu=not torch.cuda.is_available(),
                      kwargs_handlers=[DistributedDataParallelKwargs(gradient_as_bucket_view=True)])
    trainer = paper_trainer(accelerator=acc, winograd=cfg.block_conv == "winograd", seed=acc.process_index)
    times = time_steps(trainer, cfg.size, 1, cfg.iters, cfg.warmup)
    acc.wait_for_everyone()
    if acc.is_main_process:
        print(json.dumps({"processes": acc.num_processes, "size": cfg.size, "block_conv": cfg.block_conv,
                          "s_per_step": statistics.median(times), "all": [round(t, 3) for t in times]}))
    distributed.end_process_group()
    return 0


COMMAND = cli.Command(DDPBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
