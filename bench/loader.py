#!/usr/bin/env python3
"""Loader throughput: decode + augment (resize 286 -> crop 256 -> flip) from shards, images/s.

  python bench/loader.py                                   # the bundled monet2photo samples, default shards
  python bench/loader.py --domain_size 400 --slots 16      # a 400-image domain as one of 16 ranks
  python bench/loader.py --domain_size 400 --slots 64 --workers 4 --all_slots --passes 1 --s3
                                                           # every slot of 64 x 4 on a local S3 server

Shards the bundled monet2photo samples (256 px JPEGs, the default 64 per shard) into a temp folder,
or with --domain_size N a synthetic domain of N 256-px images, unless --shards is given; then times
the training DataLoader of one rank (of --slots equal ranks) for each worker count. Counts the
images of both domains (A and B).

--all_slots reads --passes passes of every slot of the simulated world (--slots ranks x the first
--workers value), one slot after another in one process, without decoding, and prints images read,
distinct images, and bytes fetched against the dataset's bytes. With --s3 the shards go to a local
S3 server (moto on 127.0.0.1) and the bytes are those the server sent.
"""

from brushwork import cli
from brushwork.schemas.bench import LoaderBench

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(LoaderBench, None, __doc__))

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from brushwork.data import shards
from brushwork.data.stream import Augment, train_loader

REPO = Path(__file__).resolve().parent.parent


def make_shards(out: str, domain_size: int, tmp: str) -> str:
    src = REPO / "data_prep/samples/monet2photo"
    if domain_size:
        from brushwork.data import synth

        src = Path(tmp) / "src"
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


def read_all_slots(root: str, cfg: LoaderBench, fetched) -> dict:
    """Every slot's share of ``cfg.passes`` passes of both domains, slot after slot: what a job fetches."""
    from collections import Counter

    from brushwork.data.shards import read_manifest
    from brushwork.data.stream import Layout, domain_shards, domain_stream

    manifest = read_manifest(root)
    domains = [domain_shards(root, "train", d, manifest) for d in "AB"]
    layout = Layout(cfg.slots, max(1, cfg.workers[0]), cfg.batch_size)
    drawn = Counter()
    t0 = time.perf_counter()
    for slot in range(layout.slots):
        for dom in domains:
            stream = domain_stream(dom, seed=0, slot=slot, layout=layout, buffer=256)
            for _ in range(sum(layout.pass_lengths(dom.samples, p)[slot] for p in range(cfg.passes))):
                drawn[(dom.domain, next(stream)[1])] += 1
    dataset = sum(s["bytes"] for s in manifest["shards"] if s["split"] == "train")
    got = fetched()
    return {"slots": layout.slots, "ranks": cfg.slots, "workers": layout.workers, "passes": cfg.passes,
            "images_read": sum(drawn.values()), "distinct": len(drawn),
            "images": sum(d.samples for d in domains), "fetched_bytes": got, "dataset_bytes": dataset,
            "fetched_per_pass_over_dataset": round(got / dataset / cfg.passes, 3),
            "seconds": round(time.perf_counter() - t0, 2)}


def run(cfg: LoaderBench) -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if cfg.s3:
            from s3_server import BUCKET, s3_server

            with s3_server() as (_, counter):
                root = cfg.shards or make_shards(f"s3://{BUCKET}/ds", cfg.domain_size, tmp)
                counter.reset()
                print(json.dumps(read_all_slots(root, cfg, lambda: counter.bytes)), flush=True)
            return 0
        root = cfg.shards or make_shards(tmp + "/ds", cfg.domain_size, tmp)
        if cfg.all_slots:
            from brushwork.data.shard_reader import FETCHED

            FETCHED.update(requests=0, bytes=0)
            print(json.dumps(read_all_slots(root, cfg, lambda: FETCHED["bytes"])), flush=True)
            return 0
        for w in cfg.workers:
            print(json.dumps(measure(root, w, cfg)), flush=True)
    return 0


COMMAND = cli.Command(LoaderBench, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
