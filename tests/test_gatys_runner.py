"""train/gatys.py: pairs, per-pair overrides, batches = one at a time, 2 ranks, kill + rerun, bad images."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, SAMPLES, assert_one_error_line, free_port, kill_tree, run_script
from PIL import Image

pytestmark = pytest.mark.slow
CONTENT, STYLE = SAMPLES / "gatys" / "content", SAMPLES / "gatys" / "style"
SMALL = ["--random_vgg", "--image_size", 32, "--iterations", 5]


def gatys_command(*args, procs=1):
    script = [str(REPO / "train/gatys.py"), *map(str, args)]
    if procs == 1:
        return [sys.executable, *script]
    return [str(os.path.join(os.path.dirname(sys.executable), "accelerate")), "launch", "--multi_gpu",
            "--num_processes", str(procs), "--num_machines", "1", "--main_process_port", str(free_port()),
            "--mixed_precision", "no", "--dynamo_backend", "no", *script]


def run_gatys(*args, procs=1, timeout=300):
    return subprocess.run(gatys_command(*args, procs=procs), capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})


def results(out):
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


def test_two_ranks_render_every_pair_exactly_once(tmp_path):
    out = tmp_path / "out"
    proc = run_gatys("--content", CONTENT, "--style", STYLE, "--out", out, *SMALL, "--batch_size", 2, procs=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = results(out)
    assert len(done) == 12 and all((out / f"{name}.png").is_file() for name in done)
    assert sorted(r["rank"] for r in done.values()) == [0] * 6 + [1] * 6
    assert "all ranks: rendered 12, already done 0, failed 0 of 12 pairs" in proc.stdout
    record = done["tubingen__the_scream"]
    assert record["evaluations"] == len(record["losses"]) > 1
    assert record["params"]["style_weight"] == 1e6 and record["params"]["content_layers"] == ["conv4_2"]
    assert record["size_hw"] == [24, 32] and Image.open(out / "tubingen__the_scream.png").size == (32, 24)
    assert record["losses"][-1] < record["losses"][0]


def test_kill_and_rerun_renders_only_the_missing_pairs(tmp_path):
    out = tmp_path / "out"
    cmd = gatys_command("--content", CONTENT, "--style", STYLE, "--out", out, "--random_vgg", "--image_size", 48,
                        "--iterations", 12, "--batch_size", 1, procs=2)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    while time.time() < deadline and len(list(out.glob("*.json"))) < 3:
        time.sleep(0.02)
    kill_tree(proc.pid)
    proc.wait()
    before = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert 3 <= len(before) < 12, "the job finished before it could be killed"
    proc = run_gatys("--content", CONTENT, "--style", STYLE, "--out", out, "--random_vgg", "--image_size", 48,
                     "--iterations", 12, "--batch_size", 1, procs=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"all ranks: rendered {12 - len(before)}, already done {len(before)}, failed 0" in proc.stdout
    assert len(results(out)) == 12
    assert all((out / name).read_bytes() == data for name, data in before.items())  # untouched
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_batched_runner_equals_one_pair_at_a_time(tmp_path):
    args = ["--content", CONTENT / "tubingen.jpg", "--style", STYLE, *SMALL, "--iterations", 8]
    assert run_gatys(*args, "--out", tmp_path / "b3", "--batch_size", 3).returncode == 0
    assert run_gatys(*args, "--out", tmp_path / "b1", "--batch_size", 1).returncode == 0
    b3, b1 = results(tmp_path / "b3"), results(tmp_path / "b1")
    assert set(b3) == set(b1) and len(b1) == 3
    for name in b1:
        assert b3[name]["batch_size"] == 3 and b1[name]["batch_size"] == 1
        np.testing.assert_allclose(b3[name]["losses"], b1[name]["losses"], rtol=1e-4)
        x3 = np.asarray(Image.open(tmp_path / "b3" / f"{name}.png"), dtype=int)
        x1 = np.asarray(Image.open(tmp_path / "b1" / f"{name}.png"), dtype=int)
        assert np.abs(x3 - x1).max() <= 1


def test_a_corrupt_style_fails_only_its_pairs(tmp_path):
    styles = tmp_path / "styles"
    styles.mkdir()
    shutil.copy(STYLE / "starry_night.jpg", styles)
    (styles / "broken.jpg").write_bytes((STYLE / "shipwreck.jpg").read_bytes()[:500])
    out = tmp_path / "out"
    proc = run_gatys("--content", CONTENT, "--style", styles, "--out", out, *SMALL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rendered 4, already done 0, failed 4" in proc.stdout
    failures = [l for l in proc.stderr.splitlines() if l.startswith("failed:")]
    assert len(failures) == 4 and all("broken.jpg: truncated or corrupt" in l for l in failures)
    assert sorted(results(out)) == sorted(f"{c.stem}__starry_night" for c in CONTENT.glob("*.jpg"))
    # when every pair fails the job fails, with one line saying so
    (styles / "starry_night.jpg").unlink()
    proc = run_gatys("--content", CONTENT, "--style", styles, "--out", tmp_path / "out2", *SMALL)
    assert_one_error_line(proc, "every pair failed (4)")


def test_pairs_file_with_per_pair_overrides(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join([
        json.dumps({"content": str(CONTENT / "tubingen.jpg"), "style": str(STYLE / "the_scream.jpg"), "name": "strong",
                    "style_weight": 1e8}),
        json.dumps({"content": str(CONTENT / "tubingen.jpg"),
                    "style": [str(STYLE / "the_scream.jpg"), str(STYLE / "starry_night.jpg")], "style_blend": [0.7, 0.3],
                    "style_layers": ["conv_1", "conv_2"], "name": "blend"}),
    ]) + "\n")
    out = tmp_path / "out"
    proc = run_gatys("--pairs", pairs, "--out", out, *SMALL, "--preset", "paper")
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = results(out)
    assert done["strong"]["params"]["style_weight"] == 1e8 and done["strong"]["params"]["pooling"] == "avg"
    assert done["strong"]["params"]["content_layers"] == ["conv_5"]  # from the paper preset
    assert done["blend"]["params"]["style_layers"] == ["conv_1", "conv_2"] and len(done["blend"]["styles"]) == 2
    csv = tmp_path / "pairs.csv"
    csv.write_text(f"content,style,style_weight\n{CONTENT / 'dancing.jpg'},{STYLE / 'shipwreck.jpg'},oops\n")
    proc = run_gatys("--pairs", csv, "--out", out, *SMALL)
    assert_one_error_line(proc, "pairs.csv:2: style_weight expects a number, got 'oops'")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"content": "a.jpg", "style": "b.jpg", "pooling": "max"}) + "\n")
    proc = run_gatys("--pairs", bad, "--out", out, *SMALL)
    assert_one_error_line(proc, "'pooling' cannot be set per pair")


def test_missing_vgg_weights_is_one_clear_line(tmp_path):
    proc = run_gatys("--content", CONTENT / "dancing.jpg", "--style", STYLE / "shipwreck.jpg", "--out", tmp_path,
                     "--image_size", 32, "--iterations", 2, "--vgg_weights", tmp_path / "none.pth")
    assert_one_error_line(proc, "none.pth does not exist", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth")


def test_fig3_is_one_batched_job_and_fig4_plots(tmp_path):
    proc = run_script("eval/gatys_figures.py", "fig3", "--content", CONTENT / "tubingen.jpg", "--style",
                      STYLE / "the_scream.jpg", "--out", tmp_path, "--random_vgg", "--image_size", 32, "--iterations", 4,
                      "--ratios", "1e-6,1e-8", "--depths", "3,5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 rendered in one batch" in proc.stdout
    cells = results(tmp_path / "cells")
    assert {r["batch_size"] for r in cells.values()} == {4}
    assert cells["depth3_ratio1e-08"]["params"]["style_layers"] == ["conv_1", "conv_2", "conv_3"]
    assert cells["depth3_ratio1e-08"]["params"]["style_weight"] == 1e8
    fig = Image.open(tmp_path / "fig3.png")
    assert fig.width > 2 * 32 and fig.height > 2 * 24
    proc = run_script("eval/gatys_figures.py", "fig4", tmp_path / "cells" / "depth5_ratio1e-06.json",
                      "--out", tmp_path / "figs")
    assert proc.returncode == 0 and Image.open(tmp_path / "figs" / "fig4.png").size[0] > 300
    assert (tmp_path / "figs" / "fig4_config.toml").is_file()


def test_multiscale_colour_and_snapshots(tmp_path):
    out = tmp_path / "out"
    proc = run_gatys("--content", CONTENT / "tubingen.jpg", "--style", STYLE / "starry_night.jpg", "--out", out,
                     "--random_vgg", "--multiscale", "32,48", "--image_size", 48, "--iterations", 4, "--color", "luminance",
                     "--save_every", 2, "--line_search", "none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = results(out)["tubingen__starry_night"]
    assert record["size_hw"] == [36, 48] and record["params"]["multiscale"] == [32, 48]
    assert record["evaluations"] == 8  # 4 per scale, one evaluation per iteration without line search
    assert Image.open(out / "tubingen__starry_night.png").size == (48, 36)
    snapshots = sorted(p.name for p in (out / "progress").glob("*.png"))
    assert snapshots == [f"tubingen__starry_night_{px}px_{n:05d}.png" for px in (32, 48) for n in (2, 4)]
    # luminance transfer keeps the content's colours: the chrominance equals the content's
    import torch

    from brushwork.gatys import objective as gatys

    content = torch_image(CONTENT / "tubingen.jpg", (36, 48))
    result = torch_image(out / "tubingen__starry_night.png", (36, 48))
    m = gatys._RGB2YIQ
    iq = lambda x: torch.einsum("ij,jhw->ihw", m, x)[1:]
    assert (iq(result) - iq(content)).abs().mean() < 0.02


def torch_image(path, hw):
    import torch

    img = Image.open(path).convert("RGB").resize((hw[1], hw[0]), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255


def test_an_unsafe_pair_name_fails_that_pair_and_nothing_leaves_out(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    good = {"content": str(CONTENT / "tubingen.jpg"), "style": str(STYLE / "the_scream.jpg")}
    pairs.write_text("\n".join(json.dumps({**good, "name": name}) for name in
                               ("../escape", str(tmp_path / "abs"), "ok", "sub/dir", "tab\there")) + "\n")
    out = tmp_path / "work" / "out"
    proc = run_gatys("--pairs", pairs, "--out", out, *SMALL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    failures = [l for l in proc.stderr.splitlines() if l.startswith("failed:")]
    assert len(failures) == 4 and all("is not a safe file name" in l for l in failures)
    assert sorted(p.name for p in out.iterdir()) == ["gatys_config.toml", "ok.json", "ok.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl", "work"]  # nothing written beside out
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["out"]
    assert "rendered 1, already done 0, failed 4 (of 5 pairs)" in proc.stdout


def test_rerun_with_other_settings_is_refused_and_overwrite_re_renders(tmp_path):
    out = tmp_path / "out"
    args = ["--content", CONTENT / "tubingen.jpg", "--style", STYLE / "the_scream.jpg", "--out", out, "--random_vgg",
            "--iterations", 3]
    assert run_gatys(*args, "--image_size", 32).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = run_gatys(*args, "--image_size", 48)
    assert_one_error_line(proc, "holds 1 render(s) made with other settings or inputs (e.g. tubingen__the_scream: "
                                "image_size 32 -> 48)",
                          "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # images and config untouched
    proc = run_gatys(*args, "--image_size", 32)  # the same settings again: nothing to do
    assert proc.returncode == 0 and "already done 1" in proc.stdout
    proc = run_gatys(*args, "--image_size", 48, "--overwrite")
    assert proc.returncode == 0 and "rendered 1" in proc.stdout
    assert Image.open(out / "tubingen__the_scream.png").size == (48, 36)
    assert json.loads((out / "tubingen__the_scream.json").read_text())["params"]["image_size"] == 48
    assert "size = 48" in (out / "gatys_config.toml").read_text()
    proc = run_gatys(*args, "--iterations", 0)
    assert_one_error_line(proc, "--iterations must be between 1 and 1000000; got 0")


def test_contents_that_differ_only_in_extension_render_under_distinct_names(tmp_path):
    contents = tmp_path / "contents"
    contents.mkdir()
    shutil.copy(CONTENT / "tubingen.jpg", contents / "a.jpg")
    Image.open(CONTENT / "dancing.jpg").save(contents / "a.png")
    out = tmp_path / "out"
    proc = run_gatys("--content", contents, "--style", STYLE / "the_scream.jpg", "--out", out, *SMALL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = results(out)
    assert sorted(done) == ["a.jpg__the_scream", "a__the_scream"]  # the same rule as translate and stylize
    assert done["a.jpg__the_scream"]["content"].endswith("a.jpg") and done["a__the_scream"]["content"].endswith("a.png")


def test_a_rerun_with_other_input_files_of_the_same_names_is_refused(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, source in ((first, "tubingen.jpg"), (second, "dancing.jpg")):
        folder.mkdir()
        shutil.copy(CONTENT / source, folder / "photo.jpg")
    out = tmp_path / "out"
    args = ["--style", STYLE / "the_scream.jpg", "--out", out, *SMALL]
    assert run_gatys("--content", first, *args).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = run_gatys("--content", second, *args)  # same names, other files: not "already done"
    assert_one_error_line(proc, "made with other settings or inputs", f"input {first / 'photo.jpg'} -> "
                                                                       f"{second / 'photo.jpg'}", "--overwrite")
    os.utime(first / "photo.jpg", (1, 1))  # the same path, its content replaced since
    proc = run_gatys("--content", first, *args)
    assert_one_error_line(proc, f"input {first / 'photo.jpg'} changed since")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    proc = run_gatys("--content", second, *args, "--overwrite")
    assert proc.returncode == 0 and "rendered 1" in proc.stdout


def test_styles_blended_from_the_command_line_equal_the_pairs_file_blend(tmp_path):
    """--style a,b --style_blend 0.3,0.7: one blended render per content, the same pixels as a pairs-file row."""
    a, b = STYLE / "the_scream.jpg", STYLE / "starry_night.jpg"
    contents = tmp_path / "contents"
    contents.mkdir()
    for name in ("tubingen.jpg", "dancing.jpg"):
        shutil.copy(CONTENT / name, contents / name)
    proc = run_gatys("--content", contents, "--style", f"{a},{b}", "--style_blend", "0.3,0.7", "--out",
                     tmp_path / "flags", *SMALL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = results(tmp_path / "flags")
    assert sorted(found) == ["dancing__the_scream+starry_night", "tubingen__the_scream+starry_night"]
    assert found["tubingen__the_scream+starry_night"]["params"]["style_blend"] == [0.3, 0.7]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"content": str(contents / "tubingen.jpg"), "style": [str(a), str(b)],
                                 "style_blend": [0.3, 0.7], "name": "row"}) + "\n")
    assert run_gatys("--pairs", pairs, "--out", tmp_path / "file", *SMALL).returncode == 0
    flags = np.asarray(Image.open(tmp_path / "flags" / "tubingen__the_scream+starry_night.png"))
    assert np.array_equal(flags, np.asarray(Image.open(tmp_path / "file" / "row.png")))
    other = run_gatys("--content", contents, "--style", f"{a},{b}", "--style_blend", "0.7,0.3", "--out",
                      tmp_path / "other", *SMALL)
    assert other.returncode == 0
    assert not np.array_equal(flags, np.asarray(Image.open(tmp_path / "other" / "tubingen__the_scream+starry_night.png")))
    proc = run_gatys("--content", contents, "--style", f"{a},{b}", "--style_blend", "1,1,1", "--out", tmp_path / "x",
                     *SMALL)
    assert_one_error_line(proc, "2 style image(s) but 3 style_blend weights")


def test_neural_style_options_style_scale_init_image_and_normalized_gradients(tmp_path):
    content, style = CONTENT / "tubingen.jpg", STYLE / "the_scream.jpg"
    base = ["--content", content, "--style", style, "--random_vgg", "--image_size", 48, "--iterations", 3]
    assert run_gatys(*base, "--out", tmp_path / "plain").returncode == 0
    proc = run_gatys(*base, "--out", tmp_path / "scaled", "--style_scale", 2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    init = tmp_path / "init.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(init)
    proc = run_gatys(*base, "--out", tmp_path / "init", "--init_image", init, "--iterations", 1, "--lr", 1e-9,
                     "--line_search", "none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_gatys(*base, "--out", tmp_path / "normed", "--normalize_gradients", "--line_search", "none")
    assert proc.returncode == 0, proc.stderr[-2000:]
    pixels = {k: np.asarray(Image.open(tmp_path / k / "tubingen__the_scream.png"), np.int16)
              for k in ("plain", "scaled", "init", "normed")}
    assert pixels["plain"].shape == pixels["scaled"].shape == pixels["init"].shape == (36, 48, 3)
    assert np.abs(pixels["plain"] - pixels["scaled"]).max() > 0  # the style's Grams came from a larger cut
    assert np.abs(pixels["plain"] - pixels["normed"]).max() > 0
    start = np.asarray(Image.open(init).convert("RGB").resize((48, 36), Image.BICUBIC), np.int16)
    assert np.abs(pixels["init"] - start).mean() < 8  # a tiny step from the init image, not from the content
    record = results(tmp_path / "init")["tubingen__the_scream"]
    assert record["params"]["init_image"] == str(init) and str(init.resolve()) in str(record["inputs"])
    assert results(tmp_path / "scaled")["tubingen__the_scream"]["params"]["style_scale"] == 2
    proc = run_gatys(*base, "--out", tmp_path / "bad", "--normalize_gradients")
    assert_one_error_line(proc, "--normalize_gradients changes the gradient but not the loss", "--line_search none")
    proc = run_gatys(*base, "--out", tmp_path / "tiny", "--style_scale", 0.1)
    assert proc.returncode == 1 and "raise --style_scale" in proc.stderr


def test_earlier_spellings_work_with_a_note_on_the_command_line_and_in_pairs_files(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"content": str(CONTENT / "tubingen.jpg"), "style": str(STYLE / "the_scream.jpg"),
                                 "size": 40}) + "\n")
    proc = run_gatys("--pairs", pairs, "--out", tmp_path / "out", "--random_vgg", "--iterations", 2, "--batch", 1,
                     "--size", 32)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "note: --batch is spelled --batch_size now" in proc.stderr
    assert "note: --size is spelled --image_size now" in proc.stderr
    record = next(iter(results(tmp_path / "out").values()))
    assert record["params"]["image_size"] == 40 and record["size_hw"] == [30, 40]  # the pairs file's "size"
