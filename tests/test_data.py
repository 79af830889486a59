"""The unpaired training stream: exactly-once passes over ranks x workers, seeded order, exact resume."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork import data, shards
from brushwork.data import Augment, train_loader
from brushwork.errors import BrushworkError

from conftest import make_synth


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


AUG = Augment(load_size=36, crop_size=32)


def keys_of(loader, n):
    it = iter(loader)
    batches = [next(it) for _ in range(n)]
    return [k for b in batches for k in b["A_keys"]], [k for b in batches for k in b["B_keys"]], batches


def test_one_pass_covers_every_image_once_over_2_ranks_x_2_workers(tmp_path):
    root = shard_dataset(tmp_path, n_a=16, n_b=24, per_shard=2)  # A: 8 shards of 2, B: 12 of 2
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


@pytest.mark.parametrize("n_shards,world,workers", [(5, 2, 1), (7, 2, 3), (9, 3, 2), (4, 1, 4)])
def test_exactly_once_with_uneven_shards(n_shards, world, workers):
    counts = tuple(int(c) for c in np.random.default_rng(n_shards).integers(1, 5, size=n_shards))
    seen = Counter()
    for rank, worker in itertools.product(range(world), range(workers)):
        idx = data.pass_shard_indices(n_shards, seed=1, pass_index=4, rank=rank, world=world, worker=worker,
                                      num_workers=workers)
        for i in idx:
            seen.update(f"{i}/{j}" for j in range(counts[i]))
    assert seen == Counter(f"{i}/{j}" for i in range(n_shards) for j in range(counts[i]))


def test_resume_mid_epoch_continues_the_same_stream(tmp_path):
    root = shard_dataset(tmp_path, n_a=12, n_b=20, per_shard=2)
    kwargs = dict(batch_size=2, rank=1, world=2, num_workers=2, seed=0, aug=AUG, buffer=4)
    whole, _ = train_loader(root, **kwargs)
    _, _, reference = keys_of(whole, 13)
    for start in (0, 3, 7, 10):  # 7 and 10 are past the first pass of A on this rank
        resumed, _ = train_loader(root, start_batch=start, **kwargs)
        _, _, got = keys_of(resumed, 13 - start)
        for ref, new in zip(reference[start:], got):
            assert ref["A_keys"] == new["A_keys"] and ref["B_keys"] == new["B_keys"]
            assert torch.equal(ref["A"], new["A"]) and torch.equal(ref["B"], new["B"])


def test_too_few_shards_for_ranks_and_workers_is_a_clear_error(tmp_path):
    root = shard_dataset(tmp_path, n_a=6, n_b=6, per_shard=2)  # 3 shards per domain
    with pytest.raises(BrushworkError, match=r"domain A has 3 shard\(s\) but 2 rank\(s\) x 2 worker\(s\) need at "
                                             r"least 4; reshard with a smaller --samples_per_shard"):
        train_loader(root, batch_size=1, rank=0, world=2, num_workers=2, seed=0, aug=AUG)
    train_loader(root, batch_size=1, rank=0, world=1, num_workers=2, seed=0, aug=AUG)  # 2 slots: fine


def test_missing_manifest_or_shard_is_a_clear_error(tmp_path):
    with pytest.raises(BrushworkError, match="no manifest.json; run data_prep/shard.py"):
        train_loader(str(tmp_path), batch_size=1, rank=0, world=1, num_workers=0, seed=0, aug=AUG)
    root = shard_dataset(tmp_path, n_a=4, n_b=4, per_shard=2)
    (tmp_path / "shards" / "train" / "B-000001.tar").unlink()
    with pytest.raises(BrushworkError, match=r"train/B-000001.tar: shard listed in the manifest is missing"):
        train_loader(root, batch_size=1, rank=0, world=1, num_workers=0, seed=0, aug=AUG)


def test_augmentation_matches_the_original_recipe():
    img = Image.fromarray(np.arange(40 * 50 * 3, dtype=np.uint8).reshape(40, 50, 3) % 251)
    rng = np.random.default_rng(0)
    x = data.augment(img, Augment(load_size=36, crop_size=32), rng)
    assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
    # the same crop by hand: resize 36x36 bicubic, crop at the drawn offset, flip if drawn
    rng = np.random.default_rng(0)
    ox, oy = rng.integers(0, 5, size=2)
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
