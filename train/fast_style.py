#!/usr/bin/env python3
"""Train a feed-forward style network (Johnson et al. 2016) on the photos of any shards; one or several styles.

  accelerate launch train/fast_style.py --style starry_night.jpg --data data/shards/monet2photo --domain B
  accelerate launch train/fast_style.py --style wave.jpg,scream.jpg --data data/shards/monet2photo  # one net, 2 styles
  accelerate launch train/fast_style.py --style starry_night.jpg --run_dir runs/fast-starry --resume auto
  python train/fast_style.py --style s.jpg --data shards/ --random_vgg --width 8 --max_steps 50   # a smoke run
  accelerate launch train/fast_style.py --style wave.jpg --data my/photos    # a plain photo folder: sharded into RUN/shards

The network paints a photo in one forward pass (eval/stylize.py applies it at full resolution); it is
trained with Gatys's perceptual losses measured by VGG-16 (--loss_network vgg19 for VGG-19): content
at relu2_2, style Grams at relu1_2, relu2_2, relu3_3, relu4_3 of the style image(s), total
variation. Several styles train one network with conditional instance norm (one (γ, β) per style).
Presets: the defaults (the paper's network and losses, 8 + 4 epochs, no TV term) and
brushwork/presets/fast_style/johnson.toml (the paper's recipe: 2 epochs, TV 1e-6).

The run works exactly as train/cyclegan.py's: the same loader (any number of ranks and workers),
DDP, LR from images seen, full-state checkpoints with --resume auto (also on another number of
processes), SIGTERM/SIGUSR1 -> checkpoint + exit 0, TensorBoard (losses, labelled samples),
progress lines in log files, run-dir rules, config.toml and export/net.pth. VGG weights come from
the torch hub cache (python -m brushwork.pretrained vgg16) or --vgg_weights; --random_vgg for tests.
"""

import sys

from brushwork import cli
from brushwork.schemas.train import FastStyleConfig


def main(cfg: FastStyleConfig) -> int:
    # the library (torch) is imported here, not at the top: --help and flag errors answer at once
    from brushwork.data import stream as data
    from brushwork.training import trainer
    from brushwork.training.fast_style import FastStyleTrainer, style_name

    if not cfg.data:
        from brushwork.core.errors import BrushworkError

        raise BrushworkError("give --data SHARDS (a shard root whose --domain holds the content photos)")
    name = "+".join(style_name(s) for s in cfg.style) or "style"
    cfg = cfg.replace(run_dir=cfg.run_dir or f"runs/fast-{name}")
    accelerator, cfg = trainer.launch(cfg, domains=(cfg.domain,))
    model = FastStyleTrainer(cfg, accelerator, rank=accelerator.process_index)
    aug = data.Augment(cfg.size, cfg.size, flip=False, preprocess="center")
    trainer.train(cfg, accelerator, model, name=f"fast style {name}", aug=aug)
    return 0


COMMAND = cli.Command(FastStyleConfig, main, __doc__, presets="fast_style", default_preset="default")

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
