#!/usr/bin/env python3
"""Sample grids of trained runs on test images, and the four methods side by side.

  python eval/grids.py runs/cyclegan-monet --out grids/ [--rows 4] [--seed 0] [--cell_size 256] [--step N]
  python eval/grids.py runs/cyclegan-monet runs/cyclegan-cezanne runs/cyclegan-ukiyoe runs/cyclegan-vangogh --out grids/
  python eval/grids.py --compare renders/ runs/fast-starry runs/adain runs/cyclegan-vangogh --content photos/ --out grids/

For each CycleGAN run: RUN_A.png (real A | fake B | reconstructed A) and RUN_B.png (real B | fake A |
reconstructed B), ROWS test images chosen with --seed, centre-cropped to --size. With several runs
it also writes fig7_photo_to_artists.png (the paper's Fig. 7 layout): the same photos, then each
run's translation of them side by side (columns labelled by domain, and by run where a domain
repeats). Test images come from each run's shards (its config.toml 'data'), or --data (a shard
root or a folder with testA/ testB/). Each run's newest checkpoint is used, or --step N.

--compare lays out the methods on the same photos (--content, default the first CycleGAN run's
test photos): one column per Gatys render folder and style, per fast-style run and style, per AdaIN run
and style (--style, default the styles of the Gatys folders and fast-style runs in the grid: the same
paintings by every method), and per CycleGAN run (photo -> painting), each labelled. OUT also receives grids_config.toml.
"""

import sys
from pathlib import Path

from brushwork import cli
from brushwork.core import presets
from brushwork.core.errors import BrushworkError
from brushwork.schemas.eval import GridsConfig


def main(cfg: GridsConfig) -> int:
    if not cfg.runs:
        raise BrushworkError("name at least one run dir (or, with --compare, a Gatys render folder)")
    from brushwork.evaluation.grid_figures import compare_grid, run_grids  # torch: imported once the flags are good

    if not cfg.out:  # never the current directory unasked: beside the run the grids show
        cfg = cfg.replace(out=f"{cfg.runs[0].rstrip('/')}/grids")
        print(f"grids: into {cfg.out} (--out to choose)", flush=True)
    out = Path(cfg.out)
    (compare_grid if cfg.compare else run_grids)(cfg, out)
    presets.write_resolved(cfg, out, "grids_config.toml")
    return 0


COMMAND = cli.Command(GridsConfig, main, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
