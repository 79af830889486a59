#!/usr/bin/env python3
"""brushwork vs the original CycleGAN code in one run: same model, size, batch and threads.

A thin front to bench/train_step.py, which times brushwork's step and then the original
optimize_parameters() (../shared/reference/junyanz_bench.py) per configuration, and prints the
ratio. On a GPU, `--device cuda --bf16 --no_original` times brushwork there (the original harness
is CPU-only; run it separately for the fp32 baseline).

usage: python bench/compare_original.py [--sizes 256] [--batches 1] [--iters 5]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import main  # noqa: E402

if __name__ == "__main__":
    main()
