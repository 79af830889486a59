#!/usr/bin/env python3
"""Train arbitrary style transfer (AdaIN, Huang & Belongie 2017): one decoder that paints any photo in any style.

  accelerate launch train/adain.py --data data/shards/monet2photo     # photos in B, paintings in A
  accelerate launch train/adain.py --content_data s3://bucket/coco --style_data s3://bucket/wikiart --preset paper
  accelerate launch train/adain.py --run_dir runs/adain --resume auto
  python train/adain.py --data shards/ --random_vgg --size 64 --load_size 64 --max_steps 50     # a smoke run
  python eval/stylize.py runs/adain --input photos/ --style any_painting.jpg --out out/

The encoder is VGG-19 up to relu4_1 (frozen; python -m brushwork.pretrained vgg19, or --vgg_weights;
--random_vgg for tests); AdaIN gives the photo's features the painting's per-channel mean and standard deviation;
the decoder (trained here) maps them back to an image. Loss: content (relu4_1 against the AdaIN target) + λ·style
(means and standard deviations at relu1_1 ... relu4_1). Content photos and style images come from shards:
--data with --content_domain B (photos) and --style_domain A (paintings), or two datasets with --content_data
and --style_data. Defaults are the paper's (brushwork/presets/adain/paper.toml says where each number comes from):
λ 10, Adam lr 1e-4 decayed as lr / (1 + 5e-5 · iteration), batch 8, shorter side 512 then a random 256 crop.

The run works exactly as train/cyclegan.py's: the same loader (any number of ranks and workers), DDP, full-state
checkpoints with --resume auto (also on another number of processes), SIGTERM/SIGUSR1 -> checkpoint + exit 0,
TensorBoard (losses, samples content | style | result), progress lines in log files, run-dir rules, config.toml,
and export/ (encoder.pth + decoder.pth: all that eval/stylize.py needs).
"""

import sys

from brushwork import cli
from brushwork.schemas.train import AdaINConfig


def main(cfg: AdaINConfig) -> int:
    # the library (torch) is imported here, not at the top: --help and flag errors answer at once
    from brushwork.data import stream as data
    from brushwork.training import trainer
    from brushwork.training.adain import AdaINTrainer

    cfg = cfg.replace(run_dir=cfg.run_dir or "runs/adain")
    two: dict[str, tuple[str, ...]] = {}
    for root, domain in ((cfg.content_data, cfg.content_domain), (cfg.style_data, cfg.style_domain)):
        if root:
            two[root] = (*two.get(root, ()), domain)
    accelerator, cfg = trainer.launch(cfg, domains=(cfg.content_domain, cfg.style_domain), roots=two or None)
    model = AdaINTrainer(cfg, accelerator, rank=accelerator.process_index)
    aug = data.Augment(cfg.load_size, cfg.size, flip=False, preprocess="shorter_side_and_crop")
    trainer.train(cfg, accelerator, model, name="AdaIN", aug=aug)
    return 0


COMMAND = cli.Command(AdaINConfig, main, __doc__, presets="adain", default_preset="paper")

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
