"""Memory bounded by the batch, not by the job: Gatys and translate on 12-MP photos, eval on shard roots,
presets after a non-editable install."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, SAMPLES, synth_shards
from PIL import Image

from brushwork.data import stream as data
from brushwork.models.networks import ResnetGenerator, init_weights

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_measured(cmd, cwd=REPO, env=ENV) -> tuple[int, str]:
    """(the child's own peak RSS in bytes, its stdout + stderr): the benchmarks' measurement."""
    sys.path.insert(0, str(REPO / "bench"))
    from harness import run_measured as measured

    peak, out, err = measured(cmd, cwd=cwd, env=env)
    return peak, out + err


def camera_photo(path: Path, seed: int, size=(4000, 3000)) -> Path:
    """A 12-MP JPEG that compresses like a photo (smooth gradients plus grain), not like noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    base = 255 * (0.5 + 0.5 * np.sin(6.28 * (x * rng.uniform(1, 3) + y * rng.uniform(1, 3)) + rng.uniform(0, 6, 3)))
    grain = rng.integers(0, 16, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8)).save(path, quality=85)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for kind, offset in (("content", 0), ("style", 100)):
        (root / kind).mkdir()
        for i in range(6):
            camera_photo(root / kind / f"{kind}{i}.jpg", offset + i, (4000, 3000) if i % 2 == 0 else (3000, 4000))
    return root


def gatys(*args):
    # one evaluation per pair (no line search): the test is about memory, 1,000 renders must stay quick
    return [sys.executable, str(REPO / "train/gatys.py"), "--random_vgg", "--image_size", "32", "--iterations", "1",
            "--line_search", "none", *map(str, args)]


def test_gatys_memory_does_not_grow_with_the_number_of_pairs(tmp_path, photos):
    one, _ = run_measured(gatys("--content", photos / "content/content0.jpg", "--style", photos / "style/style0.jpg",
                                "--out", tmp_path / "one"))
    many, log = run_measured(gatys("--content", photos / "content", "--style", photos / "style",
                                   "--out", tmp_path / "many"))
    assert "rendered 36" in log
    assert many <= 1.25 * one, f"36 pairs peak at {many / 2**20:.0f} MiB, one pair at {one / 2**20:.0f} MiB"
    pairs = tmp_path / "pairs.jsonl"
    with open(pairs, "w") as f:
        for i in range(1000):
            f.write(json.dumps({"content": str(photos / "content" / f"content{i % 6}.jpg"),
                                "style": str(photos / "style" / f"style{i // 6 % 6}.jpg"), "name": f"p{i:04d}"}) + "\n")
    thousand, log = run_measured(gatys("--pairs", pairs, "--out", tmp_path / "thousand", "--batch_size", 50))
    assert "rendered 1000" in log
    print(f"\nGatys, 12-MP photos, --image_size 32 --iterations 1: peak RSS {one / 2**20:.0f} MiB for 1 pair, "
          f"{many / 2**20:.0f} MiB for 36, {thousand / 2**20:.0f} MiB for 1,000 (pairs file, --batch_size 50)")
    assert thousand <= 1.25 * one, f"1,000 pairs peak at {thousand / 2**20:.0f} MiB, one at {one / 2**20:.0f} MiB"


def test_a_style_is_decoded_once_per_size_and_the_cache_stays_within_its_budget(photos):
    from brushwork.gatys import gatys_run
    from brushwork.schemas.gatys import GatysConfig

    cfg = GatysConfig(content=str(photos / "content"), style=str(photos / "style"), image_size=32)
    pairs, _ = gatys_run.read_pairs(cfg)
    headers = gatys_run.Headers(cfg.max_pixels)
    planned = [gatys_run.plan_pair(p, headers) for p in pairs]
    assert {(p.width, p.height) for p in planned} == {(4000, 3000), (3000, 4000)}  # from headers alone
    images = gatys_run.ImageCache(cfg.max_pixels)
    for batch in gatys_run.buckets(planned, 4):
        [gatys_run.prepare(item, images) for item in batch]
    # 6 contents at one size each; 6 styles at the two output shapes (landscape, portrait): 18 decodes, not 72
    assert images.decodes == 18
    small = gatys_run.ImageCache(cfg.max_pixels, budget=3 * 3 * 32 * 24 * 4)
    for item in planned[:8]:
        gatys_run.prepare(item, small)
    assert len(small.entries) <= 3 and small.bytes <= small.budget


def test_translate_memory_does_not_grow_with_the_folder(tmp_path, photos):
    torch.manual_seed(0)
    weights = tmp_path / "G.pth"
    torch.save(init_weights(ResnetGenerator(ngf=1, n_blocks=1)).state_dict(), weights)  # the decode is what grows
    two, many = tmp_path / "two", tmp_path / "many"
    two.mkdir(), many.mkdir()
    for i in range(24):
        source = photos / "content" / f"content{(i % 2) * 2}.jpg"  # landscape photos: one size, full batches
        (many / f"p{i:02d}.jpg").symlink_to(source)
        if i < 2:
            (two / f"p{i:02d}.jpg").symlink_to(source)
    cmd = lambda folder, out: [sys.executable, str(REPO / "eval/translate.py"), str(weights), "--input", str(folder),
                               "--out", str(out), "--batch_size", "2"]
    small, _ = run_measured(cmd(two, tmp_path / "out2"))
    large, log = run_measured(cmd(many, tmp_path / "out24"))
    assert "24 image(s) into" in log and len(list((tmp_path / "out24").glob("*.png"))) == 24
    print(f"\ntranslate, 12-MP photos at full resolution, batch 2: peak RSS {small / 2**20:.0f} MiB for 2 photos, "
          f"{large / 2**20:.0f} MiB for 24")
    assert large <= 1.25 * small, f"24 photos peak at {large / 2**20:.0f} MiB, two at {small / 2**20:.0f} MiB"


def test_with_a_shard_root_each_rank_decodes_only_its_share(tmp_path, monkeypatch):
    from conftest import make_synth

    from brushwork.data import shards

    src = make_synth(tmp_path / "src", 4, n_test=7)
    plans = shards.plan_shards(shards.sources_from_layout(src), samples_per_shard=3)
    shards.write_shards(plans, str(tmp_path / "s"), shards.ShardOptions())
    shards.write_manifest(plans, str(tmp_path / "s"), {"input": "test"})
    everything = data.image_source(str(tmp_path / "s"), "test", "A")
    assert len(everything) == 7  # listed from the manifest: nothing read, nothing decoded
    import brushwork.data.images as images_module

    decoded, fetched = [], []
    real_decode = images_module.decode_image
    monkeypatch.setattr(images_module, "decode_image", lambda b, name, cap: decoded.append(name) or real_decode(b, name, cap))
    from brushwork.data import shard_reader

    real_cat = shard_reader.filesystem

    def counting_fs(url):
        fs, path = real_cat(url)

        class Counting:
            def __getattr__(self, name):
                return getattr(fs, name)

            def cat_file(self, p, start=None, end=None):
                blob = fs.cat_file(p, start=start, end=end)
                fetched.append(len(blob))
                return blob
        return Counting(), path

    monkeypatch.setattr(shard_reader, "filesystem", counting_fs)
    names = {}
    for rank in (0, 1):
        decoded.clear(), fetched.clear()
        share = data.rank_share(everything, rank, 2)
        names[rank] = [item.name for item, img in data.load_images(share)]
        assert len(decoded) == len(share) == len(names[rank])  # its own images, each decoded once
        own = sum(it.shard[0].span(it.shard[1], it.shard[1] + 1) for it in share)
        assert sum(fetched) == own  # and only their bytes fetched
    assert sorted(names[0] + names[1]) == sorted(it.name for it in everything)
    assert len(names[0]) in (3, 4) and not set(names[0]) & set(names[1])


def test_presets_work_after_a_non_editable_install(tmp_path):
    target, source = tmp_path / "site", tmp_path / "source"
    source.mkdir()  # built from a copy: setuptools writes build/ into the tree it builds
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "brushwork", source / "brushwork", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                           "--target", str(target), str(source)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (target / "brushwork" / "presets" / "gatys" / "paper.toml").is_file()
    assert (target / "brushwork" / "evaluation" / "survey" / "page.html").is_file()  # the survey page's template
    clone = tmp_path / "clone"  # the commands without the library beside them
    for folder in ("train", "data_prep", "eval"):
        shutil.copytree(REPO / folder, clone / folder, ignore=shutil.ignore_patterns("samples"))
    assert not (clone / "brushwork").exists()
    env = {**ENV, "PYTHONPATH": str(target)}
    content, style = SAMPLES / "gatys" / "content" / "tubingen.jpg", SAMPLES / "gatys" / "style" / "the_scream.jpg"
    proc = subprocess.run([sys.executable, "train/gatys.py", "--preset", "paper", "--content", str(content),
                           "--style", str(style), "--out", str(tmp_path / "renders"), "--random_vgg", "--image_size", "32",
                           "--iterations", "2"], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "renders" / "tubingen__the_scream.json").read_text())["params"]["normalization"] == "paper"
    shards_root = synth_shards(tmp_path / "d", n_train=4, per_shard=2)
    proc = subprocess.run([sys.executable, "train/cyclegan.py", "--dataset", "monet", "--data", str(shards_root),
                           "--run_dir", str(tmp_path / "run"), "--max_steps", "1", "--ngf", "4", "--ndf", "4",
                           "--n_blocks", "1", "--load_size", "36", "--crop_size", "32", "--num_workers", "0",
                           ], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'dataset = "monet"' in (tmp_path / "run" / "config.toml").read_text()
