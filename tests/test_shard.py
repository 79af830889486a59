"""data_prep/shard.py: validation, determinism, atomic resumable writes, job arrays, fsspec outputs."""

import io
import json
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile

import fsspec
import numpy as np
import pytest
from conftest import REPO, SAMPLES, assert_one_error_line, digest_tree, make_synth, run_script
from PIL import Image

from brushwork.core.errors import BrushworkError
from brushwork.data import shards


def outputs(root):
    """Digest of everything a shard job writes except its own resolved config (which names --out)."""
    return {k: v for k, v in digest_tree(root).items() if k != "shard_config.toml"}


def tar_members(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_original_layout_keeps_bytes_and_writes_manifest(tmp_path):
    out = tmp_path / "shards"
    proc = run_script("data_prep/shard.py", SAMPLES / "monet2photo", "--out", out, "--samples_per_shard", 8)
    assert proc.returncode == 0, proc.stderr
    assert "train A 20, B 20; test A 4, B 4" in proc.stdout and "0 rejected" in proc.stdout
    # stdout is not a terminal: plain progress lines with done/total, rate and ETA (the last one: done)
    assert re.search(r"^shard 48/48 img \(100 %\) \| [\d.]+ img/s \| ETA done$", proc.stdout, re.M)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"] == {"train": {"A": {"samples": 20, "shards": 3}, "B": {"samples": 20, "shards": 3}},
                                  "test": {"A": {"samples": 4, "shards": 1}, "B": {"samples": 4, "shards": 1}}}
    assert [s["name"] for s in manifest["shards"]][:4] == ["train/A-000000.tar", "train/A-000001.tar",
                                                            "train/A-000002.tar", "train/B-000000.tar"]
    first = sorted((SAMPLES / "monet2photo" / "trainA").iterdir())[0]
    members = tar_members(out / "train" / "A-000000.tar")
    key = "trainA__" + first.stem
    assert members[f"{key}.jpg"] == first.read_bytes()  # not re-encoded
    meta = json.loads(members[f"{key}.json"])
    assert meta == {"source": f"trainA/{first.name}", "width": 256, "height": 256, "mode": "RGB",
                    "format": "JPEG", "converted": False}
    for s in manifest["shards"]:
        data = (out / s["name"]).read_bytes()
        assert s["bytes"] == len(data) and len(shards.tar_keys(data)) == s["samples"] == len(s["keys"])
        # each sample's byte range, as recorded, is exactly its members: a ranged read parses alone
        for i, key in enumerate(s["keys"]):
            one = data[s["offsets"][i]:s["offsets"][i + 1]]
            assert shards.tar_keys(one) == [key]
        assert s["offsets"][0] == 0 and s["offsets"][-1] <= len(data)
    assert (out / "rejected.jsonl").read_text() == ""
    assert not list(out.rglob("*.tmp"))


def test_two_runs_are_byte_identical(tmp_path):
    src = make_synth(tmp_path / "src", 6)
    for name in ("one", "two"):
        assert run_script("data_prep/shard.py", src, "--out", tmp_path / name / "ds", "--samples_per_shard", 4,
                          "--workers", 2).returncode == 0
    assert outputs(tmp_path / "one" / "ds") == outputs(tmp_path / "two" / "ds")


def bad_input_folder(root):
    root.mkdir(parents=True)
    good = Image.fromarray(np.full((20, 30, 3), 100, np.uint8))
    good.save(root / "good.JPG", quality=90)
    jpeg = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(jpeg, "JPEG")
    (root / "truncated.jpg").write_bytes(jpeg.getvalue()[:300])
    (root / "empty.png").write_bytes(b"")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(root / "cmyk.jpg")
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(root / "deep.png")
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(root / "alpha.png")
    (root / "sub").mkdir()
    (root / "sub" / "readme.jpg").write_text("not an image")
    return root


def test_bad_files_are_listed_and_good_ones_converted(tmp_path):
    a = bad_input_folder(tmp_path / "a")
    b = make_synth(tmp_path / "synth", 2) / "trainB"
    out = tmp_path / "out"
    proc = run_script("data_prep/shard.py", "--a", a, "--b", b, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "train A 4, B 2" in proc.stdout and "3 converted; 3 rejected" in proc.stdout
    rejected = [json.loads(l) for l in (out / "rejected.jsonl").read_text().splitlines()]
    reasons = {r["source"]: r["reason"] for r in rejected}
    assert set(reasons) == {"trainA/empty.png", "trainA/sub/readme.jpg", "trainA/truncated.jpg"}
    assert "empty file" in reasons["trainA/empty.png"] and "not an image" in reasons["trainA/sub/readme.jpg"]
    assert "truncated" in reasons["trainA/truncated.jpg"]
    members = tar_members(out / "train" / "A-000000.tar")
    metas = {json.loads(v)["source"]: json.loads(v) for k, v in members.items() if k.endswith(".json")}
    assert metas["trainA/cmyk.jpg"]["mode"] == "CMYK" and metas["trainA/cmyk.jpg"]["converted"]
    assert metas["trainA/good.JPG"]["converted"] is False
    alpha = Image.open(io.BytesIO(members["trainA__alpha.png"]))
    assert alpha.mode == "RGB" and alpha.getpixel((0, 0)) == (255, 255, 255)
    deep = Image.open(io.BytesIO(members["trainA__deep.png"]))
    assert deep.mode == "RGB" and deep.getpixel((0, 0)) == (255, 255, 255)
    assert Image.open(io.BytesIO(members["trainA__cmyk.jpg"])).mode == "RGB"


def test_empty_or_missing_input_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    b = make_synth(tmp_path / "s", 2) / "trainB"
    proc = run_script("data_prep/shard.py", "--a", tmp_path / "empty", "--b", b, "--out", tmp_path / "o")
    assert_one_error_line(proc, "empty", "no image files found")
    proc = run_script("data_prep/shard.py", tmp_path / "missing", "--out", tmp_path / "o")
    assert_one_error_line(proc, "missing: no such file or folder")
    proc = run_script("data_prep/shard.py", tmp_path / "empty", "--out", tmp_path / "o")
    assert_one_error_line(proc, "no images and no trainA/ trainB/")
    proc = run_script("data_prep/shard.py", SAMPLES / "monet2photo")
    assert_one_error_line(proc, "--out is required")
    assert proc.returncode == 2
    proc = run_script("data_prep/shard.py", "--out", tmp_path / "o")  # no input at all: a usage error, exit 2
    assert_one_error_line(proc, "no input: give a dataset folder/zip")
    assert proc.returncode == 2
    assert not (tmp_path / "o").exists()
    proc = run_script("data_prep/shard.py", SAMPLES / "monet2photo", "--out", tmp_path / "o", "--samples-per-shard", "x")
    assert_one_error_line(proc, "Error parsing --samples_per_shard: invalid literal for int() with base 10: 'x'")


def test_kill_and_rerun_gives_the_uninterrupted_result(tmp_path):
    src = make_synth(tmp_path / "src", 40, n_test=4, size=96)
    args = [sys.executable, str(REPO / "data_prep/shard.py"), str(src), "--samples_per_shard", "1"]
    assert subprocess.run(args + ["--out", str(tmp_path / "whole" / "ds")], capture_output=True).returncode == 0
    killed = tmp_path / "killed" / "ds"
    for _attempt in range(5):
        proc = subprocess.Popen(args + ["--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and len(list((killed / "train").glob("*.tar"))) < 5:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = len(list((killed / "train").glob("*.tar")))
        if not (killed / "manifest.json").exists() and done < 80:
            break
    else:
        pytest.fail("the shard job always finished before it could be killed")
    assert 5 <= done < 80
    proc = subprocess.run(args + ["--out", str(killed)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"{done} already complete" in proc.stdout
    assert not list(killed.rglob("*.tmp"))
    assert outputs(killed) == outputs(tmp_path / "whole" / "ds")


def test_job_array_union_equals_single_job(tmp_path):
    src = make_synth(tmp_path / "src", 7, n_test=3)
    common = [src, "--samples_per_shard", 2]
    assert run_script("data_prep/shard.py", *common, "--out", tmp_path / "single" / "ds").returncode == 0
    array = tmp_path / "array" / "ds"
    seen: set = set()
    for i in range(3):
        proc = run_script("data_prep/shard.py", *common, "--out", array, "--job_index", i, "--num_jobs", 3)
        assert proc.returncode == 0, proc.stderr
        now = {p.relative_to(array).as_posix() for p in array.rglob("*.tar")}
        assert now - seen, f"job {i} wrote nothing"
        seen = now
        assert not (array / "manifest.json").exists()
    assert len(seen) == 12  # train 4+4, test 2+2 shards, each written by exactly one job
    proc = run_script("data_prep/shard.py", *common, "--out", array, "--manifest_only")
    assert proc.returncode == 0, proc.stderr
    assert outputs(array) == outputs(tmp_path / "single" / "ds")


def test_manifest_refuses_missing_or_tampered_shards(tmp_path):
    src = make_synth(tmp_path / "src", 4)
    out = tmp_path / "out"
    proc = run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 2, "--job_index", 0, "--num_jobs", 2)
    assert proc.returncode == 0
    proc = run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 2, "--manifest_only")
    assert_one_error_line(proc, "shard(s) not written yet")
    assert run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 2).returncode == 0
    (out / "train" / "A-000000.tar").write_bytes(b"garbage")
    proc = run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 2, "--manifest_only")
    assert_one_error_line(proc, "train/A-000000.tar: contents do not match", "delete it and rerun")


def test_zip_input_and_file_url_output(tmp_path):
    src = make_synth(tmp_path / "src", 3)
    zpath = tmp_path / "synth2photo.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(src.rglob("*.png")):
            zf.write(p, f"synth2photo/{p.relative_to(src).as_posix()}")
    proc = run_script("data_prep/shard.py", zpath, "--out", f"file://{tmp_path}/zipped")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "zipped" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["A"]["samples"] == 3
    assert manifest["source"]["sha256"] == shards.file_sha256(zpath)
    assert run_script("data_prep/shard.py", src, "--out", tmp_path / "plain").returncode == 0
    tars = lambda root: {k: v for k, v in digest_tree(root, "*.tar").items()}
    assert tars(tmp_path / "zipped") == tars(tmp_path / "plain")  # same samples whether zipped or not


def test_memory_filesystem_output(tmp_path):
    src = make_synth(tmp_path / "src", 3)
    plans = shards.plan_shards(shards.sources_from_layout(src), samples_per_shard=2)
    out = "memory://brushwork-test/ds"
    written, skipped = shards.write_shards(plans, out, shards.ShardOptions())
    assert (written, skipped) == (len(plans), 0)
    assert shards.write_shards(plans, out, shards.ShardOptions()) == (0, len(plans))
    manifest = shards.write_manifest(plans, out, {"input": "test"})
    fs = fsspec.filesystem("memory")
    assert fs.exists("/brushwork-test/ds/train/A-000001.tar")
    assert not [p for p in fs.find("/brushwork-test/ds") if p.endswith(".tmp")]
    assert manifest["splits"]["train"]["B"] == {"samples": 3, "shards": 2}
    first = shards.shard_refs(out, manifest, "train", "A")[0]
    assert first.url == "memory://brushwork-test/ds/train/A-000000.tar"
    from brushwork.data.shard_reader import read_samples

    assert [key for _, key, _, _ in read_samples(first)] == list(first.keys)  # ranged reads on fsspec URLs


def test_max_side_downscales_only(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    Image.new("RGB", (400, 200), (10, 20, 30)).save(a / "big.png")
    Image.new("RGB", (50, 40), (10, 20, 30)).save(a / "small.png")
    Image.new("RGB", (50, 40)).save(b / "x.png")
    assert run_script("data_prep/shard.py", "--a", a, "--b", b, "--out", tmp_path / "o", "--max_side", 100).returncode == 0
    members = tar_members(tmp_path / "o" / "train" / "A-000000.tar")
    assert Image.open(io.BytesIO(members["trainA__big.png"])).size == (100, 50)
    assert members["trainA__small.png"] == (a / "small.png").read_bytes()


def test_plan_respects_sample_and_byte_limits():
    srcs = [shards.Source("train", "A", f"trainA/{i:02d}.jpg", f"/x/{i}", 100) for i in range(10)]
    by_count = shards.plan_shards(srcs, samples_per_shard=4)
    assert [len(p.sources) for p in by_count] == [4, 4, 2]
    by_bytes = shards.plan_shards(srcs, samples_per_shard=100, max_shard_bytes=350)
    assert [len(p.sources) for p in by_bytes] == [3, 3, 3, 1]
    jobs = [shards.job_shards(by_bytes, i, 3) for i in range(3)]
    assert sorted(p.index for j in jobs for p in j) == [0, 1, 2, 3]
    with pytest.raises(BrushworkError, match="job_index must be in 0..2"):
        shards.job_shards(by_bytes, 3, 3)
    assert len({p.fingerprint for p in by_count}) == 1 and by_count[0].fingerprint != by_bytes[0].fingerprint


# ---------------------------------------------------------------------------------------------
# A folder is described by what made it


def test_rerun_with_other_settings_or_input_is_refused_and_overwrite_rebuilds(tmp_path):
    src = make_synth(tmp_path / "src", 6, n_test=2)
    out = tmp_path / "out"
    assert run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 4).returncode == 0
    before = outputs(out)
    proc = run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 2)
    assert_one_error_line(proc, "holds shards of other input or settings (samples_per_shard 4 -> 2)", "--overwrite")
    assert outputs(out) == before  # nothing touched
    for i in (6, 7):  # two more images
        shutil.copy(src / "trainA" / "000000.png", src / "trainA" / f"{i:06d}.png")
    proc = run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 4)
    assert_one_error_line(proc, "2 input image(s) added", "--overwrite")
    assert outputs(out) == before
    proc = run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 4, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["A"]["samples"] == 8
    keys = [k for p in (out / "train").glob("A-*.tar") for k in tar_members(p) if k.endswith(".png")]
    assert len(keys) == len(set(keys)) == 8  # none missing, none twice
    proc = run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 4)  # same again: nothing to do
    assert proc.returncode == 0 and "wrote 0 shard(s)" in proc.stdout


def test_out_of_range_limits_are_refused_before_any_work(tmp_path):
    src = make_synth(tmp_path / "src", 2)
    proc = run_script("data_prep/shard.py", src, "--out", tmp_path / "o", "--max_side", -1)
    assert_one_error_line(proc, "--max_side must be between 0 and 65535; got -1")
    proc = run_script("data_prep/shard.py", src, "--out", tmp_path / "o", "--max_pixels", 0)
    assert_one_error_line(proc, "--max_pixels must be at least 1; got 0")
    assert not (tmp_path / "o").exists()


def test_every_image_rejected_fails_the_job(tmp_path):
    src = make_synth(tmp_path / "src", 3)
    proc = run_script("data_prep/shard.py", src, "--out", tmp_path / "o", "--max_pixels", 100)
    line = assert_one_error_line(proc, "every image of trainA, trainB", "rejected.jsonl")
    assert proc.returncode == 1 and "--max_pixels" in line
    assert not (tmp_path / "o" / "manifest.json").exists()
    reasons = [json.loads(l)["reason"] for l in (tmp_path / "o" / "rejected.jsonl").read_text().splitlines()]
    assert len(reasons) == 10 and "rerun with --max_pixels 1024 or more" in reasons[0]


def test_keys_are_unique_across_shards(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for name in ("a.b c.png", "a_b_c.png", "zz.png"):
        Image.new("RGB", (8, 8), (len(name), 0, 0)).save(a / name)
    Image.new("RGB", (8, 8)).save(b / "x.png")
    proc = run_script("data_prep/shard.py", "--a", a, "--b", b, "--out", tmp_path / "o", "--samples_per_shard", 1)
    assert proc.returncode == 0, proc.stderr
    keys = [k.rsplit(".", 1)[0] for p in sorted((tmp_path / "o" / "train").glob("A-*.tar")) for k in tar_members(p)
            if k.endswith(".png")]
    assert len(keys) == 3 == len(set(keys)) and "trainA__zz" in keys
    assert all(k.startswith("trainA__a_b_c-") for k in keys if k != "trainA__zz")


def test_damaged_inputs_and_records_are_handled_one_by_one(tmp_path):
    src = make_synth(tmp_path / "src", 3)
    zpath = tmp_path / "ds.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(src.rglob("*.png")):
            zf.write(p, f"ds/{p.relative_to(src).as_posix()}")
    raw = bytearray(zpath.read_bytes())
    with zipfile.ZipFile(zpath) as zf:  # flip a byte inside one member's data: a bad CRC
        info = zf.getinfo("ds/trainA/000001.png")
    raw[info.header_offset + 30 + len(info.filename) + 40] ^= 0xFF
    zpath.write_bytes(bytes(raw))
    proc = run_script("data_prep/shard.py", zpath, "--out", tmp_path / "z")
    assert proc.returncode == 0, proc.stderr
    rejected = (tmp_path / "z" / "rejected.jsonl").read_text()
    assert "trainA/000001.png" in rejected and "damaged zip member" in rejected
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(zpath.read_bytes()[:600])
    proc = run_script("data_prep/shard.py", truncated, "--out", tmp_path / "c")
    assert_one_error_line(proc, "cut.zip: damaged or truncated zip archive", "download it again")
    (src / "trainA" / "loop.png").symlink_to(src / "trainA" / "loop.png")
    out = tmp_path / "o"
    assert run_script("data_prep/shard.py", src, "--out", out).returncode == 0
    assert "symlink loop" in (out / "rejected.jsonl").read_text()
    part = next((out / ".parts").glob("train-A-*.json"))
    part.write_text("{ damaged")
    proc = run_script("data_prep/shard.py", src, "--out", out)
    assert proc.returncode == 0 and "wrote 1 shard(s)" in proc.stdout  # the shard behind it is simply rewritten


def downgrade_to_format_2(out):
    """The folder as the previous version wrote it: no keys/offsets, format 2 everywhere."""
    manifest = json.loads((out / "manifest.json").read_text())
    for s in manifest["shards"]:
        del s["keys"], s["offsets"]
    manifest["format"] = 2
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    plan = json.loads((out / ".parts" / "plan.json").read_text())
    (out / ".parts" / "plan.json").write_text(json.dumps({**plan, "format": 2, "fingerprint": "old"}) + "\n")
    for part in (out / ".parts").glob("*-*.json"):
        record = json.loads(part.read_text())
        del record["keys"], record["offsets"]
        part.write_text(json.dumps({**record, "plan": "old"}, sort_keys=True))


def test_a_format_2_folder_gets_one_line_and_reindex_adds_the_offsets_keeping_the_tars(tmp_path):
    src = make_synth(tmp_path / "src", 5)
    out = tmp_path / "shards"
    assert run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 2).returncode == 0
    current = json.loads((out / "manifest.json").read_text())
    tars = digest_tree(out, "*.tar")
    downgrade_to_format_2(out)
    proc = run_script("train/cyclegan.py", "--data", out, "--run_dir", tmp_path / "run", "--max_steps", 1)
    assert_one_error_line(proc, "format 2) list no sample offsets", f"data_prep/shard.py --reindex --out {out}")
    proc = run_script("data_prep/shard.py", "--reindex", "--out", out)
    assert proc.returncode == 0 and "added sample offsets to 8 shard(s)" in proc.stdout, proc.stderr
    assert digest_tree(out, "*.tar") == tars  # the tars are kept byte for byte
    assert json.loads((out / "manifest.json").read_text())["shards"] == current["shards"]
    proc = run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 2)  # the same input again
    assert proc.returncode == 0 and "wrote 0 shard(s), 8 already complete" in proc.stdout, proc.stderr
    assert "already current" in run_script("data_prep/shard.py", "--reindex", "--out", out).stdout


def test_overwrite_deletes_only_what_shard_wrote_and_inputs_inside_out_are_refused(tmp_path):
    src = make_synth(tmp_path / "src", 4)
    out = tmp_path / "shards"
    assert run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 2).returncode == 0
    (out / "train" / "annotations.json").write_text('{"mine": true}')  # the user's files beside the shards
    (out / "train" / "notes.tar").write_bytes(b"my archive")
    proc = run_script("data_prep/shard.py", src, "--out", out, "--samples_per_shard", 3, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert (out / "train" / "annotations.json").read_text() == '{"mine": true}'
    assert (out / "train" / "notes.tar").read_bytes() == b"my archive"
    assert sorted(p.name for p in (out / "train").glob("A-*.tar")) == ["A-000000.tar", "A-000001.tar"]  # 4 by 3
    # --out the parent of the input folders (named train/ and test/): refused before anything is written
    mine = tmp_path / "mine"
    for folder in ("train", "test"):
        (mine / folder).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(mine / folder / f"{i}.png")
    (mine / "train" / "annotations.json").write_text("{}")
    before = sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*"))
    proc = run_script("data_prep/shard.py", "--a", mine / "train", "--b", mine / "test", "--out", mine, "--overwrite")
    assert_one_error_line(proc, "lies inside --out", "choose an --out outside the inputs")
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == before


def test_a_plain_folder_of_photos_or_one_of_a_b_is_one_domain(tmp_path):
    photos = make_synth(tmp_path / "s", 3) / "trainB"
    proc = run_script("data_prep/shard.py", photos, "--out", tmp_path / "plain")
    assert proc.returncode == 0, proc.stderr
    assert "one domain, B (photos)" in proc.stdout and "(train B 3)" in proc.stdout
    manifest = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert manifest["splits"] == {"train": {"B": {"samples": 3, "shards": 1}}}
    proc = run_script("data_prep/shard.py", "--a", photos, "--out", tmp_path / "only_a")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads((tmp_path / "only_a" / "manifest.json").read_text())["splits"]["train"]) == {"A"}
