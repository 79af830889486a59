#!/usr/bin/env python3
"""Loss curves of a training run (the paper's Fig. 8): generator and discriminator losses and the LR, as PNG.

  python eval/plots.py runs/cyclegan-monet --out plots/monet_losses.png

Reads the run's TensorBoard events (tb/); a resumed run's repeated steps count once.
"""

import sys

from brushwork import cli, config, plots
from brushwork.schemas.eval import PlotsConfig


def main(cfg: PlotsConfig) -> int:
    if not cfg.run:
        from brushwork.errors import BrushworkError

        raise BrushworkError("name the run dir to plot, e.g. runs/cyclegan-monet")
    scalars = plots.read_scalars(cfg.run)
    path, drawn = plots.loss_plot(scalars, cfg.out or f"{cfg.run.rstrip('/')}/losses.png", title=f"{cfg.run}: losses")
    config.write_resolved(cfg, path.parent, f"{path.stem}_config.toml")
    steps = max((s for values in scalars.values() for s, _ in values), default=0)
    print(f"loss plot: {path} ({', '.join(drawn)}; up to step {steps})")
    return 0


COMMAND = cli.Command(PlotsConfig, main, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
