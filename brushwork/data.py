"""Streams of training batches from WebDataset shards: two unpaired domains, any number of ranks.

Stage order (as open_clip): seeded per-pass shard shuffle → split by node (rank) → split by
DataLoader worker → tar samples → seeded buffer shuffle → decode → augment → batch.

Each domain is an endless sequence of *passes*; in one pass every image of the domain is seen
exactly once across all ranks and workers. The smaller domain simply starts its next pass sooner,
as the original code draws B at random for each A. Training epochs are counted in steps,
``max(|A|, |B|) // global_batch``, so every rank runs the same number of steps.

Everything is a pure function of (seed, pass, rank, worker, sample key), which makes the position
in the stream a single number: the count of batches consumed. Resuming skips whole passes by the
manifest's sample counts and reads (without decoding) at most one pass to reach the exact sample.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from dataclasses import dataclass
from typing import Iterator

import fsspec
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .errors import BrushworkError
from .images import to_tensor
from .shards import read_manifest, shard_urls

DOMAIN_IDS = {"A": 0, "B": 1}


@dataclass(frozen=True)
class DomainShards:
    """The shards of one split/domain and their sample counts (from the manifest)."""

    domain: str
    urls: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def samples(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class Augment:
    """The original augmentation: resize to load_size → random crop → random flip (train)."""

    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    train: bool = True


def domain_shards(root: str, split: str, domain: str, manifest: dict | None = None) -> DomainShards:
    manifest = manifest or read_manifest(root)
    urls = shard_urls(root, manifest, split, domain)
    counts = [s["samples"] for s in manifest["shards"] if s["split"] == split and s["domain"] == domain]
    return DomainShards(domain, tuple(urls), tuple(counts))


# ---------------------------------------------------------------------------------------------
# The stream of raw samples


def pass_shard_indices(n_shards: int, seed: int, pass_index: int, rank: int, world: int,
                       worker: int, num_workers: int) -> list[int]:
    """Shards of one pass for one (rank, worker): seeded shuffle, then split by node, then worker."""
    order = np.random.default_rng([seed, pass_index]).permutation(n_shards)
    return [int(i) for i in order[rank::world][worker::num_workers]]


def tar_samples(url: str) -> Iterator[tuple[str, str, bytes]]:
    """(key, image extension, image bytes) for each sample of a shard, in tar order."""
    try:
        with fsspec.open(url, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for member in tar:
                key, _, ext = member.name.partition(".")
                if ext in ("jpg", "jpeg", "png", "webp"):
                    yield key, ext, tar.extractfile(member).read()
    except FileNotFoundError:
        raise BrushworkError(f"{url}: shard missing; rerun data_prep/shard.py to rewrite it") from None
    except tarfile.TarError as e:
        raise BrushworkError(f"{url}: damaged shard ({e}); delete it and rerun data_prep/shard.py") from None


def buffer_shuffle(items: Iterator, size: int, rng: np.random.Generator) -> Iterator:
    """WebDataset-style shuffle: a buffer of ``size``, random pick and refill; flushes at the end."""
    buf: list = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        i = int(rng.integers(len(buf)))
        buf[i], item = item, buf[i]
        yield item
    rng.shuffle(buf)
    yield from buf


def domain_stream(shards: DomainShards, *, seed: int, rank: int, world: int, worker: int,
                  num_workers: int, buffer: int, skip: int = 0) -> Iterator[tuple[int, str, bytes]]:
    """Endless (pass, key, bytes) for one (rank, worker); the first ``skip`` samples are passed over."""
    pass_index = 0
    domain_id = DOMAIN_IDS.get(shards.domain, 2)
    while True:
        indices = pass_shard_indices(len(shards.urls), seed, pass_index, rank, world, worker, num_workers)
        in_pass = sum(shards.counts[i] for i in indices)
        if in_pass == 0:
            raise BrushworkError(f"domain {shards.domain}: rank {rank} worker {worker} got no samples; "
                                 "reshard with a smaller --samples_per_shard or use fewer workers")
        if skip >= in_pass:  # a whole pass already consumed: skip it without reading
            skip -= in_pass
            pass_index += 1
            continue
        rng = np.random.default_rng([seed, pass_index, rank, worker, domain_id])
        raw = ((key, data) for i in indices for key, _, data in tar_samples(shards.urls[i]))
        for key, data in buffer_shuffle(raw, buffer, rng):
            if skip:
                skip -= 1
                continue
            yield pass_index, key, data
        pass_index += 1


# ---------------------------------------------------------------------------------------------
# Decode and augment


def sample_rng(seed: int, pass_index: int, key: str, domain: str) -> np.random.Generator:
    """Augmentation randomness of one sample, independent of where it sits in the stream."""
    return np.random.default_rng([seed, pass_index, zlib.crc32(key.encode()), DOMAIN_IDS.get(domain, 2), 7])


def decode(data: bytes, draft_size: int = 0) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    if draft_size and img.format == "JPEG":
        img.draft("RGB", (draft_size, draft_size))  # DCT-domain downscale: much cheaper decode of big photos
    return img.convert("RGB")


def augment(img: Image.Image, aug: Augment, rng: np.random.Generator | None) -> torch.Tensor:
    """Resize (bicubic) → random crop → random flip → tensor in [-1, 1], as the original code."""
    if not aug.train:
        img = img.resize((aug.crop_size, aug.crop_size), Image.Resampling.BICUBIC)
    else:
        if (img.width, img.height) != (aug.load_size, aug.load_size):
            img = img.resize((aug.load_size, aug.load_size), Image.Resampling.BICUBIC)
        x, y = rng.integers(0, aug.load_size - aug.crop_size + 1, size=2)
        img = img.crop((int(x), int(y), int(x) + aug.crop_size, int(y) + aug.crop_size))
        if aug.flip and rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return to_tensor(img)


# ---------------------------------------------------------------------------------------------
# Unpaired batches for DDP


def batches_before(start_batch: int, worker: int, num_workers: int) -> int:
    """How many of the first ``start_batch`` batches came from ``worker`` (DataLoader is round-robin)."""
    return max(0, (start_batch - worker + num_workers - 1) // num_workers)


class UnpairedBatches(IterableDataset):
    """Endless batches {"A", "B", "A_keys", "B_keys"} for one rank, resumable at any batch."""

    def __init__(self, a: DomainShards, b: DomainShards, *, batch_size: int, rank: int, world: int,
                 num_workers: int, seed: int, aug: Augment, buffer: int = 256, start_batch: int = 0):
        super().__init__()
        slots = world * max(1, num_workers)
        for shards in (a, b):
            if len(shards.urls) < slots:
                raise BrushworkError(
                    f"domain {shards.domain} has {len(shards.urls)} shard(s) but {world} rank(s) x "
                    f"{max(1, num_workers)} worker(s) need at least {slots}; reshard with a smaller "
                    "--samples_per_shard or lower --num_workers")
        self.a, self.b = a, b
        self.batch_size, self.rank, self.world = batch_size, rank, world
        self.num_workers, self.seed, self.aug, self.buffer = num_workers, seed, aug, buffer
        self.start_batch = start_batch

    def __iter__(self):
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        if num_workers != max(1, self.num_workers):
            raise BrushworkError(f"loader built for {self.num_workers} workers runs with {num_workers}")
        # a new DataLoader asks worker 0 first; the role that produced batch start_batch goes first
        worker = (worker + self.start_batch) % num_workers
        done = batches_before(self.start_batch, worker, num_workers) * self.batch_size
        streams = {}
        for shards in (self.a, self.b):
            streams[shards.domain] = domain_stream(
                shards, seed=self.seed, rank=self.rank, world=self.world, worker=worker,
                num_workers=num_workers, buffer=self.buffer, skip=done)
        draft = self.aug.load_size if self.aug.train else self.aug.crop_size
        while True:
            batch = {}
            for name, stream in (("A", streams[self.a.domain]), ("B", streams[self.b.domain])):
                images, keys = [], []
                for _ in range(self.batch_size):
                    pass_index, key, data = next(stream)
                    rng = sample_rng(self.seed, pass_index, key, name)
                    images.append(augment(decode(data, draft), self.aug, rng))
                    keys.append(key)
                batch[name], batch[f"{name}_keys"] = torch.stack(images), keys
            yield batch


def _worker_init(_):
    torch.set_num_threads(1)  # decode workers must not fight the training step for cores


def steps_per_epoch(a: DomainShards, b: DomainShards, batch_size: int, world: int) -> int:
    """The original epoch: max(|A|, |B|) images, in global batches."""
    return max(1, max(a.samples, b.samples) // (batch_size * world))


def train_loader(root: str, *, batch_size: int, rank: int, world: int, num_workers: int, seed: int,
                 aug: Augment, buffer: int = 256, start_batch: int = 0, pin_memory: bool = False,
                 split: str = "train") -> tuple[DataLoader, int]:
    """(endless DataLoader of unpaired batches, steps per epoch) for one rank."""
    manifest = read_manifest(root)
    a = domain_shards(root, split, "A", manifest)
    b = domain_shards(root, split, "B", manifest)
    dataset = UnpairedBatches(a, b, batch_size=batch_size, rank=rank, world=world, num_workers=num_workers,
                              seed=seed, aug=aug, buffer=buffer, start_batch=start_batch)
    extra = {"prefetch_factor": 4, "worker_init_fn": _worker_init} if num_workers > 0 else {}
    loader = DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, **extra)
    return loader, steps_per_epoch(a, b, batch_size, world)


def iter_split(root: str, split: str, domain: str) -> Iterator[tuple[str, Image.Image]]:
    """Every (key, RGB image) of one split/domain in manifest order, at full resolution."""
    shards = domain_shards(root, split, domain)
    for url in shards.urls:
        for key, _, data in tar_samples(url):
            yield key, decode(data)
