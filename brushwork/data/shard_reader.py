"""The one reader of the project's shards: WebDataset's tar primitives over exact byte ranges.

Every shard's manifest entry lists its samples' keys and byte offsets (``offsets[i]`` is where
sample ``i``'s first tar header starts, ``offsets[-1]`` where the last sample ends), recorded when
the shard was written. Reading samples ``[start, stop)`` is then a ranged request for exactly
``offsets[start]..offsets[stop]``, cut into chunks of whole samples of at most ``CHUNK_BYTES``
(bounded memory; one request per chunk), each parsed by ``webdataset``'s ``tar_file_iterator``
and ``group_by_keys``. On object storage a slot fetches its own samples and nothing else, where a
buffered file would fetch read-ahead blocks of the whole shard.

Every read checks what it gets against the manifest: the shard's byte length, the range's length,
and each sample's key in order; any difference is one error naming the shard and the fix.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from webdataset.tariterators import group_by_keys, tar_file_iterator

from brushwork.core.errors import BrushworkError
from brushwork.core.storage import filesystem

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
CHUNK_BYTES = 8 << 20
FETCHED = {"requests": 0, "bytes": 0}  # what this process asked storage for (bench/loader.py reports it)


@dataclass(frozen=True)
class ShardRef:
    """One shard as its manifest entry describes it."""

    url: str
    keys: tuple[str, ...]
    offsets: tuple[int, ...]   # len(keys) + 1 byte positions
    size: int                  # the tar's byte length

    @property
    def samples(self) -> int:
        return len(self.keys)

    def span(self, start: int, stop: int) -> int:
        """Bytes of samples ``[start, stop)``."""
        return self.offsets[stop] - self.offsets[start]


def parse(blob: bytes, url: str = "<bytes>") -> Iterator[tuple[str, dict]]:
    """(key, {extension: bytes}) per sample of a tar (or of whole samples cut out of one), in order."""
    members = ({**m, "__url__": url} for m in tar_file_iterator(io.BytesIO(blob)))
    try:
        for sample in group_by_keys(members):
            yield sample["__key__"], {k: v for k, v in sample.items() if not k.startswith("__")}
    except (tarfile.TarError, ValueError, EOFError) as e:  # ValueError: a file name twice in one sample
        raise BrushworkError(f"{url}: damaged shard ({e}); delete it and rerun data_prep/shard.py") from None


def image_of(url: str, key: str, sample: dict) -> tuple[str, bytes]:
    for ext in IMAGE_EXTENSIONS:
        if ext in sample:
            return ext, sample[ext]
    raise BrushworkError(f"{url}: sample {key} holds no image ({', '.join(sorted(sample))}); "
                         "delete the shard and rerun data_prep/shard.py")


def chunks(shard: ShardRef, start: int, stop: int, limit: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """``[start, stop)`` cut into runs of whole samples of at most ``limit`` bytes (a larger sample alone)."""
    runs, first = [], start
    for i in range(start + 1, stop + 1):
        if i == stop or shard.span(first, i + 1) > limit:
            runs.append((first, i))
            first = i
    return runs


def check_size(shard: ShardRef, fs, path: str) -> None:
    try:
        size = fs.size(path)
    except FileNotFoundError:
        raise BrushworkError(f"{shard.url}: shard missing; rerun data_prep/shard.py to rewrite it") from None
    if size != shard.size:
        raise BrushworkError(f"{shard.url}: {size} bytes but the manifest lists {shard.size} (replaced or truncated "
                             "after sharding); delete it and rerun data_prep/shard.py, which rewrites it")


def read_samples(shard: ShardRef, start: int = 0, stop: int | None = None,
                 wanted: set[int] | None = None) -> Iterator[tuple[int, str, str, bytes]]:
    """(index in shard, key, image extension, image bytes) of samples ``start..stop-1`` (``wanted`` ones only).

    Reads exactly the bytes of those samples (chunks that hold no wanted sample are not fetched).
    """
    stop = shard.samples if stop is None else stop
    if not 0 <= start <= stop <= shard.samples:
        raise BrushworkError(f"{shard.url}: samples {start}..{stop} asked of a shard of {shard.samples}")
    if start == stop:
        return
    fs, path = filesystem(shard.url)
    check_size(shard, fs, path)
    for first, end in chunks(shard, start, stop):
        if wanted is not None and not any(i in wanted for i in range(first, end)):
            continue
        try:
            blob = fs.cat_file(path, start=shard.offsets[first], end=shard.offsets[end])
        except FileNotFoundError:
            raise BrushworkError(f"{shard.url}: shard missing; rerun data_prep/shard.py to rewrite it") from None
        FETCHED["requests"] += 1
        FETCHED["bytes"] += len(blob)
        if len(blob) != shard.span(first, end):
            raise BrushworkError(f"{shard.url}: ends before the samples the manifest lists (truncated after "
                                 "sharding); delete it and rerun data_prep/shard.py, which rewrites it")
        index = first
        for key, sample in parse(blob, shard.url):
            if index >= end or key != shard.keys[index]:
                raise BrushworkError(f"{shard.url}: sample {index} is {key!r}, the manifest lists "
                                     f"{shard.keys[index] if index < end else 'nothing more'!r} (replaced after "
                                     "sharding); delete it and rerun data_prep/shard.py, which rewrites it")
            if wanted is None or index in wanted:
                yield (index, key, *image_of(shard.url, key, sample))
            index += 1
        if index != end:
            raise BrushworkError(f"{shard.url}: holds no sample {index} of the {shard.samples} the manifest lists "
                                 "(truncated or replaced after sharding); delete it and rerun data_prep/shard.py, "
                                 "which rewrites it")
