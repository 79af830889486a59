"""The training stream: exactly-once passes for any ranks x workers, balanced shares, exact resume, checked shards."""

import io
import re
import tarfile
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import make_synth
from PIL import Image

from brushwork.core.errors import BrushworkError
from brushwork.data import shards
from brushwork.data import stream as data
from brushwork.data.shard_reader import read_samples
from brushwork.data.stream import Augment, train_loader

DEFAULT_PER_SHARD = 64  # ShardConfig's default


def shard_dataset(tmp_path, n_a, n_b, per_shard, size=32):
    """Synthetic shards with n_a A and n_b B training images."""
    src = make_synth(tmp_path / "src", max(n_a, n_b), n_test=2, size=size)
    for p in sorted((src / "trainA").glob("*.png"))[n_a:]:
        p.unlink()
    for p in sorted((src / "trainB").glob("*.png"))[n_b:]:
        p.unlink()
    out = str(tmp_path / "shards")
    plans = shards.plan_shards(shards.sources_from_layout(src), samples_per_shard=per_shard)
    shards.write_shards(plans, out, shards.ShardOptions())
    shards.write_manifest(plans, out, {"input": str(src)})
    return out


def default_counts(n: int) -> tuple[int, ...]:
    return tuple(min(DEFAULT_PER_SHARD, n - i) for i in range(0, n, DEFAULT_PER_SHARD))


AUG = Augment(load_size=36, crop_size=32)


# ---------------------------------------------------------------------------------------------
# Pure functions: the arithmetic at the users' scale (64 ranks x 4 workers), no processes, no files


def rank_batches(counts, seed, rank, world, workers, batch_size, start, n, buffer=16):
    """The sample ids of batches start..start+n-1 of one rank, as DomainBatches + DataLoader produce them."""
    W = max(1, workers)
    streams = {}
    for worker_id in range(W):  # a resumed DataLoader: each worker plays a role and skips what it delivered
        role, done = data.worker_role(worker_id, W, start)
        streams[role] = data.stream_ids(counts, seed=seed, slot=rank * W + role,
                                        layout=data.Layout(world, W, batch_size), buffer=buffer, domain_id=0,
                                        skip=done * batch_size)
    return [[next(streams[j % W]) for _ in range(batch_size)] for j in range(start, start + n)]


CASES = [(world, workers, n) for world in (1, 2, 3, 8, 64) for workers in (0, 1, 2, 4) for n in (12, 400, 1072)
         if n >= world]  # a domain needs at least one global batch (batch 1)


@pytest.mark.parametrize("world,workers,n", CASES)
def test_every_image_once_per_pass_and_chunks_as_long_as_the_draws(world, workers, n):
    counts = default_counts(n)
    for batch_size in (1, 3):
        layout = data.Layout(world, max(1, workers), batch_size)
        for pass_index in range(3):
            seen = Counter()
            lengths = layout.pass_lengths(n, pass_index)
            for slot in range(layout.slots):
                segments = data.pass_segments(counts, seed=7, pass_index=pass_index, slot=slot, layout=layout)
                items = [(shard, i) for shard, start, stop in segments for i in range(start, stop)]
                seen.update(items)
                assert len(items) == lengths[slot]
            assert seen == Counter((s, i) for s, c in enumerate(counts) for i in range(c))  # each exactly once


def test_draws_per_slot_follow_the_round_robin_of_workers():
    layout = data.Layout(world=3, workers=2, batch_size=2)
    # global draws: step 0 = rank 0,1,2 from worker 0 (2 each), step 1 = the same from worker 1, ...
    slot_of = [(g // 2) % 3 * 2 + (g // 6) % 2 for g in range(40)]
    for g in range(41):
        for slot in range(6):
            assert layout.draws_before(g, slot) == slot_of[:g].count(slot)


def test_first_epoch_of_64_ranks_x_4_workers_on_400_images_repeats_nothing():
    """The figure README and ARCHITECTURE.md state: 0 repeats (the old split drew 46 twice)."""
    counts, world, workers = default_counts(400), 64, 4
    for batch_size in (1, 2):
        steps = 400 // (world * batch_size)  # the first epoch
        drawn = Counter()
        for rank in range(world):
            for batch in rank_batches(counts, 0, rank, world, workers, batch_size, 0, steps):
                drawn.update((shard, i) for _, shard, i in batch)
        assert sum(drawn.values()) == steps * world * batch_size and max(drawn.values()) == 1


@pytest.mark.parametrize("world,workers,n", [c for c in CASES if c[2] != 400])
def test_resume_from_every_position_of_a_pass_gives_the_next_batch(world, workers, n):
    counts, batch_size = default_counts(n), 2 if n >= 2 * world else 1
    per_pass = n // (world * batch_size)  # batches of one rank in one pass (about)
    for rank in sorted({0, world - 1}):
        whole = rank_batches(counts, 3, rank, world, workers, batch_size, 0, per_pass + 2)
        for start in range(per_pass + 1):
            assert rank_batches(counts, 3, rank, world, workers, batch_size, start, 1)[0] == whole[start], start


def test_every_slot_reads_a_few_shards_sequentially():
    counts = default_counts(1072)  # 17 shards on 16 slots: the case that used to favour one slot's images
    for slot in range(16):
        segments = data.pass_segments(counts, seed=0, pass_index=0, slot=slot, layout=data.Layout(16))
        assert 1 <= len(segments) <= 3 and sum(b - a for _, a, b in segments) in (67, 66)


def test_a_slot_with_fewer_images_than_slots_still_gets_some():
    counts = default_counts(12)
    got = Counter()
    for pass_index in range(40):  # 12 images on 32 slots: each pass 12 slots get one image
        for slot in range(32):
            got[slot] += sum(b - a for _, a, b in data.pass_segments(counts, 1, pass_index, slot, data.Layout(32)))
    assert min(got.values()) > 0 and sum(got.values()) == 40 * 12


def test_shuffled_order_is_a_buffer_shuffle():
    order = data.shuffled_order(50, 8, np.random.default_rng(0))
    assert sorted(order) == list(range(50)) and order != list(range(50))
    assert all(item <= position + 8 for position, item in enumerate(order))  # never more than a buffer ahead
    assert data.shuffled_order(50, 8, np.random.default_rng(0)) == order


# ---------------------------------------------------------------------------------------------
# The real loader on real shards


def keys_of(loader, n):
    it = iter(loader)
    batches = [next(it) for _ in range(n)]
    return [k for b in batches for k in b["A_keys"]], [k for b in batches for k in b["B_keys"]], batches


def test_one_pass_covers_every_image_once_over_2_ranks_x_2_workers(tmp_path):
    root = shard_dataset(tmp_path, n_a=16, n_b=24, per_shard=5)  # uneven shards: 5,5,5,1 and 5,5,5,5,4
    seen_a, seen_b, later_a = [], [], []
    for rank in (0, 1):
        loader, steps = train_loader(root, batch_size=1, rank=rank, world=2, num_workers=2, seed=3, aug=AUG)
        assert steps == 12  # max(16, 24) // (1 * 2)
        a, b, _ = keys_of(loader, 12)  # 12 batches per rank = one pass of B, 1.5 passes of A
        seen_a += a[:8]
        later_a += a[8:]
        seen_b += b
    all_a = {f"trainA__{i:06d}" for i in range(16)}
    all_b = {f"trainB__{i:06d}" for i in range(24)}
    assert Counter(seen_a) == Counter(all_a)  # exactly once: no duplicates, none missing
    assert Counter(seen_b) == Counter(all_b)
    assert len(set(later_a)) == 8  # the second pass of A has started, again without repeats


def test_the_reader_follows_the_pure_plan(tmp_path):
    root = shard_dataset(tmp_path, n_a=13, n_b=2, per_shard=4)
    a = data.domain_shards(root, "train", "A")
    keys = {(s, i): key for s, shard in enumerate(a.shards) for i, key, _, _ in read_samples(shard)}
    layout = data.Layout(3)
    for slot, skip in ((0, 0), (2, 5), (1, 11)):
        ids = data.stream_ids(a.counts, seed=4, slot=slot, layout=layout, buffer=3, domain_id=0, skip=skip)
        stream = data.domain_stream(a, seed=4, slot=slot, layout=layout, buffer=3, skip=skip)
        for _ in range(12):
            pass_index, shard, index = next(ids)
            got_pass, key, _ = next(stream)
            assert (got_pass, key) == (pass_index, keys[(shard, index)])


def test_default_shards_feed_more_slots_than_shards(tmp_path):
    root = shard_dataset(tmp_path, n_a=12, n_b=12, per_shard=DEFAULT_PER_SHARD)  # one shard per domain
    seen = Counter()
    for rank in (0, 1):
        loader, steps = train_loader(root, batch_size=1, rank=rank, world=2, num_workers=2, seed=0, aug=AUG)
        assert steps == 6
        a, _, _ = keys_of(loader, 6)
        seen.update(a)
    assert seen == Counter(f"trainA__{i:06d}" for i in range(12))


def test_pass_order_is_seeded(tmp_path):
    root = shard_dataset(tmp_path, n_a=16, n_b=16, per_shard=2)

    def order(seed, n, rank=0):
        loader, _ = train_loader(root, batch_size=2, rank=rank, world=2, num_workers=2, seed=seed, aug=AUG)
        a, b, batches = keys_of(loader, n)
        return a, b, torch.cat([x["A"] for x in batches])

    a1, b1, x1 = order(seed=5, n=8)
    a2, b2, x2 = order(seed=5, n=8)
    assert a1 == a2 and b1 == b2 and torch.equal(x1, x2)  # reproducible, augmentation included
    other_rank, _, _ = order(seed=5, n=8, rank=1)
    first_pass, second_pass = a1[:8] + other_rank[:8], a1[8:] + other_rank[8:]
    assert sorted(first_pass) == sorted(second_pass) == sorted(f"trainA__{i:06d}" for i in range(16))
    assert first_pass != second_pass  # each pass is a new order
    a3, _, _ = order(seed=6, n=8)
    assert a3 != a1


def test_resume_mid_epoch_continues_the_same_stream(tmp_path):
    root = shard_dataset(tmp_path, n_a=12, n_b=20, per_shard=3)
    kwargs = dict(batch_size=2, rank=1, world=2, num_workers=2, seed=0, aug=AUG, buffer=4)
    whole, _ = train_loader(root, **kwargs)
    _, _, reference = keys_of(whole, 13)
    for start in (0, 3, 7, 10):  # 7 and 10 are past the first pass of A on this rank
        resumed, _ = train_loader(root, start_batch=start, **kwargs)
        _, _, got = keys_of(resumed, 13 - start)
        for ref, new in zip(reference[start:], got):
            assert ref["A_keys"] == new["A_keys"] and ref["B_keys"] == new["B_keys"]
            assert torch.equal(ref["A"], new["A"]) and torch.equal(ref["B"], new["B"])


def test_pinned_memory_path_gives_the_same_batches(tmp_path):
    root = shard_dataset(tmp_path, n_a=6, n_b=6, per_shard=4)
    kwargs = dict(batch_size=2, rank=0, world=1, num_workers=1, seed=0, aug=AUG)
    plain, _ = train_loader(root, **kwargs)
    with pytest.warns(UserWarning, match="pin_memory"):  # no accelerator here: pinning is skipped, with a warning
        pinned, _ = train_loader(root, pin_memory=True, **kwargs)
        _, _, got = keys_of(pinned, 4)
    _, _, expected = keys_of(plain, 4)
    for a, b in zip(expected, got):
        assert torch.equal(a["A"], b["A"]) and a["A_keys"] == b["A_keys"]


def test_fewer_images_than_a_global_batch_is_a_clear_error(tmp_path):
    root = shard_dataset(tmp_path, n_a=3, n_b=6, per_shard=2)
    with pytest.raises(BrushworkError, match=r"domain B has 6 image\(s\), fewer than one global batch \(4 process\(es\) "
                                             r"x batch 2\); lower --batch_size"):
        train_loader(root, batch_size=2, rank=0, world=4, num_workers=2, seed=0, aug=AUG)
    train_loader(root, batch_size=1, rank=0, world=4, num_workers=4, seed=0, aug=AUG)  # 16 slots, 3 images: fine


def truncate_shard(path, keep_samples):
    """Rewrite a shard with only its first samples, cut exactly at a member boundary."""
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m, blob in members[:2 * keep_samples]:
            tar.addfile(m, io.BytesIO(blob))
    path.write_bytes(buf.getvalue())


def test_a_truncated_shard_is_an_error_naming_it(tmp_path):
    root = shard_dataset(tmp_path, n_a=8, n_b=8, per_shard=4)
    shard = tmp_path / "shards" / "train" / "A-000001.tar"
    loader, _ = train_loader(root, batch_size=1, rank=0, world=1, num_workers=0, seed=0, aug=AUG)
    workers, _ = train_loader(root, batch_size=1, rank=0, world=1, num_workers=2, seed=0, aug=AUG)
    truncate_shard(shard, 3)  # while the job runs: each read checks the length
    with pytest.raises(BrushworkError, match=r"A-000001.tar: 10240 bytes but the manifest lists 20480 \(replaced or "
                                              "truncated"):
        for _ in data.batches(loader):
            pass
    # through worker processes the error comes back as the same one line, not a wrapped traceback
    with pytest.raises(BrushworkError) as err:
        for _ in data.batches(workers):
            pass
    assert "\n" not in str(err.value) and "A-000001.tar: 10240 bytes but the manifest lists" in str(err.value)
    # before the job starts: the folder listing shows it at once
    with pytest.raises(BrushworkError, match=r"A-000001.tar: 10240 bytes but the manifest lists 20480 \(replaced"):
        train_loader(root, batch_size=1, rank=0, world=1, num_workers=0, seed=0, aug=AUG)


def test_a_shard_replaced_by_one_of_equal_length_is_an_error_naming_it(tmp_path):
    root = shard_dataset(tmp_path, n_a=8, n_b=8, per_shard=4)
    a0, a1 = (tmp_path / "shards" / "train" / f"A-00000{i}.tar" for i in (0, 1))
    blob0, blob1 = a0.read_bytes(), a1.read_bytes()
    a0.write_bytes(blob1 + bytes(max(0, len(blob0) - len(blob1))))  # same length, other samples
    a0.write_bytes(a0.read_bytes()[:len(blob0)])
    a = data.domain_shards(root, "train", "A")
    with pytest.raises(BrushworkError, match=r"A-000000.tar: sample 0 is 'trainA__000004', the manifest lists "
                                              r"'trainA__000000' \(replaced after sharding\)"):
        list(read_samples(a.shards[0]))


def test_missing_manifest_or_shard_is_a_clear_error(tmp_path):
    with pytest.raises(BrushworkError, match="no manifest.json; run data_prep/shard.py"):
        train_loader(str(tmp_path), batch_size=1, rank=0, world=1, num_workers=0, seed=0, aug=AUG)
    root = shard_dataset(tmp_path, n_a=4, n_b=4, per_shard=2)
    (tmp_path / "shards" / "train" / "B-000001.tar").unlink()
    with pytest.raises(BrushworkError, match=r"train/B-000001.tar: shard listed in the manifest is missing"):
        train_loader(root, batch_size=1, rank=0, world=1, num_workers=0, seed=0, aug=AUG)


def test_webdataset_reads_the_shards(tmp_path):
    import json

    import webdataset as wds

    shard_dataset(tmp_path, n_a=5, n_b=3, per_shard=2)
    urls = sorted(str(p) for p in (tmp_path / "shards" / "train").glob("A-*.tar"))
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert sorted(s["__key__"] for s in samples) == [f"trainA__{i:06d}" for i in range(5)]
    for s in samples:
        meta = json.loads(s["json"])
        img = Image.open(io.BytesIO(s["png"]))
        assert meta["source"] == f"trainA/{s['__key__'].split('__')[1]}.png" and img.size == (meta["width"], meta["height"])


def test_augmentation_matches_the_original_recipe():
    img = Image.fromarray(np.arange(40 * 50 * 3, dtype=np.uint8).reshape(40, 50, 3) % 251)
    rng = np.random.default_rng(0)
    x = data.augment(img, Augment(load_size=36, crop_size=32), rng)
    assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
    # the same crop by hand: resize 36x36 bicubic, crop at the drawn offset, flip if drawn
    rng = np.random.default_rng(0)
    ox, oy = rng.integers(0, 5), rng.integers(0, 5)
    ref = img.resize((36, 36), Image.Resampling.BICUBIC).crop((ox, oy, ox + 32, oy + 32))
    if rng.random() < 0.5:
        ref = ref.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    expected = torch.from_numpy(np.asarray(ref).copy()).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(x, expected)
    test = data.augment(img, Augment(load_size=36, crop_size=32, train=False), None)
    expected = np.asarray(img.resize((32, 32), Image.Resampling.BICUBIC)).astype(np.float32) / 127.5 - 1
    assert np.allclose(test.permute(1, 2, 0).numpy(), expected)


def test_flip_off_never_flips():
    img = Image.fromarray(np.tile(np.arange(36, dtype=np.uint8)[None, :, None], (36, 1, 3)))
    for seed in range(20):
        x = data.augment(img, Augment(36, 36, flip=False), np.random.default_rng(seed))
        assert x[0, 0, 0] < x[0, 0, -1]  # left stays dark, right stays bright


@pytest.mark.parametrize("damage,line", [
    (lambda m: m["shards"][0].update(samples="2"), "manifest.json: shards.0.samples: Input should be a valid integer"),
    (lambda m: m["shards"].append(dict(m["shards"][0])), "train/A-000000.tar is listed twice"),
    (lambda m: m["shards"][0].update(name="../elsewhere/A-000000.tar"), "is not a path inside the folder"),
])
def test_a_damaged_manifest_is_one_line_naming_the_field(tmp_path, damage, line):
    import json

    root = shard_dataset(tmp_path, n_a=4, n_b=4, per_shard=2)
    path = tmp_path / "shards" / "manifest.json"
    manifest = json.loads(path.read_text())
    damage(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(BrushworkError, match=re.escape(line)):
        shards.read_manifest(root)
