#!/usr/bin/env python3
"""Loss curves of a CycleGAN run (the paper's Fig. 8): G and D losses and the learning rate, as PNG.

  python eval/plots.py runs/cyclegan-monet --out plots/monet_losses.png
"""

import sys

from brushwork import cli, plots


def main(run_dir: str, out: str = ""):
    scalars = plots.read_scalars(run_dir)
    path = plots.loss_plot(scalars, out or f"{run_dir.rstrip('/')}/losses.png", title=f"{run_dir}: losses")
    steps = max((s for values in scalars.values() for s, _ in values), default=0)
    print(f"loss plot: {path} ({len(scalars)} series up to step {steps})")


if __name__ == "__main__":
    sys.exit(cli.run(main, help_text=__doc__))
