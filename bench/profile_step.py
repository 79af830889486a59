#!/usr/bin/env python3
"""Top operators of one CycleGAN training step (torch.profiler), as a markdown table.

usage: python bench/profile_step.py [--size 128] [--threads 2] [--rows 12]
"""

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import time_brushwork  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rows", type=int, default=12)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    time_brushwork(args.size, 1, 1, 1)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        time_brushwork(args.size, 1, 1, 0)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print("| operator | self CPU ms | share | calls |\n| --- | --- | --- | --- |")
    for e in events[:args.rows]:
        print(f"| `{e.key}` | {e.self_cpu_time_total / 1000:.0f} | {100 * e.self_cpu_time_total / total:.1f} % | {e.count} |")


if __name__ == "__main__":
    main()
