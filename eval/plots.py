#!/usr/bin/env python3
"""Loss curves of a training run (the paper's Fig. 8): every loss component the run logged, grouped, and the LR.

  python eval/plots.py runs/cyclegan-monet                 # runs/cyclegan-monet/losses.png
  python eval/plots.py runs/cyclegan-monet --out plots/    # plots/losses.png

One panel per group (CycleGAN: generators, discriminators, cycle, identity; fast style: content, style,
total variation), each domain a line, against images seen. Reads the run's TensorBoard events (tb/); a
resumed run's repeated points count once.
"""

import sys

from brushwork import cli
from brushwork.core import presets
from brushwork.evaluation import plots
from brushwork.schemas.eval import PlotsConfig


def main(cfg: PlotsConfig) -> int:
    if not cfg.run:
        from brushwork.core.errors import BrushworkError

        raise BrushworkError("name the run dir to plot, e.g. runs/cyclegan-monet")
    from brushwork.core.fileio import out_file

    path = out_file(cfg.out or cfg.run, "losses.png")
    scalars = plots.read_scalars(cfg.run)
    path, drawn = plots.loss_plot(scalars, path, title=f"{cfg.run}: losses")
    presets.write_resolved(cfg, path.parent, f"{path.stem}_config.toml")
    images = max((s for values in scalars.values() for s, _ in values), default=0)
    print(f"loss plot: {path} ({', '.join(drawn)}; up to {images} images seen)")
    return 0


COMMAND = cli.Command(PlotsConfig, main, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
