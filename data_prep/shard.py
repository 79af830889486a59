#!/usr/bin/env python3
"""Validate images and write them into WebDataset shards with a manifest.

  python data_prep/shard.py data/raw/monet2photo --out data/shards/monet2photo
  python data_prep/shard.py --a my/paintings --b my/photos --out data/shards/mine --max_side 512
  python data_prep/shard.py data/raw/monet2photo --out s3://bucket/monet2photo     # pip install 'brushwork[s3]'

Input is a dataset folder or .zip in the original CycleGAN layout (trainA trainB testA testB), or
two folders of your own images with --a DIR --b DIR. Every image goes through the validator: bad
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

from brushwork import cli, shards
from brushwork.config import to_toml
from brushwork.errors import BrushworkError
from brushwork.progress import Progress
from brushwork.schemas.data import ShardConfig


def run(cfg: ShardConfig) -> int:
    if not cfg.out:
        raise BrushworkError("--out is required (e.g. --out data/shards/monet2photo)")
    if cfg.reindex:
        done = shards.reindex(cfg.out)
        print(f"{cfg.out}: " + (f"added sample offsets to {done} shard(s)" if done else "already current"), flush=True)
        return 0
    if cfg.input and (cfg.a or cfg.b):
        raise BrushworkError("give either INPUT or --a/--b, not both")
    if cfg.overwrite and cfg.num_jobs > 1:
        raise BrushworkError("--overwrite clears OUT, which the other jobs of the array are writing; run it once "
                             "without --job_index/--num_jobs")
    if cfg.input:
        sources = shards.sources_from_layout(cfg.input)
        origin = shards.source_record(cfg.input, cfg.input)
    elif cfg.a and cfg.b:
        sources = shards.sources_from_folders(cfg.a, cfg.b, cfg.test_a, cfg.test_b)
        origin = shards.source_record(f"--a {cfg.a} --b {cfg.b}")
    else:
        raise BrushworkError("no input: give a dataset folder/zip, or both --a DIR and --b DIR")
    for domain in "AB":
        if not any(s.split == "train" and s.domain == domain for s in sources):
            raise BrushworkError(f"{cfg.input or cfg.a}: no train{domain} images found; nothing to shard")

    opts = shards.ShardOptions(max_side=cfg.max_side, max_pixels=cfg.max_pixels)
    settings = {"max_side": opts.max_side, "max_pixels": opts.max_pixels, "jpeg_quality": opts.jpeg_quality}
    plans = shards.plan_shards(sources, cfg.samples_per_shard, cfg.max_shard_bytes, settings)
    record = shards.plan_record(plans, {"samples_per_shard": cfg.samples_per_shard,
                                        "max_shard_bytes": cfg.max_shard_bytes, **settings})
    shards.claim_output(cfg.out, record, overwrite=cfg.overwrite)
    mine = shards.job_shards(plans, cfg.job_index, cfg.num_jobs)
    if not cfg.manifest_only:
        total = sum(len(p.sources) for p in mine)
        with Progress(total, desc="shard", unit="img", every_seconds=15) as progress:
            written, skipped = shards.write_shards(mine, cfg.out, opts, cfg.workers, progress)
        print(f"{cfg.out}: wrote {written} shard(s), {skipped} already complete "
              f"(job {cfg.job_index} of {cfg.num_jobs}, {len(mine)} of {len(plans)} shards)", flush=True)
    if cfg.num_jobs > 1 and not cfg.manifest_only:
        print("run the same command once more without --job_index/--num_jobs to write the manifest")
        return 0
    manifest = shards.write_manifest(plans, cfg.out, origin)
    shards.write_root_file(cfg.out, "shard_config.toml", to_toml(cfg).encode())
    counts = "; ".join(f"{split} " + ", ".join(f"{d} {v['samples']}" for d, v in sorted(doms.items()))
                       for split, doms in sorted(manifest["splits"].items(), key=lambda kv: kv[0] != "train"))
    print(f"{cfg.out}: {len(manifest['shards'])} shards ({counts}); {manifest['converted']} converted; "
          f"{manifest['rejected']} rejected" + (f" (listed in {cfg.out}/rejected.jsonl)" if manifest["rejected"] else ""))
    return 0


COMMAND = cli.Command(ShardConfig, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
