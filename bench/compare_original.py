#!/usr/bin/env python3
"""brushwork vs the original CycleGAN code in one run, alternated: bench/train_step.py with the original's
step timed after each of ours (the same flags; it needs ../shared/reference/junyanz_bench.py).

  python bench/compare_original.py --sizes 256 --batches 1 --repeats 3
"""

import sys
from pathlib import Path

from brushwork import cli
from brushwork.schemas.bench import TrainStepBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(TrainStepBench, None, __doc__))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import run  # noqa: E402

COMMAND = cli.Command(TrainStepBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
