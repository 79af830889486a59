#!/usr/bin/env python3
"""Bytes the previous reader (1d3c20a) fetches from S3 for one pass of every slot: the "before" of BENCHMARKS.md.

  git worktree add /tmp/old 1d3c20a
  PYTHONPATH=/tmp/old python bench/previous_reader_bytes.py

Runs against the brushwork on PYTHONPATH (the previous commit's API: pass_segments(..., slots)),
on the same counting S3 server and data as `bench/loader.py --domain_size 400 --all_slots --s3`.
"""
import inspect
import json
import sys
import tempfile
from pathlib import Path

if "-h" in sys.argv[1:] or "--help" in sys.argv[1:]:
    print(__doc__.strip())
    raise SystemExit(0)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from s3_server import BUCKET, s3_server  # noqa: E402

from brushwork.data import (
    shards,
    synth,  # noqa: E402
)
from brushwork.data import stream as data

if "slots" not in inspect.signature(data.pass_segments).parameters:
    print(f"previous_reader_bytes.py: this measures the previous reader (1d3c20a), and the brushwork on the path "
          f"({Path(data.__file__).parent}) has the current one; put a worktree of 1d3c20a first on PYTHONPATH (see "
          "--help). The current reader's bytes: bench/loader.py --domain_size 400 --all_slots --s3", file=sys.stderr)
    raise SystemExit(2)

with tempfile.TemporaryDirectory() as tmp, s3_server() as (_, counter):
    src = Path(tmp) / "src"
    synth.write_dataset(src, n_train=400, n_test=1, size=256, seed=0)
    plans = shards.plan_shards(shards.sources_from_layout(src), samples_per_shard=64)
    root = f"s3://{BUCKET}/ds"
    shards.write_shards(plans, root, shards.ShardOptions())
    manifest = shards.write_manifest(plans, root, {"input": "x"})
    dataset = sum(s["bytes"] for s in manifest["shards"] if s["split"] == "train")
    for slots in (16, 64):
        counter.reset()
        doms = [data.domain_shards(root, "train", d) for d in "AB"]
        n = 0
        for slot in range(slots):
            for dom in doms:
                k = sum(b - a for _, a, b in data.pass_segments(dom.counts, 0, 0, slot, slots))
                st = data.domain_stream(dom, seed=0, slot=slot, slots=slots, buffer=256)
                for _ in range(k):
                    next(st)
                    n += 1
        print(json.dumps({"reader": "1d3c20a", "slots": slots, "images_read": n, "fetched_bytes": counter.bytes,
                          "dataset_bytes": dataset, "ratio": round(counter.bytes / dataset, 2)}), flush=True)
