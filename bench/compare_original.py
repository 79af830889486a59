#!/usr/bin/env python3
"""brushwork vs the original CycleGAN code in one run: the same as bench/train_step.py (same flags).

  python bench/compare_original.py --sizes 256 --batches 1 --repeats 3
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import COMMAND  # noqa: E402

from brushwork import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
