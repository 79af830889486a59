#!/usr/bin/env python3
"""Loader throughput: decode + augment (resize 286 -> crop 256 -> flip) from shards, images/s.

  python bench/loader.py                                   # the bundled monet2photo samples, default shards
  python bench/loader.py --domain_size 400 --slots 16      # a 400-image domain as one of 16 ranks

Shards the bundled monet2photo samples (256 px JPEGs, the default 64 per shard) into a temp folder,
or with --domain_size N a synthetic domain of N 256-px images, unless --shards is given; then times
the training DataLoader of one rank (of --slots equal ranks) for each worker count. Counts the
images of both domains (A and B).
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from brushwork import cli, shards
from brushwork.data import Augment, train_loader
from brushwork.schemas.bench import LoaderBench

REPO = Path(__file__).resolve().parent.parent


def make_shards(out: str, domain_size: int) -> str:
    src = REPO / "data_prep/samples/monet2photo"
    if domain_size:
        from brushwork import synth

        src = Path(out + "_src")
        synth.write_dataset(src, n_train=domain_size, n_test=1, size=256, seed=0)
    plans = shards.plan_shards(shards.sources_from_layout(src), samples_per_shard=64)
    shards.write_shards(plans, out, shards.ShardOptions())
    shards.write_manifest(plans, out, {"input": str(src)})
    return out


def measure(root: str, workers: int, cfg: LoaderBench) -> dict:
    loader, _ = train_loader(root, batch_size=cfg.batch_size, rank=0, world=cfg.slots, num_workers=workers, seed=0,
                             aug=Augment(cfg.load_size, cfg.crop_size))
    it = iter(loader)
    for _ in range(max(10, 2 * workers)):  # start the workers, fill the prefetch queue
        next(it)
    t0 = time.perf_counter()
    for _ in range(cfg.batches):
        next(it)
    dt = time.perf_counter() - t0
    images = 2 * cfg.batches * cfg.batch_size
    return {"workers": workers, "slots": cfg.slots, "images": images, "seconds": round(dt, 3),
            "images_per_s_both_domains": round(images / dt, 1), "per_worker_core": round(images / dt / max(1, workers), 1)}


def run(cfg: LoaderBench) -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = cfg.shards or make_shards(tmp + "/ds", cfg.domain_size)
        for w in cfg.workers:
            print(json.dumps(measure(root, w, cfg)), flush=True)
    return 0


COMMAND = cli.Command(LoaderBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
