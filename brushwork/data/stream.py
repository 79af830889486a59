"""Streams of training batches from WebDataset shards, for any number of ranks and workers.

Each domain (A, B) is an endless sequence of *passes*. The job's draws are counted globally, step
by step and rank by rank (each rank takes a batch per step from its DataLoader workers in turn);
pass p is the window of global draws ``[p·N, (p+1)·N)``, and in it every image of the domain is
drawn exactly once, across all ranks and workers ("slots"), for any N, world size, worker count
and batch size. A pass is laid out as:

1. the domain's shards in a seeded order (a new order every pass), their samples concatenated;
2. that sequence rotated by a seeded offset, then cut into one contiguous chunk per slot, as long
   as the number of draws that slot makes in the pass's window (arithmetic: ``Layout``), laid out
   in a seeded order of slots;
3. each slot reads its chunk (at most a few shards; per shard one ranged request for exactly
   those samples' bytes, from the offsets the manifest lists) through a seeded shuffle buffer,
   then decodes and augments.

So any dataset feeds any world size (64 ranks × 4 workers on 400 paintings: 1–2 images per slot
per pass), every pass starts at the same moment on every slot (passes never drift apart, so no
image is drawn twice before every image was drawn once), and reads stay sequential and
shard-local, which is what object storage wants. Everything is a pure function of (seed, pass,
slot, key), so the position in the stream is one number, the count of batches consumed: resuming
skips whole passes by arithmetic and, within a pass, skips the samples already used without
reading their bytes.

Every read is checked against the manifest (the shard's byte length, each sample's key in order);
a shard that was truncated or replaced after sharding is one error naming it.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from brushwork.core.errors import BrushworkError, ImageError
from brushwork.data.images import to_tensor
from brushwork.data.shard_reader import ShardRef, read_samples
from brushwork.data.shards import read_manifest, shard_refs

DOMAIN_IDS = {"A": 0, "B": 1, "content": 2, "style": 3}  # a stream's key seeds its order


@dataclass(frozen=True)
class DomainShards:
    """The shards of one split/domain: URLs, sample keys and byte offsets (from the manifest)."""

    domain: str
    shards: tuple[ShardRef, ...]

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(s.url for s in self.shards)

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(s.samples for s in self.shards)

    @property
    def samples(self) -> int:
        return sum(self.counts)


def domain_shards(root: str, split: str, domain: str, manifest: dict | None = None) -> DomainShards:
    manifest = manifest or read_manifest(root)
    return DomainShards(domain, tuple(shard_refs(root, manifest, split, domain)))


# ---------------------------------------------------------------------------------------------
# Which samples a slot reads in a pass


@dataclass(frozen=True)
class Layout:
    """How a job draws from a domain: ``world`` ranks, each taking a batch of ``batch_size`` per step
    from its ``workers`` DataLoader workers in turn (a DataLoader asks its workers round-robin).

    Slot ``rank·workers + w`` is rank ``rank``'s worker ``w``. Global draw ``g`` (counting every
    rank's batches step by step) comes from one known slot, so how many draws a slot makes in any
    window of draws is arithmetic.
    """

    world: int = 1
    workers: int = 1
    batch_size: int = 1

    @property
    def slots(self) -> int:
        return self.world * self.workers

    def draws_before(self, g: int, slot: int) -> int:
        """How many of the first ``g`` global draws come from ``slot``."""
        rank, role = divmod(slot, self.workers)
        step_draws = self.world * self.batch_size
        steps, rest = divmod(g, step_draws)
        done = batches_before(steps, role, self.workers) * self.batch_size
        if steps % self.workers == role:
            done += min(max(rest - rank * self.batch_size, 0), self.batch_size)
        return done

    def pass_lengths(self, total: int, pass_index: int) -> list[int]:
        """Each slot's number of draws in pass ``pass_index`` (global draws ``[p·N, (p+1)·N)``): they sum to N."""
        lo, hi = pass_index * total, (pass_index + 1) * total
        return [self.draws_before(hi, s) - self.draws_before(lo, s) for s in range(self.slots)]


def pass_segments(counts: tuple[int, ...], seed: int, pass_index: int, slot: int,
                  layout: Layout) -> list[tuple[int, int, int]]:
    """The samples of one pass for one slot, as ``(shard, start, stop)`` index ranges in reading order.

    Pass p is the window of global draws ``[p·N, (p+1)·N)``, so each slot's chunk is exactly as
    long as the number of draws it makes in that window: every N consecutive draws of the job (a
    pass, which starts the same moment on every slot) see each image exactly once, for any N,
    ranks, workers and batch size. The pass's sequence (shards in a seeded order, rotated by a
    seeded offset) is cut into those contiguous chunks, laid out in a seeded order of slots.
    """
    total = sum(counts)
    rng = np.random.default_rng([seed, pass_index])
    order = rng.permutation(len(counts))
    offset = int(rng.integers(total)) if total else 0
    lengths = layout.pass_lengths(total, pass_index)
    placed = np.random.default_rng([seed, pass_index, 1]).permutation(layout.slots)
    lo = 0
    for other in placed:
        if other == slot:
            break
        lo += lengths[other]
    hi = lo + lengths[slot]
    # the rotated range [offset+lo, offset+hi) mod total, as at most two plain ranges
    spans = [(offset + lo, min(offset + hi, total))] if offset + lo < total else []
    if offset + hi > total:
        spans.append((max(offset + lo - total, 0), offset + hi - total))
    segments = []
    for begin, end in spans:
        position = 0
        for shard in order:
            count = counts[shard]
            a, b = max(begin, position), min(end, position + count)
            if a < b:
                segments.append((int(shard), a - position, b - position))
            position += count
    return segments


def shuffled_order(n: int, size: int, rng: np.random.Generator) -> list[int]:
    """The order in which a WebDataset-style shuffle buffer of ``size`` emits ``n`` items (by index).

    The permutation depends only on ``n`` and the RNG, not on the items, so it can be computed
    before reading anything (resume skips items without reading them).
    """
    out, buf = [], []
    for item in range(n):
        if len(buf) < size:
            buf.append(item)
            continue
        i = int(rng.integers(len(buf)))
        buf[i], item = item, buf[i]
        out.append(item)
    rng.shuffle(buf)
    return out + buf


def pass_plan(counts: tuple[int, ...], seed: int, pass_index: int, slot: int, layout: Layout, buffer: int,
              domain_id: int) -> tuple[list[tuple[int, int, int]], list[int]]:
    """(segments to read, emission order): the emission order lists positions in reading order."""
    segments = pass_segments(counts, seed, pass_index, slot, layout)
    size = sum(stop - start for _, start, stop in segments)
    return segments, shuffled_order(size, buffer, np.random.default_rng([seed, pass_index, slot, domain_id]))


def stream_ids(counts: tuple[int, ...], *, seed: int, slot: int, layout: Layout, buffer: int, domain_id: int,
               skip: int = 0) -> Iterator[tuple[int, int, int]]:
    """The samples one slot yields, as (pass, shard, index in shard), endlessly: what ``domain_stream`` reads."""
    pass_index = 0
    while True:
        segments, order = pass_plan(counts, seed, pass_index, slot, layout, buffer, domain_id)
        if skip >= len(order):  # a whole pass already consumed: skipped by arithmetic
            skip -= len(order)
        else:
            items = [(shard, i) for shard, start, stop in segments for i in range(start, stop)]
            for position in order[skip:]:
                yield (pass_index, *items[position])
            skip = 0
        pass_index += 1


def domain_stream(shards: DomainShards, *, seed: int, slot: int, layout: Layout, buffer: int,
                  skip: int = 0) -> Iterator[tuple[int, str, bytes]]:
    """Endless (pass, key, image bytes) for one slot; the first ``skip`` samples are passed over unread.

    Follows ``stream_ids`` exactly, but reads each pass's segments sequentially and holds samples
    only until their turn (at most about ``buffer`` of them, as a shuffle buffer would).
    """
    if shards.samples == 0:
        raise BrushworkError(f"domain {shards.domain}: no samples in the manifest; reshard the dataset")
    domain_id = DOMAIN_IDS.get(shards.domain, 2)
    pass_index = 0
    while True:
        segments, order = pass_plan(shards.counts, seed, pass_index, slot, layout, buffer, domain_id)
        if skip >= len(order):
            skip -= len(order)
            pass_index += 1
            continue
        emitted_at = {position: out for out, position in enumerate(order)}
        pending: dict[int, tuple[str, bytes]] = {}
        emit, first = skip, 0
        for shard, start, stop in segments:
            wanted = {i for i in range(start, stop) if emitted_at[first + i - start] >= skip}
            for index, key, _, data in read_samples(shards.shards[shard], start, stop, wanted):
                pending[emitted_at[first + index - start]] = (key, data)
                while emit in pending:
                    yield (pass_index, *pending.pop(emit))
                    emit += 1
            first += stop - start
        pass_index, skip = pass_index + 1, 0


# ---------------------------------------------------------------------------------------------
# Decode and augment


@dataclass(frozen=True)
class Augment:
    """The original training transforms (``--preprocess``), then a random flip; ``train=False``: square resize.

    ``center`` (fast style): the shorter side to ``load_size``, then the centre ``crop_size`` square;
    ``shorter_side_and_crop`` (AdaIN): the shorter side to ``load_size``, then a random ``crop_size`` square.
    """

    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    train: bool = True
    preprocess: str = "resize_and_crop"


def sample_rng(seed: int, pass_index: int, key: str, domain: str) -> np.random.Generator:
    """Augmentation randomness of one sample, independent of where it sits in the stream."""
    return np.random.default_rng([seed, pass_index, zlib.crc32(key.encode()), DOMAIN_IDS.get(domain, 2), 7])


def decode(data: bytes, draft_size: int = 0) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    if draft_size and img.format == "JPEG":
        img.draft("RGB", (draft_size, draft_size))  # DCT-domain downscale: much cheaper decode of big photos
    return img.convert("RGB")


def scale_width(img: Image.Image, target: int, crop: int) -> Image.Image:
    """The original ``__scale_width``: width to ``target``, height by aspect but at least ``crop``."""
    if img.width == target and img.height >= crop:
        return img
    return img.resize((target, int(max(target * img.height / img.width, crop))), Image.Resampling.BICUBIC)


def make_multiple(img: Image.Image, base: int = 4) -> Image.Image:
    """The original ``__make_power_2``: each side resized to the nearest multiple of ``base``."""
    w, h = (max(base, int(round(s / base) * base)) for s in img.size)
    return img if (w, h) == img.size else img.resize((w, h), Image.Resampling.BICUBIC)


def preprocess_image(img: Image.Image, aug: Augment, crop_pos: tuple[int, int] | None = None,
                     rng: np.random.Generator | None = None) -> Image.Image:
    """Resize/scale then crop as the original ``get_transform`` (without the flip).

    The crop position is ``crop_pos`` if given, else drawn from ``rng`` over the valid range.
    """
    mode = aug.preprocess
    if mode in ("center", "shorter_side_and_crop"):  # shorter side to load_size; then (fast style, as
        scale = aug.load_size / min(img.size)     # pytorch/examples) the centre square, or (AdaIN) a random one
        img = img.resize((max(aug.crop_size, round(img.width * scale)), max(aug.crop_size, round(img.height * scale))),
                         Image.Resampling.BICUBIC)
        if mode == "center":
            left, top = (img.width - aug.crop_size) // 2, (img.height - aug.crop_size) // 2
            return img.crop((left, top, left + aug.crop_size, top + aug.crop_size))
    if "resize" in mode:
        img = img.resize((aug.load_size, aug.load_size), Image.Resampling.BICUBIC)
    elif "scale_width" in mode:
        img = scale_width(img, aug.load_size, aug.crop_size)
    if "crop" in mode:
        if crop_pos is None:
            crop_pos = (int(rng.integers(0, max(0, img.width - aug.crop_size) + 1)),
                        int(rng.integers(0, max(0, img.height - aug.crop_size) + 1)))
        x, y = crop_pos
        if img.width > aug.crop_size or img.height > aug.crop_size:  # as the original ``__crop``: a side
            img = img.crop((x, y, x + aug.crop_size, y + aug.crop_size))  # shorter than the crop is padded black
    if mode == "none":
        img = make_multiple(img, 4)
    return img


def augment(img: Image.Image, aug: Augment, rng: np.random.Generator | None) -> torch.Tensor:
    """Preprocess (as ``--preprocess``) → random flip → tensor in [-1, 1]."""
    if not aug.train:
        return to_tensor(img.resize((aug.crop_size, aug.crop_size), Image.Resampling.BICUBIC))
    img = preprocess_image(img, aug, rng=rng)
    if aug.flip and rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return to_tensor(img)


def stack_same_size(images: list[torch.Tensor]) -> torch.Tensor:
    """One batch tensor; images of different sizes (scale_width, none) are centre-cropped to the smallest."""
    h = min(x.shape[-2] for x in images)
    w = min(x.shape[-1] for x in images)
    top = lambda x: (x.shape[-2] - h) // 2
    left = lambda x: (x.shape[-1] - w) // 2
    cropped = [x[..., top(x):top(x) + h, left(x):left(x) + w] for x in images]
    return torch.stack(cropped)


# ---------------------------------------------------------------------------------------------
# Batches for DDP


def batches_before(start_batch: int, worker: int, num_workers: int) -> int:
    """How many of the first ``start_batch`` batches came from ``worker`` (DataLoader is round-robin)."""
    return max(0, (start_batch - worker + num_workers - 1) // num_workers)


def worker_role(worker_id: int, num_workers: int, start_batch: int) -> tuple[int, int]:
    """(role, batches that role has delivered) for a DataLoader worker of a loader resumed at ``start_batch``.

    Batch j of the uninterrupted stream comes from role j % W. A new DataLoader asks worker 0 first,
    so worker ``w`` plays role (w + start_batch) % W and the stream continues with batch start_batch.
    """
    role = (worker_id + start_batch) % num_workers
    return role, batches_before(start_batch, role, num_workers)


class DomainBatches(IterableDataset):
    """Endless batches ``{"A": (B,3,H,W), "A_keys": [...], ...}`` of the given domains for one rank.

    Unpaired: each domain is its own stream. Resumable at any batch (``start_batch``).
    """

    def __init__(self, domains: list[DomainShards], *, batch_size: int, rank: int, world: int,
                 num_workers: int, seed: int, aug: Augment, buffer: int = 256, start_batch: int = 0):
        super().__init__()
        self.domains = domains
        self.batch_size, self.rank, self.world = batch_size, rank, world
        self.num_workers, self.seed, self.aug, self.buffer = num_workers, seed, aug, buffer
        self.start_batch = start_batch

    def __iter__(self):
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        if num_workers != max(1, self.num_workers):
            raise BrushworkError(f"loader built for {self.num_workers} workers runs with {num_workers}")
        worker, done_batches = worker_role(worker, num_workers, self.start_batch)
        done = done_batches * self.batch_size
        layout = Layout(self.world, num_workers, self.batch_size)
        slot = self.rank * num_workers + worker
        streams = {s.domain: domain_stream(s, seed=self.seed, slot=slot, layout=layout, buffer=self.buffer, skip=done)
                   for s in self.domains}
        draft = self.aug.load_size if self.aug.train else self.aug.crop_size
        if self.aug.preprocess in ("crop", "none"):
            draft = 0  # full resolution is part of the transform
        while True:
            batch = {}
            for name, stream in streams.items():
                images, keys = [], []
                for _ in range(self.batch_size):
                    pass_index, key, data = next(stream)
                    rng = sample_rng(self.seed, pass_index, key, name)
                    images.append(augment(decode(data, draft), self.aug, rng))
                    keys.append(key)
                batch[name], batch[f"{name}_keys"] = stack_same_size(images), keys
            yield batch


def _worker_init(_):
    import signal

    torch.set_num_threads(1)  # decode workers must not fight the training step for cores
    # A preemption signal sent to the whole process group (timeout, kill -- -PGID, SLURM) reaches the
    # workers too; the main process owns it (checkpoint, then exit 0), so a worker must not die of it
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)


def steps_per_epoch(domains: list[DomainShards], batch_size: int, world: int) -> int:
    """The original epoch: as many images as the larger domain holds, in global batches."""
    global_batch = batch_size * world
    largest = max(domains, key=lambda s: s.samples)
    if largest.samples < global_batch:
        raise BrushworkError(f"domain {largest.domain} has {largest.samples} image(s), fewer than one global batch "
                             f"({world} process(es) x batch {batch_size}); lower --batch_size or use fewer processes")
    return largest.samples // global_batch


def train_loader(root: str, *, batch_size: int, rank: int, world: int, num_workers: int, seed: int,
                 aug: Augment, buffer: int = 256, start_batch: int = 0, pin_memory: bool = False,
                 split: str = "train", domains: tuple[str, ...] = ("A", "B"),
                 sources: tuple[tuple[str, str, str], ...] = ()) -> tuple[DataLoader, int]:
    """(endless DataLoader of batches for one rank, steps per epoch). The batches hold ``domains`` of ``root``,
    or with ``sources`` (key, root, domain) each key's domain of its own root (AdaIN: photos and paintings
    from two datasets)."""
    sources = sources or tuple((d, root, d) for d in domains)
    manifests = {where: read_manifest(where) for where in dict.fromkeys(where for _, where, _ in sources)}  # once each
    shards = [DomainShards(key, tuple(shard_refs(where, manifests[where], split, domain)))
              for key, where, domain in sources]
    epoch = steps_per_epoch(shards, batch_size, world)
    dataset = DomainBatches(shards, batch_size=batch_size, rank=rank, world=world, num_workers=num_workers,
                            seed=seed, aug=aug, buffer=buffer, start_batch=start_batch)
    extra = {"prefetch_factor": 4, "worker_init_fn": _worker_init, "persistent_workers": False} if num_workers else {}
    loader = DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, **extra)
    return loader, epoch


def batches(loader: DataLoader) -> Iterator[dict]:
    """Iterate a loader; an error raised in a worker comes back as itself (one line), not wrapped in a traceback."""
    it = iter(loader)
    while True:
        try:
            yield next(it)
        except BrushworkError as e:
            message = str(e)
            if "Original Traceback" in message:  # DataLoader re-raises worker errors with their traceback
                last = message.rstrip().splitlines()[-1]
                raise type(e)(last.split(": ", 1)[1] if ": " in last else last) from None
            raise


# ---------------------------------------------------------------------------------------------
# Test images for eval: a folder, or one split/domain of a shard root


@dataclass(frozen=True)
class SourceImage:
    """One input image of an eval tool: its output name and where its pixels come from (read when needed)."""

    name: str                          # relative name for outputs ("sub/a.png", or "{key}.png")
    path: str | None = None            # a file ...
    shard: tuple[ShardRef, int] | None = None  # ... or (shard, index in it)

    def load(self, max_pixels: int | None = None) -> Image.Image:
        return next(load_images([self], max_pixels))[1]


def load_images(items: list[SourceImage], max_pixels: int | None = None
                ) -> Iterator[tuple[SourceImage, Image.Image | ImageError]]:
    """(item, RGB image, or the ImageError that says why not) for each item, in order, one decoded at a time.

    Consecutive samples of one shard are read in one pass over the samples they span, so a rank's
    contiguous share of a split costs one sequential read per shard.
    """
    from brushwork.data.images import DEFAULT_MAX_PIXELS, decode_image, load_image

    cap = max_pixels or DEFAULT_MAX_PIXELS
    i = 0
    while i < len(items):
        item = items[i]
        if item.shard is None:
            try:
                yield item, load_image(item.path, cap)
            except ImageError as e:
                yield item, e
            i += 1
            continue
        shard = item.shard[0]
        j = i
        while j < len(items) and items[j].shard is not None and items[j].shard[0] is shard:
            j += 1
        run = {it.shard[1]: it for it in items[i:j]}
        for index, key, _, data in read_samples(shard, min(run), max(run) + 1, set(run)):
            try:
                yield run[index], decode_image(data, f"{shard.url}[{key}]", cap)[0]
            except ImageError as e:
                yield run[index], e
        i = j


def image_source(source: str, split: str = "test", domain: str = "A") -> list[SourceImage]:
    """Every image of a folder (recursive; or one file), or of one split/domain of a shard root.

    Nothing is decoded: a list of names and where to read them (shard samples by index, from the
    manifest's counts), so a rank can take its share before reading any pixels.
    """
    from brushwork.core.fileio import MAX_NAME_BYTES, distinct_stems, fit_name
    from brushwork.core.storage import filesystem
    from brushwork.data.images import find_images

    fs, root = filesystem(source)
    if fs.exists(f"{root}/manifest.json"):  # keys are distinct within a split; a long one is cut like a file name
        return [SourceImage(f"{fit_name(key, MAX_NAME_BYTES - 4, key)}.png", shard=(shard, index))
                for shard in domain_shards(source, split, domain).shards for index, key in enumerate(shard.keys)]
    path = Path(source)
    files = find_images(path, unreadable=True)
    if not files:
        raise BrushworkError(f"{source}: no images found (.jpg, .png, .webp, ... in any case)")
    base = path if path.is_dir() else path.parent
    rels = [f.relative_to(base).as_posix() for f in files]
    return [SourceImage(f"{stem}.png", path=str(f)) for f, stem in zip(files, distinct_stems(rels))]


def rank_share(items: list, rank: int, world: int) -> list:
    """Rank ``rank``'s contiguous share of ``items`` (sizes differ by at most one), as the training split cuts."""
    n = len(items)
    return items[rank * n // world:(rank + 1) * n // world]
