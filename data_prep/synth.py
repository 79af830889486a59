#!/usr/bin/env python3
"""Write a synthetic unpaired dataset (trainA trainB testA testB) with a known A -> B mapping.

  python data_prep/synth.py --out data/raw/synth --n_train 32 --image_size 64

Domain A holds procedurally drawn scenes; domain B holds other scenes passed through a fixed colour
mapping (brushwork.data.synth.true_map). Same flags, same bytes. Use it to check that a translator learns:
PSNR(G(a), true_map(a)) must rise well above PSNR(a, true_map(a)).
"""

import sys

from brushwork import cli
from brushwork.core import presets
from brushwork.core.progress import Progress
from brushwork.data import synth
from brushwork.schemas.data import SynthConfig


def run(cfg: SynthConfig) -> int:
    with Progress(2 * (cfg.n_train + cfg.n_test), desc="synth", unit="img", every_seconds=15) as progress:
        counts = synth.write_dataset(cfg.out, cfg.n_train, cfg.n_test, cfg.image_size, cfg.seed, progress.update)
    presets.write_resolved(cfg, cfg.out, "synth.toml")
    listing = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"synthetic dataset: {cfg.out} ({listing}; {cfg.image_size}x{cfg.image_size} px, seed {cfg.seed})")
    return 0


COMMAND = cli.Command(SynthConfig, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
