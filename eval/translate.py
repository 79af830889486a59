#!/usr/bin/env python3
"""Translate a folder (or shard split) of images with a trained or released CycleGAN generator.

  python eval/translate.py runs/cyclegan-monet --input photos/ --out monet_photos/ --direction BtoA
  python eval/translate.py runs/cyclegan-monet --step 40000 --input photos/ --out out/ --direction BtoA
  python eval/translate.py --model style_monet --input photos/ --out monet/ --results_html
  # ranks split the images:
  accelerate launch eval/translate.py runs/cyclegan-monet --input data/shards/monet2photo --split test --domain B --out out/ --direction BtoA

RUN is a run dir (its newest checkpoint, or --step N), an exported generator (RUN/export/G_A.pth),
the original code's .pth, or a models.pt; --model NAME uses a released model fetched with
python -m brushwork.pretrained NAME. The weights used are printed (file and step). AtoB uses G_A
(painting -> photo for monet2photo), BtoA uses G_B.

Images are translated at full resolution by default (reflect-padded to a multiple of 4, cropped
back; tiny images are padded further) or scaled first with --load_size (and --preprocess).
Output names keep the input's relative path (as .png). Existing outputs are skipped, so a rerun
finishes the rest; --overwrite replaces them. --results_html writes OUT/index.html (input | output,
and the reconstruction with --reconstruct), like the original test.py page. OUT also receives
translate_config.toml. Exit status 1 if no image could be translated.
"""

import sys
from functools import partial

from brushwork import cli
from brushwork.core.errors import BrushworkError
from brushwork.schemas.eval import TranslateConfig


def networks(cfg: TranslateConfig):
    """(generator, the line naming its weights, the reverse generator or None)."""
    from brushwork.data import pretrained
    from brushwork.evaluation.translate import load_generator

    if cfg.model:
        if cfg.reconstruct:
            raise BrushworkError(f"--reconstruct needs both generators; a released model ({cfg.model}) has one")
        net, used = load_generator(pretrained.cyclegan_model(cfg.model), winograd=cfg.winograd)
        return net, f"released model {cfg.model}: {used}", None
    net, used = load_generator(cfg.run, cfg.direction, cfg.step, cfg.winograd)
    back = None
    if cfg.reconstruct:
        reverse = "BtoA" if cfg.direction == "AtoB" else "AtoB"
        try:
            back, _ = load_generator(cfg.run, reverse, cfg.step, cfg.winograd)
        except BrushworkError:
            raise BrushworkError(f"--reconstruct needs both generators: give a run dir or a models.pt, not "
                                 f"{cfg.run}") from None
    return net, used, back


def main(cfg: TranslateConfig) -> int:
    # the library (torch) is imported here, not at the top: --help and flag errors answer at once
    from brushwork.evaluation.apply import apply_folder, device_for
    from brushwork.evaluation.ledger import network_fingerprint
    from brushwork.evaluation.translate import apply_batch

    net, used, back = networks(cfg)

    device = device_for(cfg)
    net = net.to(device)
    second = ("reconstructed", partial(apply_batch, back.to(device), device=device)) if back is not None else None
    return apply_folder(cfg, partial(apply_batch, net, device=device), used,
                        domain=cfg.domain or ("A" if cfg.direction == "AtoB" else "B"), tool="translate",
                        title=f"{cfg.model or cfg.run} ({cfg.direction})", second=second,
                        weights=network_fingerprint(net))


COMMAND = cli.Command(TranslateConfig, main, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
