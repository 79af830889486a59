"""Validate images and write them into WebDataset shards, atomically, resumably, deterministically.

Layout (``out`` is ``{root}/{dataset}``, a local path or any fsspec URL)::

    out/{split}/{A|B}-{NNNNNN}.tar    samples: {key}.jpg|png + {key}.json
    out/.parts/plan.json              fingerprint of the input (paths, sizes, mtimes) and settings
    out/.parts/{split}-{A|B}-{NNNNNN}.json   per-shard record, written before the tar appears
    out/manifest.json                 every shard with samples, bytes, sha256; the source
    out/rejected.jsonl                files the validator refused, with the reason

Which source file lands in which shard depends only on the sorted input and the shard limits, so a
SLURM array (``job_index``/``num_jobs``) splits the shards with no overlap and two runs produce
byte-identical tars (fixed tar metadata, original bytes kept unless a conversion was needed).

A folder is described by what made it: every shard's record carries the fingerprint of the input
and settings it was planned from. A rerun with the same fingerprint finishes only what is missing;
a rerun with another (more images, other --samples_per_shard, ...) is refused with a line saying
what changed, and ``--overwrite`` rebuilds. Sample keys are unique across the whole dataset.
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import json
import os
import re
import tarfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from brushwork.core.errors import BrushworkError, ImageError
from brushwork.core.fileio import file_sha256, write_url  # noqa: F401 - file_sha256: also read from here
from brushwork.core.storage import filesystem, storage_error
from brushwork.data.images import (
    DEFAULT_MAX_PIXELS,
    check_regular,
    decode_image,
    encode_png,
    find_images,
    is_image_name,
)

SPLIT_FOLDERS = {"trainA": ("train", "A"), "trainB": ("train", "B"), "testA": ("test", "A"), "testB": ("test", "B")}
MANIFEST = "manifest.json"
REJECTED = "rejected.jsonl"
PARTS = ".parts"
PLAN = f"{PARTS}/plan.json"
FORMAT_VERSION = 3  # 3: each shard's sample keys and byte offsets in its record and the manifest


@dataclass(frozen=True)
class Source:
    """One input image: where it is read from and where it goes."""

    split: str      # train | test
    domain: str     # A | B
    rel: str        # path relative to the input root (names the sample)
    location: str   # file path, or "zip_path::member"
    size: int       # bytes in the source (used for max_shard_bytes planning)
    stamp: str = "" # what says the content changed without reading it: mtime (files), CRC (zip members)


@dataclass(frozen=True)
class ShardPlan:
    split: str
    domain: str
    index: int
    sources: tuple[Source, ...]
    keys: tuple[str, ...] = ()   # one per source, unique across the whole dataset
    fingerprint: str = ""        # of the whole plan: input and settings

    @property
    def name(self) -> str:
        return f"{self.split}/{self.domain}-{self.index:06d}.tar"

    @property
    def part_name(self) -> str:
        return f"{PARTS}/{self.split}-{self.domain}-{self.index:06d}.json"


@dataclass(frozen=True)
class ShardOptions:
    max_side: int = 0               # downscale so the longer side is at most this (0: keep)
    max_pixels: int = DEFAULT_MAX_PIXELS
    jpeg_quality: int = 95          # for JPEG sources that had to be re-encoded


# ---------------------------------------------------------------------------------------------
# Finding the input


def _split_of(parts: tuple[str, ...]) -> tuple[str, str] | None:
    for part in parts:
        if part in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part]
    return None


def sources_from_layout(root: str | os.PathLike, plain_domain: str = "B") -> list[Source]:
    """A folder or zip in the original layout (trainA trainB testA testB, any depth), or a plain folder of
    images: that is one domain's training set, ``plain_domain`` (B: photos, what fast style trains on)."""
    root = Path(root)
    if not root.exists():
        raise BrushworkError(f"{root}: no such file or folder; pass a dataset folder, a .zip, or --a DIR --b DIR")
    if root.is_file():
        if not zipfile.is_zipfile(root):
            with open(root, "rb") as f:
                head = f.read(4)
            if head == b"PK\x03\x04":
                raise BrushworkError(f"{root}: damaged or truncated zip archive (its directory at the end is "
                                     "missing); download it again")
            raise BrushworkError(f"{root}: not a folder and not a zip archive")
        return _sources_from_zip(root)
    found = []
    for folder, (split, domain) in SPLIT_FOLDERS.items():
        if (root / folder).is_dir():
            found += _sources_from_folder(root / folder, split, domain, prefix=folder)
    if is_plain_folder(root):
        found = _sources_from_folder(root, "train", plain_domain, prefix=f"train{plain_domain}")
        if not found:
            raise BrushworkError(f"{root}: no images and no trainA/ trainB/ (testA/ testB/) inside; pass a dataset "
                                 "folder, a folder of images, or --a DIR --b DIR")
    return found


def is_plain_folder(root: str | os.PathLike) -> bool:
    """A local folder without the original layout: its images are one domain."""
    root = Path(root)
    return root.is_dir() and not any((root / f).is_dir() for f in SPLIT_FOLDERS)


def _sources_from_folder(folder: Path, split: str, domain: str, prefix: str) -> list[Source]:
    found = []
    for p in find_images(folder, unreadable=True):
        try:
            st = p.stat()
            size, stamp = st.st_size, str(st.st_mtime_ns)
        except OSError:  # a broken or looping symlink: kept, so that it is rejected with its reason
            size, stamp = 0, "unreadable"
        found.append(Source(split, domain, f"{prefix}/{p.relative_to(folder).as_posix()}", str(p), size, stamp))
    return found


def _sources_from_zip(path: Path) -> list[Source]:
    found = []
    try:
        with zipfile.ZipFile(path) as zf:
            members = {info.filename: info for info in zf.infolist()}  # a name stored twice: the last copy,
            repeated = len(zf.infolist()) - len(members)                # as zf.read(name) gives
            if repeated:
                warnings.warn(f"{path}: {repeated} member name(s) stored more than once; the last copy of each is used")
            for info in sorted(members.values(), key=lambda i: i.filename):
                member = PurePosixPath(info.filename)
                where = _split_of(member.parts[:-1])
                if info.is_dir() or where is None or not is_image_name(member.name):
                    continue
                start = next(i for i, p in enumerate(member.parts) if p in SPLIT_FOLDERS)
                rel = PurePosixPath(*member.parts[start:]).as_posix()
                found.append(Source(*where, rel, f"{path}::{info.filename}", info.file_size, f"crc{info.CRC:08x}"))
    except zipfile.BadZipFile as e:
        raise BrushworkError(f"{path}: damaged zip archive ({e}); download it again") from None
    if not found:
        raise BrushworkError(f"{path}: no trainA/ trainB/ testA/ testB/ images inside the zip")
    return found


def sources_from_folders(a: str, b: str, test_a: str = "", test_b: str = "") -> list[Source]:
    """Two folders of the user's own images (recursive, any case of extension)."""
    found = []
    for folder, split, domain in ((a, "train", "A"), (b, "train", "B"), (test_a, "test", "A"), (test_b, "test", "B")):
        if not folder:
            continue
        path = Path(folder)
        if not path.is_dir():
            raise BrushworkError(f"{folder}: no such folder (given for {split} {domain})")
        sources = _sources_from_folder(path, split, domain, prefix=f"{split}{domain}")
        if not sources:
            raise BrushworkError(f"{folder}: no image files found (.jpg, .png, .webp, ... in any case)")
        found += sources
    return found


def read_source(source: Source) -> bytes:
    """The bytes of one input; ImageError (a rejected file, not a failed job) when they cannot be read."""
    try:
        if "::" in source.location:
            zip_path, member = source.location.split("::", 1)
            with zipfile.ZipFile(zip_path) as zf:
                return zf.read(member)
        check_regular(source.location, source.rel)
        return Path(source.location).read_bytes()
    except zipfile.BadZipFile as e:
        raise ImageError(f"{source.rel}: damaged zip member ({e})") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ImageError(f"{source.rel}: symlink loop (the link points back at itself)") from None
        if isinstance(e, FileNotFoundError):
            raise ImageError(f"{source.rel}: missing (a broken symlink, or removed while sharding)") from None
        raise ImageError(f"{source.rel}: cannot read ({e.strerror or e})") from None


# ---------------------------------------------------------------------------------------------
# Planning


def plan_shards(sources: Iterable[Source], samples_per_shard: int = 1000, max_shard_bytes: int = 0,
                settings: dict | None = None) -> list[ShardPlan]:
    """Deterministic assignment of sorted sources to shards, per split and domain.

    ``settings`` (whatever else shapes the output: conversion options) enter the fingerprint.
    """
    if samples_per_shard < 1:
        raise BrushworkError("samples_per_shard must be at least 1")
    sources = sorted(sources, key=lambda s: s.rel)
    keys = assign_keys(sources)
    fingerprint = plan_fingerprint(sources, {"samples_per_shard": samples_per_shard,
                                             "max_shard_bytes": max_shard_bytes, **(settings or {})})
    groups: dict[tuple[str, str], list[Source]] = {}
    for s in sources:
        groups.setdefault((s.split, s.domain), []).append(s)
    plans = []
    for split, domain in sorted(groups, key=lambda k: (k[0] != "train", k)):
        current: list[Source] = []
        size = 0
        index = 0

        def close():
            plans.append(ShardPlan(split, domain, index, tuple(current), tuple(keys[s.rel] for s in current),
                                   fingerprint))

        for s in groups[(split, domain)]:
            too_big = bool(max_shard_bytes and current and size + s.size > max_shard_bytes)
            full = len(current) >= samples_per_shard or too_big
            if full:
                close()
                index, current, size = index + 1, [], 0
            current.append(s)
            size += s.size
        if current:
            close()
    return plans


def plan_fingerprint(sources: list[Source], settings: dict) -> str:
    """sha256 of every input's (path, size, stamp) and the settings: equal iff the shards would be equal."""
    h = hashlib.sha256(json.dumps({"format": FORMAT_VERSION, "settings": settings}, sort_keys=True).encode())
    for s in sources:
        h.update(f"\n{s.rel}\t{s.size}\t{s.stamp}".encode())
    return h.hexdigest()


def assign_keys(sources: list[Source]) -> dict[str, str]:
    """A key per source, unique across the dataset: names that sanitise alike all get a hash suffix, longer
    where a suffixed key equals another file's own key ("a b.png", "a_b.png" and "a_b-<hash>.png")."""
    plain = {s.rel: sample_key(s.rel) for s in sources}
    counts = Counter(plain.values())
    taken = {key for key, n in counts.items() if n == 1}
    keys = {}
    for rel, key in plain.items():
        if counts[key] > 1:
            digest = hashlib.sha1(rel.encode()).hexdigest()
            candidates = itertools.chain((f"{key}-{digest[:n]}" for n in (8, 16, 40)),
                                         (f"{key}-{digest}-{i}" for i in itertools.count()))
            key = next(k for k in candidates if k not in taken)
            taken.add(key)
        keys[rel] = key
    return keys


def job_shards(plans: list[ShardPlan], job_index: int, num_jobs: int) -> list[ShardPlan]:
    """The shards job ``job_index`` of ``num_jobs`` writes: every num_jobs-th, no overlap."""
    if num_jobs < 1 or not 0 <= job_index < num_jobs:
        raise BrushworkError(f"job_index must be in 0..{num_jobs - 1} (got {job_index} of {num_jobs})")
    return plans[job_index::num_jobs]


def sample_key(rel: str) -> str:
    """A stable WebDataset key from a relative path (no dots: they split key from extension)."""
    stem = rel.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem.replace("/", "__"))


# ---------------------------------------------------------------------------------------------
# Writing one shard


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def encode_sample(source: Source, opts: ShardOptions) -> tuple[str, bytes, dict]:
    """(extension, image bytes, metadata) for one source; ImageError if it is not usable."""
    data = read_source(source)
    img, info = decode_image(data, source.rel, opts.max_pixels)
    ext = info.extension
    if opts.max_side and max(img.size) > opts.max_side:  # downscale only, never up
        scale = opts.max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
        ext = None
    reencoded = ext is None
    if reencoded:  # JPEG sources stay JPEG; everything else becomes lossless PNG
        if info.format == "JPEG":
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=opts.jpeg_quality)
            ext, data = "jpg", buf.getvalue()
        else:
            ext, data = "png", encode_png(img)
    meta = {"source": source.rel, "width": img.width, "height": img.height, "mode": info.mode,
            "format": info.format, "converted": reencoded}
    return ext, data, meta


def pack(samples: Iterable[tuple[str, list[tuple[str, bytes]]]]) -> tuple[bytes, list[str], list[int]]:
    """(tar bytes, keys, offsets) of samples given as (key, [(extension, bytes), ...]).

    ``offsets[i]`` is where sample i's first header starts and ``offsets[-1]`` where the last sample
    ends: what a reader needs to fetch any run of samples with one ranged request.
    """
    buf = io.BytesIO()
    keys, offsets = [], []
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for key, members in samples:
            keys.append(key)
            offsets.append(tar.offset)
            for ext, data in members:
                _tar_member(tar, f"{key}.{ext}", data)
        offsets.append(tar.offset)
    return buf.getvalue(), keys, offsets


def write_shard(plan: ShardPlan, out: str, opts: ShardOptions) -> dict:
    """Write one shard atomically; returns its record (also stored in .parts/)."""
    rejected, converted = [], 0

    def samples():
        nonlocal converted
        for source, key in zip(plan.sources, plan.keys):
            try:
                ext, data, meta = encode_sample(source, opts)
            except ImageError as e:
                rejected.append({"source": source.rel, "reason": str(e).split(": ", 1)[-1]})
                continue
            converted += meta["converted"]
            yield key, [(ext, data), ("json", json.dumps(meta, sort_keys=True).encode())]

    blob, keys, offsets = pack(samples())
    record = {"name": plan.name, "split": plan.split, "domain": plan.domain, "samples": len(keys),
              "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(), "converted": converted,
              "rejected": rejected, "plan": plan.fingerprint, "keys": keys, "offsets": offsets}
    write_url(f"{str(out).rstrip('/')}/{plan.part_name}", json.dumps(record, sort_keys=True).encode())
    write_url(f"{str(out).rstrip('/')}/{plan.name}", blob)  # the tar appears last: its presence means complete
    return record


def write_root_file(out: str, name: str, data: bytes) -> None:
    """Write ``out/name`` atomically, ``out`` being a path or any fsspec URL."""
    write_url(f"{str(out).rstrip('/')}/{name}", data)


def _write_shard_star(args) -> dict:
    return write_shard(*args)


def part_record(fs, root: str, plan: ShardPlan) -> dict | None:
    """The shard's record if it belongs to this plan, else None (missing, damaged or another plan's)."""
    try:
        record = json.loads(fs.cat_file(f"{root}/{plan.part_name}"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("plan") == plan.fingerprint else None


def shard_done(fs, root: str, plan: ShardPlan) -> bool:
    return fs.exists(f"{root}/{plan.name}") and part_record(fs, root, plan) is not None


def write_shards(plans: list[ShardPlan], out: str, opts: ShardOptions, workers: int = 1,
                 progress=None) -> tuple[int, int]:
    """Write every plan whose shard is missing; returns (written, skipped).

    ``progress``: a ``Progress`` (``skip`` for images of finished shards, ``update`` for written ones).
    """
    fs, root = filesystem(out)
    todo = [p for p in plans if not shard_done(fs, root, p)]
    if progress:
        progress.skip(sum(len(p.sources) for p in plans if p not in todo))
    args = [(p, out, opts) for p in todo]
    if workers > 1 and len(todo) > 1 and fs.protocol not in ("memory", ("memory",)):
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(workers, len(todo))) as pool:  # no idle interpreters
            for record in pool.imap_unordered(_write_shard_star, args):
                if progress:
                    progress.update(record["samples"] + len(record["rejected"]))
    else:
        for a in args:
            record = write_shard(*a)
            if progress:
                progress.update(record["samples"] + len(record["rejected"]))
    return len(todo), len(plans) - len(todo)


# ---------------------------------------------------------------------------------------------
# Which plan a folder holds


def plan_record(plans: list[ShardPlan], settings: dict) -> dict:
    inputs = sorted({(s.rel, s.size, s.stamp) for p in plans for s in p.sources})
    return {"format": FORMAT_VERSION, "fingerprint": plans[0].fingerprint if plans else "", "settings": settings,
            "inputs": [list(i) for i in inputs]}


def _read_json(fs, path: str) -> dict | None:
    try:
        value = json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _holds_shards(fs, root: str) -> bool:
    return any(fs.exists(f"{root}/{name}") for name in (MANIFEST, PARTS, "train", "test"))


def describe_change(old: dict | None, new: dict) -> str:
    """What differs between the plan a folder holds and this run's, in a few words."""
    if not old:
        return "it has no plan record: made by an earlier version, or its .parts/plan.json is damaged"
    changes = [f"{k} {old['settings'].get(k)!r} -> {v!r}" for k, v in new["settings"].items()
               if old.get("settings", {}).get(k) != v]
    before = {i[0]: tuple(i[1:]) for i in old.get("inputs", [])}
    after = {i[0]: tuple(i[1:]) for i in new["inputs"]}
    added, removed = len(after.keys() - before.keys()), len(before.keys() - after.keys())
    changed = sum(1 for k in after.keys() & before.keys() if after[k] != before[k])
    for n, what in ((added, "added"), (removed, "removed"), (changed, "changed")):
        if n:
            changes.append(f"{n} input image(s) {what}")
    return "; ".join(changes) or "format changed"


class OutputHeld(BrushworkError):
    """``out`` holds shards of another input or settings; ``change`` says what differs."""

    def __init__(self, message: str, change: str):
        super().__init__(message)
        self.change = change


def claim_output(out: str, record: dict, overwrite: bool = False) -> None:
    """Make ``out`` this plan's folder: record the plan, or refuse when it holds another plan's shards."""
    fs, root = filesystem(out)
    existing = _read_json(fs, f"{root}/{PLAN}")
    if existing and existing.get("fingerprint") == record["fingerprint"]:
        return
    if existing or _holds_shards(fs, root):
        if not overwrite:
            change = describe_change(existing, record)
            raise OutputHeld(f"{out} holds shards of other input or settings ({change}); rerun with --overwrite to "
                             "rebuild them, or choose another --out", change)
        clear_outputs(out)
    write_root_file(out, PLAN, (json.dumps(record, sort_keys=True) + "\n").encode())


def clear_outputs(out: str) -> None:
    """Delete what shard.py wrote into ``out``, as its own records name it, and nothing else: the shards
    the manifest and the part records list, the part records, the plan and the root files it writes
    (a user's ``train/annotations.json`` beside them stays)."""
    fs, root = filesystem(out)
    ours = {f"{root}/{name}" for name in (MANIFEST, REJECTED, "shard_config.toml", PLAN)}
    manifest = _read_json(fs, f"{root}/{MANIFEST}") or {}
    for entry in manifest.get("shards", []) if isinstance(manifest.get("shards"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            ours.add(f"{root}/{entry['name']}")
    if fs.exists(f"{root}/{PARTS}"):
        for path in fs.find(f"{root}/{PARTS}"):
            record = _read_json(fs, path) if path.endswith(".json") else None
            if record is not None and ("plan" in record or path.endswith("plan.json")):
                ours.add(path)
                if isinstance(record.get("name"), str):
                    ours.add(f"{root}/{record['name']}")
    for folder in ("train", "test"):  # temp files of an interrupted write: ".{shard}.tar.tmp"
        if fs.exists(f"{root}/{folder}"):
            ours.update(p for p in fs.find(f"{root}/{folder}") if re.search(r"/\.[AB]-\d{6}\.tar\.tmp$", p))
    for path in sorted(ours):
        if fs.exists(path) and safe_inside(root, path):
            fs.rm(path)


def safe_inside(root: str, path: str) -> bool:
    """A recorded name stays inside the folder (a damaged record must not name ../elsewhere)."""
    return ".." not in PurePosixPath(path[len(root):]).parts and path.startswith(root + "/")


# ---------------------------------------------------------------------------------------------
# Manifest


def tar_keys(data: bytes, url: str = "<bytes>") -> list[str]:
    """The sample keys of a tar, in order, as the shard reader groups them."""
    from brushwork.data.shard_reader import parse

    return [key for key, _ in parse(data, url)]


def write_manifest(plans: list[ShardPlan], out: str, source: dict) -> dict:
    """Check every planned shard against its record, then write manifest.json and rejected.jsonl."""
    fs, root = filesystem(out)
    missing = [p.name for p in plans if not shard_done(fs, root, p)]
    if missing:
        raise BrushworkError(f"{len(missing)} shard(s) not written yet (first: {out}/{missing[0]}); "
                             "run the remaining jobs, or rerun without --job_index to write them")
    shards, rejected, converted = [], [], 0
    for plan in plans:
        record = part_record(fs, root, plan)
        blob = fs.cat_file(f"{root}/{plan.name}")
        if (hashlib.sha256(blob).hexdigest() != record["sha256"] or "offsets" not in record
                or tar_keys(blob, plan.name) != record["keys"]):
            raise BrushworkError(f"{out}/{plan.name}: contents do not match its record (damaged or "
                                 "from another run); delete it and rerun to rewrite it")
        rejected += [{**r, "split": plan.split, "domain": plan.domain} for r in record["rejected"]]
        converted += record["converted"]
        shards.append({k: record[k] for k in ("name", "split", "domain", "samples", "bytes", "sha256", "keys",
                                              "offsets")})
    splits: dict = {}
    for s in shards:
        entry = splits.setdefault(s["split"], {}).setdefault(s["domain"], {"samples": 0, "shards": 0})
        entry["samples"] += s["samples"]
        entry["shards"] += 1
    manifest = {"format": FORMAT_VERSION, "dataset": Path(root).name, "source": source, "splits": splits,
                "converted": converted, "rejected": len(rejected), "shards": shards,
                "fingerprint": plans[0].fingerprint if plans else ""}
    rejected.sort(key=lambda r: r["source"])
    write_root_file(out, REJECTED, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejected).encode())
    empty = sorted({(p.split, p.domain) for p in plans} - {(s["split"], s["domain"]) for s in shards if s["samples"]},
                   key=lambda sd: (sd[0] != "train", sd))
    if any(split == "train" for split, _ in empty):
        which = ", ".join(f"{split}{domain}" for split, domain in empty)
        raise BrushworkError(f"every image of {which} was rejected ({len(rejected)} listed in {out}/{REJECTED}); "
                             "nothing to train on: fix the images or the limits (--max_pixels) and rerun")
    write_root_file(out, MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return manifest


def read_manifest(out: str, current: bool = True) -> dict:
    """The manifest of a shard folder, checked field by field (``records.Manifest``); one line if it is
    missing, unreadable, damaged or (``current``) of an older format."""
    from brushwork.core import records

    fs, root = filesystem(out)
    path = f"{root}/{MANIFEST}"
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        raise BrushworkError(f"{out}: no {MANIFEST}; run data_prep/shard.py to make the shards first") from None
    except Exception as e:  # object storage that cannot serve at all: one line, not the client's traceback
        mapped = storage_error(out, e)
        if mapped is None:
            raise
        raise mapped from None
    manifest = records.parse_json(data, records.Manifest, f"{out}/{MANIFEST}",
                                  "rerun data_prep/shard.py --overwrite (it rewrites the shards)")
    if current and manifest.get("format") != FORMAT_VERSION:
        if manifest.get("format") == 2:
            raise BrushworkError(f"{out}: shards of an earlier version (format 2) list no sample offsets; add them "
                                 f"with: python data_prep/shard.py --reindex --out {out} (keeps the tars)")
        raise BrushworkError(f"{out}/{MANIFEST}: format {manifest.get('format')!r}, this version reads "
                             f"{FORMAT_VERSION}; rerun data_prep/shard.py --overwrite")
    return manifest


def shard_refs(out: str, manifest: dict, split: str, domain: str) -> list:
    """One split/domain's shards as ``ShardRef``s (URL, keys, offsets, size), each checked against the
    folder: present, and of the size the manifest records (one listing per folder, not a request per shard)."""
    from brushwork.data.shard_reader import ShardRef

    fs, root = filesystem(out)
    entries = [e for e in manifest["shards"] if (e["split"], e["domain"]) == (split, domain)]
    if not entries:
        raise BrushworkError(f"{out}: no {split} {domain} shards in the manifest")
    sizes = {}
    for folder in sorted({e["name"].rpartition("/")[0] for e in entries}):
        try:
            listing = fs.ls(f"{root}/{folder}".rstrip("/"), detail=True)
        except FileNotFoundError:
            listing = []
        for item in listing:
            base = str(item["name"]).rstrip("/").rpartition("/")[2]
            sizes[f"{folder}/{base}" if folder else base] = item.get("size")
    refs = []
    for entry in entries:
        name = entry["name"]
        if entry.get("keys") is None:
            raise BrushworkError(f"{out}/{MANIFEST}: the entry of {name} lists no sample offsets; add them with: "
                                 f"python data_prep/shard.py --reindex --out {out}")
        if name not in sizes:
            raise BrushworkError(f"{out}/{name}: shard listed in the manifest is missing; "
                                 "rerun data_prep/shard.py to rewrite it")
        if sizes[name] is not None and sizes[name] != entry["bytes"]:
            raise BrushworkError(f"{out}/{name}: {sizes[name]} bytes but the manifest lists {entry['bytes']} "
                                 "(replaced or truncated after sharding); delete it and rerun data_prep/shard.py, "
                                 "which rewrites it")
        refs.append(ShardRef(f"{str(out).rstrip('/')}/{name}", tuple(entry["keys"]), tuple(entry["offsets"]),
                             entry["bytes"]))
    return refs


def reindex(out: str) -> int:
    """Add sample keys and offsets to a format-2 folder, keeping its tars byte for byte; returns shards done.

    Each tar is read once and packed again by the writer, which must give the same bytes (the
    writer is deterministic); the offsets come from that packing. Plan, parts and manifest move to
    this format, so a rerun of shard.py on the same input finds its shards complete.
    """
    from brushwork.data.shard_reader import parse

    fs, root = filesystem(out)
    manifest = read_manifest(out, current=False)
    if manifest.get("format") == FORMAT_VERSION:
        return 0
    plan = _read_json(fs, f"{root}/{PLAN}")
    if manifest.get("format") != 2 or not plan or not isinstance(plan.get("inputs"), list):
        raise BrushworkError(f"{out}: not a format-2 shard folder with its plan record; reshard it with "
                             "data_prep/shard.py --overwrite")
    fingerprint = plan_fingerprint([Source("", "", rel, "", size, stamp) for rel, size, stamp in plan["inputs"]],
                                   plan["settings"])
    for entry in manifest["shards"]:
        url = f"{str(out).rstrip('/')}/{entry['name']}"
        blob = fs.cat_file(f"{root}/{entry['name']}")
        if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
            raise BrushworkError(f"{url}: contents differ from the manifest's sha256; reshard with --overwrite")
        packed, keys, offsets = pack((key, list(sample.items())) for key, sample in parse(blob, url))
        if packed != blob:
            raise BrushworkError(f"{url}: not written by data_prep/shard.py (packing it again gives other bytes); "
                                 "reshard with --overwrite")
        entry.update(keys=keys, offsets=offsets)
        part = f"{PARTS}/{entry['split']}-{entry['name'].split('/')[-1].removesuffix('.tar')}.json"
        record = _read_json(fs, f"{root}/{part}")
        if record is not None:
            record.update(keys=keys, offsets=offsets, plan=fingerprint)
            write_root_file(out, part, json.dumps(record, sort_keys=True).encode())
    manifest.update(format=FORMAT_VERSION, fingerprint=fingerprint)
    write_root_file(out, PLAN, (json.dumps({**plan, "format": FORMAT_VERSION, "fingerprint": fingerprint},
                                           sort_keys=True) + "\n").encode())
    write_root_file(out, MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return len(manifest["shards"])


def source_record(description: str, path: str | None = None) -> dict:
    """Where the shards came from: a folder, or a zip with its checksum."""
    record = {"input": description}
    if path and Path(path).is_file():
        record["sha256"] = file_sha256(path)
    elif path:  # a folder that data_prep/download.py extracted: carry its URL and zip checksum
        sidecar = Path(path).parent / f"{Path(path).name}.source.json"
        if sidecar.is_file():
            from brushwork.core import records

            record.update(records.read_json(sidecar, records.SourceSidecar,
                                            "remove it (it only records where the download came from)"))
    return record
