#!/usr/bin/env python3
"""Top operators of one CycleGAN training step (torch.profiler), as a markdown table.

  python bench/profile_step.py --size 256
"""

from brushwork import cli
from brushwork.schemas.bench import ProfileBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(ProfileBench, None, __doc__))

import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import paper_trainer, time_steps  # noqa: E402


def run(cfg: ProfileBench) -> int:
    torch.set_num_threads(cfg.threads)
    trainer = paper_trainer(winograd=cfg.block_conv == "winograd")
    time_steps(trainer, cfg.size, 1, 1, 1)  # warm-up, outside the profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        time_steps(trainer, cfg.size, 1, 1, 0)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"one step at {cfg.size} px, batch 1, {cfg.threads} threads, block convs {cfg.block_conv}: "
          f"{total / 1e6:.2f} s of operator time\n")
    print("| operator | self CPU ms | share | calls |\n| --- | --- | --- | --- |")
    for e in events[:cfg.rows]:
        print(f"| `{e.key}` | {e.self_cpu_time_total / 1000:.0f} | {100 * e.self_cpu_time_total / total:.1f} % | {e.count} |")
    return 0


COMMAND = cli.Command(ProfileBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
