"""Validate images and write them into WebDataset shards, atomically, resumably, deterministically.

Layout (``out`` is ``{root}/{dataset}``, a local path or any fsspec URL)::

    out/{split}/{A|B}-{NNNNNN}.tar    samples: {key}.jpg|png + {key}.json
    out/.parts/{split}-{A|B}-{NNNNNN}.json   per-shard record, written before the tar is renamed
    out/manifest.json                 every shard with samples, bytes, sha256; the source
    out/rejected.jsonl                files the validator refused, with the reason

Which source file lands in which shard depends only on the sorted input and the shard limits, so a
SLURM array (``job_index``/``num_jobs``) splits the shards with no overlap, a rerun after a kill
redoes only shards whose tar is missing, and two runs produce byte-identical tars (fixed tar
metadata, original bytes kept unless a conversion was needed).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import fsspec
from PIL import Image

from .errors import BrushworkError, ImageError
from .images import DEFAULT_MAX_PIXELS, decode_image, encode_png, find_images, is_image_name

SPLIT_FOLDERS = {"trainA": ("train", "A"), "trainB": ("train", "B"), "testA": ("test", "A"), "testB": ("test", "B")}
MANIFEST = "manifest.json"
REJECTED = "rejected.jsonl"
PARTS = ".parts"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Source:
    """One input image: where it is read from and where it goes."""

    split: str      # train | test
    domain: str     # A | B
    rel: str        # path relative to the input root (names the sample)
    location: str   # file path, or "zip_path::member"
    size: int       # bytes in the source (used for max_shard_bytes planning)


@dataclass(frozen=True)
class ShardPlan:
    split: str
    domain: str
    index: int
    sources: tuple[Source, ...]

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


def sources_from_layout(root: str | os.PathLike) -> list[Source]:
    """A folder or zip in the original layout (trainA trainB testA testB, any depth)."""
    root = Path(root)
    if not root.exists():
        raise BrushworkError(f"{root}: no such file or folder; pass a dataset folder, a .zip, or --a DIR --b DIR")
    if root.is_file():
        if not zipfile.is_zipfile(root):
            raise BrushworkError(f"{root}: not a folder and not a zip archive")
        return _sources_from_zip(root)
    found = []
    for folder, (split, domain) in SPLIT_FOLDERS.items():
        if (root / folder).is_dir():
            found += _sources_from_folder(root / folder, split, domain, prefix=folder)
    if not any((root / f).is_dir() for f in SPLIT_FOLDERS):
        raise BrushworkError(f"{root}: expected trainA/ trainB/ (testA/ testB/) inside; "
                             "for two folders of your own use --a DIR --b DIR")
    return found


def _sources_from_folder(folder: Path, split: str, domain: str, prefix: str) -> list[Source]:
    return [Source(split, domain, f"{prefix}/{p.relative_to(folder).as_posix()}", str(p), p.stat().st_size)
            for p in find_images(folder)]


def _sources_from_zip(path: Path) -> list[Source]:
    found = []
    try:
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                member = PurePosixPath(info.filename)
                where = _split_of(member.parts[:-1])
                if info.is_dir() or where is None or not is_image_name(member.name):
                    continue
                start = next(i for i, p in enumerate(member.parts) if p in SPLIT_FOLDERS)
                rel = PurePosixPath(*member.parts[start:]).as_posix()
                found.append(Source(*where, rel, f"{path}::{info.filename}", info.file_size))
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
    if "::" in source.location:
        zip_path, member = source.location.split("::", 1)
        with zipfile.ZipFile(zip_path) as zf:
            return zf.read(member)
    return Path(source.location).read_bytes()


# ---------------------------------------------------------------------------------------------
# Planning


def plan_shards(sources: Iterable[Source], samples_per_shard: int = 1000,
                max_shard_bytes: int = 0) -> list[ShardPlan]:
    """Deterministic assignment of sorted sources to shards, per split and domain."""
    if samples_per_shard < 1:
        raise BrushworkError("samples_per_shard must be at least 1")
    groups: dict[tuple[str, str], list[Source]] = {}
    for s in sources:
        groups.setdefault((s.split, s.domain), []).append(s)
    plans = []
    for split, domain in sorted(groups, key=lambda k: (k[0] != "train", k)):
        current: list[Source] = []
        size = 0
        index = 0
        for s in sorted(groups[(split, domain)], key=lambda s: s.rel):
            full = len(current) >= samples_per_shard or (max_shard_bytes and current and size + s.size > max_shard_bytes)
            if full:
                plans.append(ShardPlan(split, domain, index, tuple(current)))
                index, current, size = index + 1, [], 0
            current.append(s)
            size += s.size
        if current:
            plans.append(ShardPlan(split, domain, index, tuple(current)))
    return plans


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


def write_shard(plan: ShardPlan, out: str, opts: ShardOptions) -> dict:
    """Write one shard atomically; returns its record (also stored in .parts/)."""
    fs, root = fsspec.core.url_to_fs(out)
    final = f"{root}/{plan.name}"
    buf = io.BytesIO()
    rejected, keys, converted = [], set(), 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for source in plan.sources:
            try:
                ext, data, meta = encode_sample(source, opts)
            except ImageError as e:
                rejected.append({"source": source.rel, "reason": str(e).split(": ", 1)[-1]})
                continue
            key = sample_key(source.rel)
            if key in keys:  # two names that sanitise alike: keep both, disambiguated
                key = f"{key}-{hashlib.sha1(source.rel.encode()).hexdigest()[:8]}"
            keys.add(key)
            converted += meta["converted"]
            _tar_member(tar, f"{key}.{ext}", data)
            _tar_member(tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode())
    blob = buf.getvalue()
    record = {"name": plan.name, "split": plan.split, "domain": plan.domain, "samples": len(keys),
              "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(), "converted": converted,
              "rejected": rejected}
    fs.makedirs(f"{root}/{plan.split}", exist_ok=True)
    fs.makedirs(f"{root}/{PARTS}", exist_ok=True)
    _write_file(fs, final + ".tmp", blob)
    write_atomic(fs, f"{root}/{plan.part_name}", json.dumps(record, sort_keys=True).encode())
    fs.mv(final + ".tmp", final)  # the tar appears last: its presence means the shard is complete
    return record


def _write_file(fs, path: str, data: bytes) -> None:
    with fs.open(path, "wb") as f:
        f.write(data)


def write_atomic(fs, path: str, data: bytes) -> None:
    """Write through ``path.tmp`` and rename, on any fsspec filesystem."""
    _write_file(fs, path + ".tmp", data)
    fs.mv(path + ".tmp", path)


def write_root_file(out: str, name: str, data: bytes) -> None:
    """Write ``out/name`` atomically, ``out`` being a path or any fsspec URL."""
    fs, root = fsspec.core.url_to_fs(out)
    write_atomic(fs, f"{root}/{name}", data)


def _write_shard_star(args) -> dict:
    return write_shard(*args)


def shard_done(fs, root: str, plan: ShardPlan) -> bool:
    return fs.exists(f"{root}/{plan.name}") and fs.exists(f"{root}/{plan.part_name}")


def write_shards(plans: list[ShardPlan], out: str, opts: ShardOptions, workers: int = 1,
                 progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Write every plan whose shard is missing; returns (written, skipped)."""
    fs, root = fsspec.core.url_to_fs(out)
    todo = [p for p in plans if not shard_done(fs, root, p)]
    for p in plans:
        if p not in todo and progress:
            progress(len(p.sources))
    args = [(p, out, opts) for p in todo]
    if workers > 1 and len(todo) > 1 and fs.protocol not in ("memory", ("memory",)):
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for record in pool.imap_unordered(_write_shard_star, args):
                if progress:
                    progress(record["samples"] + len(record["rejected"]))
    else:
        for a in args:
            record = write_shard(*a)
            if progress:
                progress(record["samples"] + len(record["rejected"]))
    return len(todo), len(plans) - len(todo)


# ---------------------------------------------------------------------------------------------
# Manifest


def count_tar_samples(data: bytes) -> int:
    keys = set()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for member in tar.getmembers():
            keys.add(member.name.split(".", 1)[0])
    return len(keys)


def write_manifest(plans: list[ShardPlan], out: str, source: dict) -> dict:
    """Check every planned shard against its record, then write manifest.json and rejected.jsonl."""
    fs, root = fsspec.core.url_to_fs(out)
    missing = [p.name for p in plans if not shard_done(fs, root, p)]
    if missing:
        raise BrushworkError(f"{len(missing)} shard(s) not written yet (first: {out}/{missing[0]}); "
                             "run the remaining jobs, or rerun without --job_index to write them")
    shards, rejected, converted = [], [], 0
    for plan in plans:
        record = json.loads(fs.cat_file(f"{root}/{plan.part_name}"))
        blob = fs.cat_file(f"{root}/{plan.name}")
        if hashlib.sha256(blob).hexdigest() != record["sha256"] or count_tar_samples(blob) != record["samples"]:
            raise BrushworkError(f"{out}/{plan.name}: contents do not match its record (damaged or "
                                 "from another run); delete it and rerun to rewrite it")
        rejected += [{**r, "split": plan.split, "domain": plan.domain} for r in record["rejected"]]
        converted += record["converted"]
        shards.append({k: record[k] for k in ("name", "split", "domain", "samples", "bytes", "sha256")})
    splits: dict = {}
    for s in shards:
        entry = splits.setdefault(s["split"], {}).setdefault(s["domain"], {"samples": 0, "shards": 0})
        entry["samples"] += s["samples"]
        entry["shards"] += 1
    manifest = {"format": FORMAT_VERSION, "dataset": Path(root).name, "source": source,
                "splits": splits, "converted": converted, "rejected": len(rejected), "shards": shards}
    rejected.sort(key=lambda r: r["source"])
    write_root_file(out, REJECTED, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejected).encode())
    write_root_file(out, MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return manifest


def read_manifest(out: str) -> dict:
    """The manifest of a shard folder; a clear error if it is missing or unreadable."""
    fs, root = fsspec.core.url_to_fs(out)
    path = f"{root}/{MANIFEST}"
    try:
        manifest = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        raise BrushworkError(f"{out}: no {MANIFEST}; run data_prep/shard.py to make the shards first") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BrushworkError(f"{out}/{MANIFEST}: not valid JSON; rerun data_prep/shard.py") from None
    return manifest


def shard_urls(out: str, manifest: dict, split: str, domain: str) -> list[str]:
    """Full paths/URLs of one split/domain's shards, each checked to exist."""
    fs, root = fsspec.core.url_to_fs(out)
    names = [s["name"] for s in manifest["shards"] if s["split"] == split and s["domain"] == domain]
    if not names:
        raise BrushworkError(f"{out}: no {split} {domain} shards in the manifest")
    for name in names:
        if not fs.exists(f"{root}/{name}"):
            raise BrushworkError(f"{out}/{name}: shard listed in the manifest is missing; "
                                 "rerun data_prep/shard.py to rewrite it")
    return [f"{str(out).rstrip('/')}/{name}" for name in names]


def source_record(description: str, path: str | None = None) -> dict:
    """Where the shards came from: a folder, or a zip with its checksum."""
    record = {"input": description}
    if path and Path(path).is_file():
        record["sha256"] = file_sha256(path)
    elif path:  # a folder that data_prep/download.py extracted: carry its URL and zip checksum
        sidecar = Path(path).parent / f"{Path(path).name}.source.json"
        if sidecar.is_file():
            record.update(json.loads(sidecar.read_text()))
    return record


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()

