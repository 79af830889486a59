#!/usr/bin/env python3
"""Train CycleGAN (photo <-> painting) with DDP on any number of CPUs, GPUs or nodes.

  accelerate launch train/cyclegan.py --dataset monet             # data/shards/monet2photo -> runs/cyclegan-monet
  accelerate launch train/cyclegan.py --dataset monet --resume auto
  accelerate launch --mixed_precision bf16 train/cyclegan.py --dataset monet
  accelerate launch train/cyclegan.py --data s3://bucket/monet2photo --run_dir runs/mine
  accelerate launch train/cyclegan.py --data data/raw/monet2photo   # an image folder: sharded once into RUN/shards
  tensorboard --logdir runs

The defaults are the paper's (the original code's); --dataset picks brushwork/presets/cyclegan/{dataset}.toml,
--preset PATH another TOML file, and any flag below overrides both. The run dir receives config.toml
(the resolved settings, including what accelerate launch decided), tb/ (one TensorBoard run, resumes
append to it), samples/, checkpoints/step_N/ (+ latest) and export/ (the generators alone, refreshed
at every checkpoint). A run dir belongs to one run: to continue, pass --resume auto.

Mixed precision and torch.compile follow accelerate launch (its flags or --config_file) unless the
script's --mixed_precision / --compile say otherwise. SIGTERM or SIGUSR1 (cluster preemption) saves
a checkpoint and exits 0; --resume auto continues exactly where it stopped, also with another number
of processes (the LR follows images seen). With stdout in a log file, a plain progress line every
--log_every steps. On a CPU-only machine: accelerate launch --multi_gpu --num_processes 2 ... gives
2 gloo ranks.
"""

import sys

from brushwork import cli
from brushwork.core import presets
from brushwork.schemas.train import CycleGANConfig


def default_preset(flags: dict) -> str | None:
    """brushwork/presets/cyclegan/{dataset}.toml when there is one (monet, cezanne, ukiyoe, vangogh)."""
    dataset = str(flags.get("dataset", CycleGANConfig().dataset))
    return dataset if (presets.CONFIG_ROOT / "cyclegan" / f"{dataset}.toml").is_file() else None


def main(cfg: CycleGANConfig) -> int:
    # the library (torch) is imported here, not at the top: --help and flag errors answer at once
    from brushwork.data import stream as data
    from brushwork.training import trainer
    from brushwork.training.cyclegan import CycleGANTrainer

    cfg = cfg.replace(data=cfg.data or f"data/shards/{cfg.dataset}2photo",
                      run_dir=cfg.run_dir or f"runs/cyclegan-{cfg.dataset}")
    accelerator, cfg = trainer.launch(cfg, domains=("A", "B"))
    model = CycleGANTrainer(cfg, accelerator, rank=accelerator.process_index)
    aug = data.Augment(cfg.load_size, cfg.crop_size, flip=not cfg.no_flip, preprocess=cfg.preprocess)
    trainer.train(cfg, accelerator, model, name=cfg.dataset, aug=aug)
    return 0


COMMAND = cli.Command(CycleGANConfig, main, __doc__, presets="cyclegan", default_preset=default_preset)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
