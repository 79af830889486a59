#!/usr/bin/env python3
"""Loader throughput: decode + augment (resize 286 → crop 256 → flip) from shards, images/s.

Shards the bundled monet2photo samples (256 px JPEGs) into a temp folder unless --shards is given,
then times the training DataLoader for each worker count. Counts both domains' images.

usage: python bench/loader.py [--shards DIR] [--workers 0 1 2] [--batches 200] [--batch_size 1]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from brushwork import shards
from brushwork.data import Augment, train_loader

REPO = Path(__file__).resolve().parent.parent


def make_shards(out: str) -> str:
    plans = shards.plan_shards(shards.sources_from_layout(REPO / "data_prep/samples/monet2photo"),
                               samples_per_shard=4)
    shards.write_shards(plans, out, shards.ShardOptions())
    shards.write_manifest(plans, out, {"input": "bundled monet2photo samples"})
    return out


def measure(root: str, workers: int, batches: int, batch_size: int, load: int, crop: int) -> dict:
    loader, _ = train_loader(root, batch_size=batch_size, rank=0, world=1, num_workers=workers, seed=0,
                             aug=Augment(load, crop))
    it = iter(loader)
    for _ in range(max(10, 2 * workers)):  # start the workers, fill the prefetch queue
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t0
    images = 2 * batches * batch_size
    return {"workers": workers, "images": images, "seconds": round(dt, 3), "images_per_s": round(images / dt, 1),
            "per_worker_core": round(images / dt / max(1, workers), 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", default="")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--load_size", type=int, default=286)
    p.add_argument("--crop_size", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.shards or make_shards(tmp + "/monet_samples")
        for w in args.workers:
            print(json.dumps(measure(root, w, args.batches, args.batch_size, args.load_size, args.crop_size)))


if __name__ == "__main__":
    main()
