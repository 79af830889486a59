#!/usr/bin/env python3
"""FID and KID between generated and real images (folders, or a split/domain of a shard root).

  python eval/fid.py --fakes translated/photo_to_monet --reals data/shards/monet2photo --domain A
  python eval/fid.py --fakes a/ --reals b/ --out results/      # results/fid.json + results/fid_config.toml

FID and KID are torchmetrics' metrics. Features: the standard FID Inception (the TensorFlow graph's weights as
torch-fidelity and torchmetrics load them: python -m brushwork.pretrained fid_inception, or --inception_weights
PATH), so the numbers compare with published ones; --features torchvision uses torchvision's Inception-v3 as
earlier versions did (numbers consistent among themselves only). Under 50 images
per side both numbers are mostly noise, and the tool says so; the KID subset size shrinks to half
the smaller set so that its spread means something. --random_inception (tests only) is flagged in
the output as not comparable.
"""

import json
import sys

from brushwork import cli
from brushwork.core import presets
from brushwork.core.errors import BrushworkError
from brushwork.core.fileio import atomic_write_text
from brushwork.schemas.eval import FIDConfig


def main(cfg: FIDConfig) -> int:
    if not cfg.fakes or not cfg.reals:
        raise BrushworkError("--fakes and --reals are required (folders or shard roots)")
    import torch  # imported once the flags are good: --help and flag errors answer at once

    from brushwork.evaluation import fid
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = fid.feature_net(cfg.features, cfg.inception_weights or None, cfg.random_inception).to(device)
    f_fake = fid.features(net, fid.images_from(cfg.fakes, cfg.split, cfg.domain), cfg.batch_size, device)
    f_real = fid.features(net, fid.images_from(cfg.reals, cfg.split, cfg.domain), cfg.batch_size, device)
    subset = fid.kid_subset_size(len(f_fake), len(f_real), cfg.kid_subset_size)
    numbers = fid.scores(f_fake, f_real, cfg.kid_subsets, subset)
    kid_mean, kid_std = numbers["kid"], numbers["kid_std"]
    small = min(len(f_fake), len(f_real)) < fid.SMALL_SAMPLE
    described = {"fid_inception": "the standard FID Inception (torchmetrics)",
                 "torchvision": "torchvision inception_v3 (torchmetrics)"}[cfg.features]
    result = {**numbers, "kid_subset_size": subset, "n_fake": len(f_fake), "n_real": len(f_real),
              "small_sample": small, "features": "random (NOT COMPARABLE)" if cfg.random_inception else described}
    note = "  [random features: NOT COMPARABLE to anything]" if cfg.random_inception else ""
    print(f"FID {numbers['fid']:.3f}  KID {kid_mean:.5f} ± {kid_std:.5f} (subsets of {subset})  "
          f"({len(f_fake)} fake, {len(f_real)} real){note}")
    if small:
        print(f"warning: fewer than {fid.SMALL_SAMPLE} images per side: FID and KID are dominated by sampling noise "
              "here; compare runs only with many more images (FID is usually reported on thousands)")
    if cfg.out:
        from brushwork.core.fileio import out_file

        path = out_file(cfg.out, "fid.json")
        atomic_write_text(path, json.dumps(result, indent=1) + "\n")
        presets.write_resolved(cfg, path.parent, f"{path.stem}_config.toml")
        print(f"numbers: {path}")
    return 0


COMMAND = cli.Command(FIDConfig, main, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
