#!/usr/bin/env python3
"""DDP overhead: the trainer's CycleGAN step (ngf 64, batch 1 per process) in 1 vs 2 gloo processes.

  accelerate launch --num_processes 1 bench/ddp_overhead.py
  accelerate launch --multi_gpu --num_processes 2 bench/ddp_overhead.py

Each process uses one thread, so 1 and 2 processes get equal resources per process on a 2-core
machine; the step is the trainer's own (CycleGANTrainer under accelerate, the CPU default of
Winograd block convs). Rank 0 prints the median step time; compare the two runs.
"""

from brushwork import cli
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


def run(cfg: DDPBench) -> int:
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
    cli.end_distributed()
    return 0


COMMAND = cli.Command(DDPBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
