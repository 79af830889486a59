"""eval/translate.py: full resolution (pad to a multiple of 4, crop back), names kept, ranks split the work."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, free_port, run_script
from PIL import Image

from brushwork.evaluation.translate import pad_for_network
from brushwork.models.networks import ResnetGenerator, init_weights


@pytest.fixture
def generator_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "G.pth"
    torch.save(init_weights(ResnetGenerator(ngf=8, n_blocks=2)).state_dict(), path)
    return path


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, (w, h) in {"a.jpg": (37, 29), "b.png": (40, 40), "sub/c.jpg": (37, 29), "d.jpg": (64, 18)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_pad_crop_round_trip():
    x = torch.rand(1, 3, 29, 37)
    padded, (h, w) = pad_for_network(x)
    assert padded.shape[-2:] == (32, 40) and (h, w) == (29, 37)
    assert torch.equal(padded[..., :29, :37], x)


def test_full_resolution_and_names(tmp_path, generator_file, inputs):
    out = tmp_path / "out"
    proc = run_script("eval/translate.py", generator_file, "--input", inputs, "--out", out, "--batch_size", 2)
    assert proc.returncode == 0, proc.stderr
    got = {p.relative_to(out).as_posix(): Image.open(p).size for p in out.rglob("*.png")}
    assert got == {"a.png": (37, 29), "b.png": (40, 40), "sub/c.png": (37, 29), "d.png": (64, 18)}
    proc = run_script("eval/translate.py", generator_file, "--input", inputs, "--out", out)
    assert "4 already there" in proc.stdout  # a rerun skips finished images


@pytest.mark.slow
def test_two_ranks_split_the_images(tmp_path, generator_file, inputs):
    single = tmp_path / "single"
    assert run_script("eval/translate.py", generator_file, "--input", inputs, "--out", single).returncode == 0
    launcher = str(Path(sys.executable).parent / "accelerate")
    proc = subprocess.run([launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
                           str(REPO / "eval/translate.py"), str(generator_file), "--input", str(inputs),
                           "--out", str(tmp_path / "split")], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rank 0: translate: 2 image(s)" in proc.stdout and "rank 1: translate: 2 image(s)" in proc.stdout
    for p in single.rglob("*.png"):
        a = np.asarray(Image.open(p), dtype=int)
        b = np.asarray(Image.open(tmp_path / "split" / p.relative_to(single)), dtype=int)
        assert np.abs(a - b).max() <= 1


def test_tiny_images_are_translated_and_overwrite_replaces(tmp_path, generator_file):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, (w, h) in {"one.png": (1, 1), "four.png": (4, 4), "thin.png": (3, 17)}.items():
        Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(folder / name)
    out = tmp_path / "out"
    proc = run_script("eval/translate.py", generator_file, "--input", folder, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert {p.name: Image.open(p).size for p in out.glob("*.png")} == {"one.png": (1, 1), "four.png": (4, 4),
                                                                        "thin.png": (3, 17)}
    before = (out / "four.png").stat().st_mtime_ns
    proc = run_script("eval/translate.py", generator_file, "--input", folder, "--out", out)
    assert "3 already there" in proc.stdout and (out / "four.png").stat().st_mtime_ns == before
    proc = run_script("eval/translate.py", generator_file, "--input", folder, "--out", out, "--overwrite")
    assert "translate: 3 image(s)" in proc.stdout and (out / "four.png").stat().st_mtime_ns != before
    assert (out / "translate_config.toml").is_file()


def test_test_time_scale(tmp_path, generator_file, inputs):
    out = tmp_path / "out"
    proc = run_script("eval/translate.py", generator_file, "--input", inputs, "--out", out, "--load_size", 20)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out / "a.png").size == (20, 16) and Image.open(out / "d.png").size == (20, 6)  # scale_width
    proc = run_script("eval/translate.py", generator_file, "--input", inputs, "--out", tmp_path / "o2",
                      "--load_size", 24, "--preprocess", "scale_shorter_side")
    assert Image.open(tmp_path / "o2" / "a.png").size == (31, 24)


@pytest.mark.slow
def test_weights_are_named_and_the_newest_checkpoint_is_used(tmp_path):
    from conftest import run_train, synth_shards

    shards = synth_shards(tmp_path / "d", n_train=8, per_shard=4)
    run = tmp_path / "run"
    assert run_train(run, shards, "--max_steps", 2, "--num_workers", 0).returncode == 0
    assert run_train(run, shards, "--max_steps", 5, "--num_workers", 0, "--resume", "auto",
                     "--checkpoint_every", 100).returncode == 0  # resumed: export/ and the newest step move to 5
    photos = tmp_path / "d" / "src" / "testA"
    proc = run_script("eval/translate.py", run, "--input", photos, "--out", tmp_path / "new")
    assert f"weights: G_A of {run} at step 5 ({run}/checkpoints/step_00000005/models.pt)" in proc.stdout
    proc = run_script("eval/translate.py", run, "--step", 2, "--input", photos, "--out", tmp_path / "old")
    assert f"at step 2 ({run}/checkpoints/step_00000002/models.pt)" in proc.stdout
    differs = any(not np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(tmp_path / "old" / p.name)))
                  for p in (tmp_path / "new").glob("*.png"))
    assert differs  # step 2 and step 5 are different weights
    proc = run_script("eval/translate.py", run / "export" / "G_A.pth", "--input", photos, "--out", tmp_path / "exp")
    assert "(exported at step 5)" in proc.stdout
    proc = run_script("eval/translate.py", run, "--input", photos, "--out", tmp_path / "page", "--results_html",
                      "--reconstruct")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "page" / "index.html").read_text()
    assert page.count("<tr>") == 1 + 4 and "<th>reconstructed</th>" in page and ".page/input/" in page
    assert len(list((tmp_path / "page" / ".page" / "reconstructed").glob("*.png"))) == 4
    # the page's own images are never taken for translations: the survey keys and FID count 4, not 12
    proc = run_script("eval/survey.py", "build", "--fakes", tmp_path / "page", "--reals", photos, "--out",
                      tmp_path / "survey", "--n", 4, "--image_size", 32)
    assert proc.returncode == 0, proc.stderr
    key = json.loads((tmp_path / "survey_answers" / "key.json").read_text())
    fakes = sorted(Path(v["source"]).relative_to(tmp_path / "page").as_posix() for v in key["images"].values()
                   if v["truth"] == "fake")
    assert fakes == sorted(p.name for p in (tmp_path / "page").glob("*.png"))  # the 4 translations, nothing else
    proc = run_script("eval/fid.py", "--fakes", tmp_path / "page", "--reals", photos, "--random_inception")
    assert proc.returncode == 0 and "(4 fake, 4 real)" in proc.stdout, proc.stderr


def test_inputs_that_differ_only_in_extension_keep_distinct_outputs(tmp_path, generator_file):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.jpg", "a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(folder / name)
    out = tmp_path / "out"
    proc = run_script("eval/translate.py", generator_file, "--input", folder, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "3 image(s) into" in proc.stdout
    # the documented rule: a.png keeps a.png, a.jpg becomes a.jpg.png; names that do not collide are as before
    assert sorted(p.name for p in out.glob("*.png")) == ["a.jpg.png", "a.png", "b.png"]
    from brushwork.data.stream import image_source

    assert {it.name: it.path.rsplit("/", 1)[-1] for it in image_source(str(folder))} == {
        "a.jpg.png": "a.jpg", "a.png": "a.png", "b.png": "b.jpg"}


def test_a_rerun_with_other_settings_weights_or_inputs_is_refused_and_overwrite_re_renders(tmp_path, generator_file,
                                                                                           inputs):
    from conftest import assert_one_error_line

    out = tmp_path / "out"
    args = [generator_file, "--input", inputs, "--out", out]
    assert run_script("eval/translate.py", *args).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*.png")}
    proc = run_script("eval/translate.py", *args)  # the same again: nothing to do
    assert proc.returncode == 0 and "4 already there" in proc.stdout
    proc = run_script("eval/translate.py", *args, "--load_size", 64)
    assert_one_error_line(proc, "holds 4 output(s) this run would not write as they are", "load_size None -> 64",
                          "--overwrite")
    torch.manual_seed(1)
    other = tmp_path / "other.pth"
    torch.save(init_weights(ResnetGenerator(ngf=8, n_blocks=2)).state_dict(), other)
    proc = run_script("eval/translate.py", other, "--input", inputs, "--out", out)
    assert_one_error_line(proc, "holds 4 output(s)", "weights '")
    os.utime(inputs / "b.png", (1, 1))  # an input replaced since (its mtime moved)
    proc = run_script("eval/translate.py", *args)
    assert_one_error_line(proc, "holds 1 output(s)", "b.png: its input changed since")
    assert {p: p.read_bytes() for p in out.rglob("*.png")} == before  # nothing touched by the refusals
    proc = run_script("eval/translate.py", *args, "--overwrite")
    assert proc.returncode == 0 and "4 image(s) into" in proc.stdout
    # a file the tool did not write is the user's: refused, not skipped as done and not replaced
    user = tmp_path / "user_out"
    user.mkdir()
    (user / "a.png").write_bytes(b"the user's own file")
    proc = run_script("eval/translate.py", generator_file, "--input", inputs, "--out", user)
    assert_one_error_line(proc, "a.png: not written by translate")
    assert (user / "a.png").read_bytes() == b"the user's own file"


def original_generator(state: dict):
    """The original code's ResnetGenerator (../shared/reference), loading our weights as they are."""
    import importlib.util

    from conftest import SHARED

    path = SHARED / "reference" / "junyanz" / "models" / "networks.py"
    if not path.exists():
        pytest.skip("../shared/reference not present")
    spec = importlib.util.spec_from_file_location("junyanz_networks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    n_blocks = len({k.split(".")[1] for k in state if k.startswith("model.") and ".conv_block." in k})
    net = module.ResnetGenerator(3, 3, ngf=state["model.1.weight"].shape[0], use_dropout=False, n_blocks=n_blocks,
                                 norm_layer=module.get_norm_layer("instance"))
    net.load_state_dict(state, strict=True)
    return net.eval()


def test_translated_pixels_are_the_generator_applied_at_full_resolution(tmp_path, generator_file, inputs):
    """Pixels, not sizes: each output is the generator (ours, and the original code's loading the same file)
    applied to the input, odd sizes padded and cropped back."""
    out = tmp_path / "out"
    proc = run_script("eval/translate.py", generator_file, "--input", inputs, "--out", out, "--batch_size", 2)
    assert proc.returncode == 0, proc.stderr
    state = torch.load(generator_file, weights_only=True)
    ours = ResnetGenerator(ngf=8, n_blocks=2)
    ours.load_state_dict(state)
    original = original_generator(state)
    for name in ("a.jpg", "d.jpg", "sub/c.jpg"):  # 37x29 and 64x18: both need padding
        arr = np.asarray(Image.open(inputs / name).convert("RGB"))
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        padded, (h, w) = pad_for_network(x)
        with torch.no_grad():
            expected = ours.eval()(padded)[..., :h, :w]
            by_original = original(padded)[..., :h, :w]
        assert (expected - by_original).abs().max() < 1e-5  # the same network as the original code's
        pixels = ((expected[0] + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        got = np.asarray(Image.open((out / name).with_suffix(".png")))
        assert got.shape == arr.shape
        assert np.abs(got.astype(int) - pixels.astype(int)).max() <= 1  # float rounding at most
        assert np.abs(got.astype(int) - arr.astype(int)).mean() > 5  # and not the input passed through
