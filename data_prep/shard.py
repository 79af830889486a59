#!/usr/bin/env python3
"""Validate images and write them into WebDataset shards with a manifest.

  python data_prep/shard.py data/raw/monet2photo --out data/shards/monet2photo
  python data_prep/shard.py --a my/paintings --b my/photos --out data/shards/mine --max_side 512
  python data_prep/shard.py data/raw/monet2photo --out s3://bucket/monet2photo     # pip install -e '.[s3]'

Input is a dataset folder or .zip in the original CycleGAN layout (trainA trainB testA testB), a
plain folder of photos (one domain, B: what fast style trains on), or folders of your own images
with --a DIR and/or --b DIR. Every image goes through the validator: bad
files are listed in OUT/rejected.jsonl with the reason and never stop the job (the job fails only
if every training image of a domain was rejected). Shards are written atomically; two runs on the
same input give byte-identical shards.

Reruns: OUT records a fingerprint of the input (paths, sizes, mtimes) and the settings. The same
command again finishes only what is missing (after a kill, say); other input or settings are
refused with a line saying what changed, and --overwrite rebuilds.

Folders made by an earlier version (format 2) lack the per-sample byte offsets readers need;
`--reindex --out DIR` adds them, reading each tar once and keeping it byte for byte.

Job arrays: run with --job_index i --num_jobs n (jobs 0..n-1 write disjoint shards), then run the
same command once without them (or with --manifest_only) to check every shard and write the manifest.
"""

import sys

from brushwork import cli
from brushwork.data import shard_build, shards
from brushwork.schemas.data import ShardConfig


def run(cfg: ShardConfig) -> int:
    if cfg.reindex:
        done = shards.reindex(cfg.out)
        print(f"{cfg.out}: " + (f"added sample offsets to {done} shard(s)" if done else "already current"), flush=True)
        return 0
    shard_build.build(cfg, say=lambda line: print(line, flush=True))
    return 0


COMMAND = cli.Command(ShardConfig, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
