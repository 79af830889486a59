#!/usr/bin/env python3
"""Write a synthetic unpaired dataset (trainA trainB testA testB) with a known A -> B mapping.

Domain A holds procedurally drawn scenes; domain B holds other scenes passed through a fixed colour
mapping (brushwork.synth.true_map). Same flags, same bytes. Use it to check that a translator learns:
PSNR(G(a), true_map(a)) must rise well above PSNR(a, true_map(a)).

usage: python data_prep/synth.py [--out DIR] [--n_train N] [--n_test N] [--size PX] [--seed S]
"""

import sys

from tqdm import tqdm

from brushwork import cli, config, synth


def main(**flags):
    cfg = config.load_config(config.SynthConfig, None, flags)
    with tqdm(total=2 * (cfg.n_train + cfg.n_test), desc="synth", unit="img", disable=None) as bar:
        counts = synth.write_dataset(cfg.out, cfg.n_train, cfg.n_test, cfg.size, cfg.seed, bar.update)
    config.write_resolved(cfg, cfg.out, "synth.toml")
    listing = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"synthetic dataset: {cfg.out} ({listing}; {cfg.size}x{cfg.size} px, seed {cfg.seed})")


def help_text():
    return __doc__ + "\nflags:\n" + config.describe(config.SynthConfig)


if __name__ == "__main__":
    sys.exit(cli.run(main, help_text=help_text))
