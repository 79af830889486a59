"""Shard a dataset from start to end (what ``data_prep/shard.py`` does), and the shard cache of a run trained
straight from an image folder.

``--data`` of a training command may name a raw folder instead of shards: the original layout
(trainA/ trainB/ ...) or a plain folder of images (one domain). It is sharded once into ``RUN/shards``
with the same rules as ``shard.py`` (validated, fingerprinted by paths, sizes and mtimes); a resume or a
rerun with the folder unchanged reuses the cache, a changed folder rebuilds it (it belongs to the run).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from brushwork.core.errors import BrushworkError
from brushwork.core.presets import to_toml
from brushwork.core.progress import Progress
from brushwork.data import shards
from brushwork.schemas.data import ShardConfig

CACHE = "shards"


def build(cfg: ShardConfig, say: Callable[[str], None] = print) -> dict | None:
    """Plan, claim ``cfg.out``, write this job's shards and (one job, or ``--manifest_only``) the manifest."""
    if cfg.input and (cfg.a or cfg.b):
        raise BrushworkError("give either INPUT or --a/--b, not both")
    if cfg.overwrite and cfg.num_jobs > 1:
        raise BrushworkError("--overwrite clears OUT, which the other jobs of the array are writing; run it once "
                             "without --job_index/--num_jobs")
    if cfg.input:
        sources = shards.sources_from_layout(cfg.input)
        origin = shards.source_record(cfg.input, cfg.input)
        if shards.is_plain_folder(cfg.input):
            say(f"{cfg.input}: no trainA/ trainB/ inside: its {len(sources)} image(s) are one domain, B (photos); "
                "for paintings give --a DIR")
    elif cfg.a or cfg.b:
        sources = shards.sources_from_folders(cfg.a, cfg.b, cfg.test_a, cfg.test_b)
        origin = shards.source_record(" ".join(f"--{k} {v}" for k, v in (("a", cfg.a), ("b", cfg.b)) if v))
    else:
        raise BrushworkError("no input: give a dataset folder/zip, a folder of images, or --a DIR and/or --b DIR")
    if not any(s.split == "train" for s in sources):
        raise BrushworkError(f"{cfg.input or cfg.a or cfg.b}: no trainA/ or trainB/ images found; nothing to shard")

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
        say(f"{cfg.out}: wrote {written} shard(s), {skipped} already complete "
            f"(job {cfg.job_index} of {cfg.num_jobs}, {len(mine)} of {len(plans)} shards)")
    if cfg.num_jobs > 1 and not cfg.manifest_only:
        say("run the same command once more without --job_index/--num_jobs to write the manifest")
        return None
    manifest = shards.write_manifest(plans, cfg.out, origin)
    shards.write_root_file(cfg.out, "shard_config.toml", to_toml(cfg).encode())
    counts = "; ".join(f"{split} " + ", ".join(f"{d} {v['samples']}" for d, v in sorted(doms.items()))
                       for split, doms in sorted(manifest["splits"].items(), key=lambda kv: kv[0] != "train"))
    say(f"{cfg.out}: {len(manifest['shards'])} shards ({counts}); {manifest['converted']} converted; "
        f"{manifest['rejected']} rejected" + (f" (listed in {cfg.out}/rejected.jsonl)" if manifest["rejected"] else ""))
    return manifest


def is_raw(data: str) -> bool:
    """A local folder or zip of images rather than shards (no manifest.json)."""
    path = Path(data)
    if "://" in data or not path.exists() or (path / shards.MANIFEST).exists():
        return False
    return path.is_dir() or path.suffix.lower() == ".zip"


def cache_path(run_dir: str) -> str:
    return str(Path(run_dir) / CACHE)


def build_cache(raw: str, run_dir: str, domains: tuple[str, ...], workers: int = 1, rebuild: bool = True,
                say: Callable[[str], None] = print) -> str:
    """Shard ``raw`` into RUN/shards (reused while ``raw`` is unchanged) and return that shard root.

    A plain folder of images is the one domain ``domains`` names; a trainer that needs two domains gets
    one line saying what a raw folder must hold. ``rebuild=False`` (a resume) refuses a changed folder
    instead of re-sharding it: the checkpoint was trained on the cache as it is.
    """
    if shards.is_plain_folder(raw) and len(domains) != 1:
        raise BrushworkError(f"{raw}: a plain folder of images is one domain; this trainer needs "
                             f"{' and '.join(f'train{d}/' for d in domains)} inside (the original layout), or "
                             "shards from data_prep/shard.py --a DIR --b DIR")
    out = cache_path(run_dir)
    plain = shards.is_plain_folder(raw)
    cfg = ShardConfig(input="" if plain else raw, a=raw if plain and domains == ("A",) else "",
                      b=raw if plain and domains != ("A",) else "", out=out, workers=max(1, workers),
                      overwrite=rebuild)
    say(f"data: {raw} is an image folder, not shards: sharding it into {out} (reused while the folder is unchanged)")
    try:
        build(cfg, say=lambda line: None)
    except shards.OutputHeld as e:
        raise BrushworkError(f"{raw} changed since {out} was sharded from it ({e.change}); a resume trains on the "
                             "same data: restore the folder, or start a new --run_dir") from None
    check_domains(out, domains)
    return out


def check_domains(data: str, domains: tuple[str, ...]) -> None:
    """Every domain the trainer reads has training images in ``data``: one line otherwise."""
    manifest = shards.read_manifest(data)
    have = manifest.get("splits", {}).get("train", {})
    missing = [d for d in domains if not have.get(d, {}).get("samples")]
    if missing:
        raise BrushworkError(f"{data}: no training images of domain {', '.join(missing)} (it holds "
                             f"{', '.join(sorted(have)) or 'none'}); shard a folder for it (data_prep/shard.py "
                             f"--{missing[0].lower()} DIR) or pick the domain it has")
