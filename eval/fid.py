#!/usr/bin/env python3
"""FID and KID between generated and real images (folders, or a split/domain of a shard root).

  python eval/fid.py --fake translated/photo_to_monet --real data/shards/monet2photo --domain A
  python eval/fid.py --fake a/ --real b/ --out fid.json

Features: torchvision's Inception-v3 (inception_v3_google-0cc3c7bd.pth in the torch hub cache, or
--inception_weights PATH). Values are comparable between runs of this tool, not with papers that use
the TensorFlow Inception graph. --random_features (tests only) is flagged in the output as not comparable.
"""

import json
import sys
from pathlib import Path

import torch

from brushwork import cli, fid
from brushwork.errors import BrushworkError
from brushwork.fileio import atomic_write_text


def main(fake: str = "", real: str = "", split: str = "test", domain: str = "A", inception_weights: str = "",
         random_features: bool = False, batch_size: int = 32, kid_subsets: int = 10, kid_subset_size: int = 1000,
         out: str = ""):
    if not fake or not real:
        raise BrushworkError("--fake and --real are required (folders or shard roots)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = fid.inception(inception_weights or None, random_features).to(device)
    f_fake = fid.features(net, fid.images_from(fake, split, domain), int(batch_size), device)
    f_real = fid.features(net, fid.images_from(real, split, domain), int(batch_size), device)
    kid_mean, kid_std = fid.kid(f_fake, f_real, int(kid_subsets), int(kid_subset_size))
    result = {"fid": fid.fid(f_fake, f_real), "kid": kid_mean, "kid_std": kid_std, "n_fake": len(f_fake),
              "n_real": len(f_real), "features": "random (NOT COMPARABLE)" if random_features else "torchvision inception_v3"}
    note = "  [random features: NOT COMPARABLE to anything]" if random_features else ""
    print(f"FID {result['fid']:.3f}  KID {kid_mean:.5f} ± {kid_std:.5f}  ({len(f_fake)} fake, {len(f_real)} real){note}")
    if out:
        atomic_write_text(Path(out), json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(cli.run(main, help_text=__doc__))
