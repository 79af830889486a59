"""Bad input is the normal case: a table of faults through the real command lines.

For each: the exit code (non-zero where the job cannot proceed, 0 where it goes on and lists what it
skipped), exactly one error line naming the thing and the fix, no traceback, nothing written outside
the case's output folder, and every earlier output byte-identical. Plus the write paths under a full
disk, and the debug switch.
"""

import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, SAMPLES, TINY_GAN, TRAIN_ENV, make_synth, run_script, run_train, synth_shards
from PIL import Image

pytestmark = pytest.mark.slow


@dataclass
class Case:
    name: str
    argv: list
    rc: int                     # expected exit code
    needles: tuple = ()         # in the one error line (rc != 0) or in stdout+stderr (rc == 0)
    out: str | tuple | None = None  # the only place(s) the case may write (relative to the workspace)
    stdin_env: dict = field(default_factory=dict)
    fsize_kb: int | None = None     # a file-size limit (ulimit -f) for the case's process


def digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "link"
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace with good outputs of every stage, and the bad inputs the cases use."""
    w = tmp_path_factory.mktemp("faults")
    shards = synth_shards(w / "data", n_train=6, per_shard=4)
    assert run_train(w / "run", shards, "--max_steps", 2, "--num_workers", 0).returncode == 0
    content, style = SAMPLES / "gatys" / "content" / "tubingen.jpg", SAMPLES / "gatys" / "style" / "the_scream.jpg"
    assert run_script("train/gatys.py", "--content", content, "--style", style, "--out", w / "renders",
                      "--random_vgg", "--image_size", 32, "--iterations", 2).returncode == 0
    photos = w / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 40, 3), 50 * i, np.uint8)).save(photos / f"p{i}.png")
    shutil.copytree(photos, w / "real_photos")
    assert run_script("eval/survey.py", "build", "--fakes", photos, "--reals", w / "real_photos", "--out", w / "survey",
                      "--n", 2,
                      "--image_size", 32).returncode == 0
    (w / "bad").mkdir()
    bad = w / "bad"
    (bad / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (bad / "only_corrupt").mkdir()
    (bad / "only_corrupt" / "x.jpg").write_bytes(b"\xff\xd8 broken")
    (bad / "tiny_real").mkdir()
    Image.new("RGB", (1, 1)).save(bad / "tiny_real" / "one.png")
    (bad / "pairs.bin").write_bytes(bytes(range(256)) * 4)
    (bad / "escape.jsonl").write_text(json.dumps({"content": str(content), "style": str(style), "name": "../escaped"}) + "\n")
    (bad / "absolute.jsonl").write_text(json.dumps({"content": str(content), "style": str(style),
                                                    "name": str(w / "abs_escape")}) + "\n")
    (bad / "badrow.jsonl").write_text('{"content": "a.jpg"\n')
    (bad / "response.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" * 10)
    (bad / "notakey.json").write_text('{"hello": 1}')
    torch.save([1, 2, 3], bad / "list.pth")
    torch.save(torch.zeros(4), bad / "tensor.pth")
    src = make_synth(w / "src", 4, n_test=1, size=16)
    with zipfile.ZipFile(bad / "ds.zip", "w") as zf:
        for p in sorted(src.rglob("*.png")):
            zf.write(p, f"ds/{p.relative_to(src).as_posix()}")
    (bad / "cut.zip").write_bytes((bad / "ds.zip").read_bytes()[:700])
    run_copy = w / "run_wrong_keys"  # a checkpoint whose models.pt has other keys
    shutil.copytree(w / "run", run_copy)
    models = run_copy / "checkpoints" / "step_00000002" / "models.pt"
    state = torch.load(models, weights_only=True)
    state["G_A"] = {"model.1.weight": torch.zeros(1)}
    torch.save(state, models)
    from brushwork.models.style_net import TransformerNet

    (w / "fast").mkdir()
    torch.save(TransformerNet(4, 1).state_dict(), w / "fast" / "net.pth")
    (w / "fast" / "old.onnx").write_bytes(b"an earlier export")
    from brushwork.models.networks import ResnetGenerator

    nan_state = ResnetGenerator(ngf=8, n_blocks=2).state_dict()
    nan_state["model.1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(nan_state, bad / "nan_G.pth")
    second_sweep(w, shards, content, style)
    return w


def edited_copy(src, dst, edit=None, name="manifest.json"):
    """A copy of the folder ``src`` whose JSON file ``name`` went through ``edit``."""
    shutil.copytree(src, dst)
    if edit is not None:
        path = dst / name
        value = json.loads(path.read_text())
        result = edit(value)  # edits in place (None) or returns a new value
        path.write_text(json.dumps(value if result is None else result))
    return dst


def second_sweep(w, shards, content, style):
    """Inputs of the second sweep: damaged records, colliding and odd names, earlier outputs to rerun into."""
    def image(path, value, size=(36, 36)):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((*size[::-1], 3), value, np.uint8)).save(path)

    image(w / "dup" / "a.png", 80)
    image(w / "dup" / "a.jpg", 160)
    image(w / "odd" / ("x" * 236 + ".png"), 90)
    image(w / "odd" / "ok.png", 30)
    (w / "odd" / "._ok.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (w / "odd" / "a0.png").write_bytes(b"")
    for d in "AB":
        for i in range(2):
            image(w / "fifo_src" / f"train{d}" / f"{i}.png", 40 * i)
    os.mkfifo(w / "fifo_src" / "trainB" / "fifo.jpg")
    for i in range(3):
        image(w / "mine" / "train" / f"x{i}.png", 20 * i)
        image(w / "mine" / "test" / f"y{i}.png", 30 * i)
    (w / "mine" / "train" / "annotations.json").write_text('{"mine": true}')
    # keys: "a b" and "a_b" sanitise alike and get hash suffixes; a third file is named like one of those
    image(w / "keyclash" / "trainA" / "a b.png", 10)
    image(w / "keyclash" / "trainA" / "a_b.png", 20)
    suffix = hashlib.sha1(b"trainA/a b.png").hexdigest()[:8]
    image(w / "keyclash" / "trainA" / f"a_b-{suffix}.png", 30)
    image(w / "keyclash" / "trainB" / "b.png", 40)
    with zipfile.ZipFile(w / "bad" / "dupmembers.zip", "w") as zf:
        for name in ("ds/trainA/a.png", "ds/trainA/a.png", "ds/trainB/b.png"):
            buf = io.BytesIO()
            Image.new("RGB", (16, 16), (9, 9, 9)).save(buf, "PNG")
            zf.writestr(name, buf.getvalue())
    image(w / "sidecar" / "trainA" / "a.png", 10)
    image(w / "sidecar" / "trainB" / "b.png", 20)
    (w / "sidecar.source.json").write_text("<html>not json")
    image(w / "long_src" / "trainA" / ("k" * 248 + ".png"), 10)
    image(w / "long_src" / "trainB" / "b.png", 20)
    assert run_script("data_prep/shard.py", w / "long_src", "--out", w / "long_shards").returncode == 0
    # manifests edited or damaged by hand
    for name, edit in (("m_samples_str", lambda m: m["shards"][0].update(samples="4")),
                       ("m_samples_missing", lambda m: m["shards"][0].pop("samples") and None),
                       ("m_samples_list", lambda m: m["shards"][0].update(samples=[4])),
                       ("m_samples_huge", lambda m: m["shards"][0].update(samples=1e30)),
                       ("m_samples_negative", lambda m: m["shards"][0].update(samples=-4)),
                       ("m_escape", lambda m: m["shards"][0].update(name="../other/train/A-000000.tar")),
                       ("m_twice", lambda m: m["shards"].append(m["shards"][0])),
                       ("m_not_object", lambda m: [m])):
        edited_copy(shards, w / "manifests" / name, edit)
    cut = edited_copy(shards, w / "manifests" / "m_short_tar")
    tar = cut / "train" / "A-000000.tar"
    tar.write_bytes(tar.read_bytes()[:1024])
    # run dirs edited or damaged by hand
    step = Path("checkpoints") / "step_00000002"
    shutil.copytree(w / "run" / step, edited_copy(w / "run", w / "run_step_final") / "checkpoints" / "step_final")
    torch.save({"a": 1}, edited_copy(w / "run", w / "run_rank_part") / step / "rank_00000.pt")
    edited_copy(w / "run", w / "run_meta_type", lambda m: m.update(step="2"), name=step / "meta.json")
    edited_copy(w / "run", w / "run_meta_missing", lambda m: m.pop("images_seen") and None, name=step / "meta.json")
    (edited_copy(w / "run", w / "run_latest_other") / "checkpoints" / "latest").write_text(
        "../../run/checkpoints/step_00000002\n")
    nan_run = edited_copy(w / "run", w / "run_nan")
    models = torch.load(nan_run / step / "models.pt", weights_only=True)
    models["G_A"]["model.1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(models, nan_run / step / "models.pt")
    cfg = edited_copy(w / "run", w / "run_cfg_types") / "config.toml"
    cfg.write_text(cfg.read_text().replace('data = "', 'data = 5\nold_data = "', 1))
    assert run_script("train/fast_style.py", "--style", style, "--data", shards, "--run_dir", w / "fast_run",
                      "--random_vgg", "--max_steps", 2, "--size", 32, "--batch_size", 2, "--width", 4,
                      "--num_workers", 0).returncode == 0
    cfg = edited_copy(w / "fast_run", w / "fast_cfg_types") / "config.toml"
    cfg.write_text(cfg.read_text().replace("style = [", "style = 3\nold_style = [", 1))
    synth_shards(w / "data2", n_train=6, per_shard=3)
    # earlier outputs a rerun with other settings or inputs must not pass as done
    assert run_script("eval/translate.py", w / "run", "--input", w / "photos", "--out", w / "translated").returncode == 0
    assert run_script("eval/stylize.py", w / "fast" / "net.pth", "--input", w / "photos", "--out",
                      w / "stylized").returncode == 0
    image(w / "other_content" / "tubingen.jpg", 200, (48, 40))
    image(w / "plus" / "a+b.png", 70)
    (w / "bad" / "bom.jsonl").write_text("\ufeff" + json.dumps({"content": str(content), "style": str(style)}) + "\n",
                                         encoding="utf-8")
    image(w / "with_index" / "p.png", 60)
    image(w / "with_index" / "index_inputs" / "q.png", 70)


def cases(w):
    run, data, renders, photos, bad = "run", "data/shards", "renders", "photos", "bad"
    content = SAMPLES / "gatys" / "content" / "tubingen.jpg"
    style = SAMPLES / "gatys" / "style" / "the_scream.jpg"
    train = ["train/cyclegan.py", "--dataset", "synth", "--data", data, *TINY_GAN, "--num_workers", 0]
    return [
        # training
        Case("train batch 0", [*train, "--run_dir", "t1", "--batch_size", 0], 2, ("--batch_size must be between 1",)),
        Case("train max_steps -3", [*train, "--run_dir", "t2", "--max_steps", -3], 2, ("--max_steps must be at least 1",)),
        Case("train max_steps 0", [*train, "--run_dir", "t3", "--max_steps", 0], 2, ("--max_steps must be at least 1",)),
        Case("train used run dir", [*train, "--run_dir", run, "--max_steps", 1], 1,
             ("has checkpoints up to step 2", "--resume auto to continue, or another --run_dir")),
        Case("train negative lr", [*train, "--run_dir", "t4", "--lr", -1], 2, ("--lr must be at least 0",)),
        Case("train crop > load", [*train, "--run_dir", "t5", "--load_size", 40, "--crop_size", 64], 2,
             ("--crop_size 64 is larger than --load_size 40",)),
        Case("train fp8", [*train, "--run_dir", "t6", "--mixed_precision", "fp8"], 2, ("invalid choice", "--mixed_precision")),
        Case("train fp16 on cpu", [*train, "--run_dir", "t7", "--mixed_precision", "fp16"], 2, ("fp16 needs a GPU",)),
        Case("train resume nowhere", [*train, "--run_dir", "t8", "--resume", "nowhere"], 1, ("not a checkpoint folder",)),
        Case("train missing data", ["train/cyclegan.py", "--data", "nothing_here", "--run_dir", "t9"], 1,
             ("no manifest.json", "run data_prep/shard.py")),
        Case("train unknown preprocess", [*train, "--run_dir", "t10", "--preprocess", "stretch"], 2,
             ("invalid choice", "--preprocess", "resize_and_crop")),
        Case("train tracker missing", [*train, "--run_dir", "t11", "--log_with", "wandb"], 2,
             ("--log_with wandb: the wandb package is not installed",)),
        Case("train wrong checkpoint keys", [*train, "--run_dir", "run_wrong_keys", "--resume", "auto"], 1,
             ("models.pt['G_A']", "does not fit this network")),
        Case("train diverges", [*train, "--run_dir", "t13", "--max_steps", 6, "--lr", 1e30, "--log_every", 1], 1,
             ("the loss is not finite (G_A = nan", "stopped without saving", "a lower --lr"), out="t13"),
        Case("train from unreachable storage", [*train[:4], "s3://bucket/ds", *train[5:], "--run_dir", "t14"], 1,
             ("s3://bucket/ds: cannot reach the storage at http://127.0.0.1:9", "check AWS_ENDPOINT_URL"),
             stdin_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
                        "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}),
        Case("train typo flag", [*train, "--run_dir", "t12", "--lamda_a", 3], 2, ("unknown flag --lamda_a", "--lambda_a")),
        # translate
        Case("translate batch 0", ["eval/translate.py", run, "--input", photos, "--out", "o1", "--batch_size", 0], 2,
             ("--batch_size must be between 1",)),
        Case("translate missing step", ["eval/translate.py", run, "--step", 999, "--input", photos, "--out", "o2"], 1,
             ("no checkpoint of step 999; there are: 2",)),
        Case("translate list pth", ["eval/translate.py", f"{bad}/list.pth", "--input", photos, "--out", "o3"], 1,
             ("list.pth: holds a list, not a generator state dict",)),
        Case("translate tensor pth", ["eval/translate.py", f"{bad}/tensor.pth", "--input", photos, "--out", "o4"], 1,
             ("tensor.pth: holds a Tensor",)),
        Case("translate run and model", ["eval/translate.py", run, "--model", "style_monet", "--input", photos,
                                         "--out", "o5"], 2, ("exactly one",)),
        Case("translate scale without size", ["eval/translate.py", run, "--input", photos, "--out", "o6",
                                              "--preprocess", "resize"], 2, ("--preprocess resize needs --load_size",)),
        Case("translate all unreadable", ["eval/translate.py", run, "--input", f"{bad}/only_corrupt", "--out", "o7"], 1,
             ("none of the 1 input image(s) could be read",), out="o7"),
        Case("translate bad direction", ["eval/translate.py", run, "--input", photos, "--out", "o8", "--direction",
                                         "sideways"], 2, ("invalid choice", "--direction", "AtoB")),
        Case("translate unknown model", ["eval/translate.py", "--model", "picasso", "--input", photos, "--out", "o9"],
             1, ("unknown weights 'picasso'",)),
        # Gatys
        Case("gatys batch 0", ["train/gatys.py", "--content", content, "--style", style, "--out", "g1", "--batch_size", 0],
             2, ("--batch_size must be between 1",)),
        Case("gatys iterations 0", ["train/gatys.py", "--content", content, "--style", style, "--out", "g2",
                                    "--iterations", 0], 2, ("--iterations must be between 1",)),
        Case("gatys binary pairs", ["train/gatys.py", "--pairs", f"{bad}/pairs.bin", "--out", "g3"], 1,
             ("pairs.bin: not a text file",)),
        Case("gatys pair escaping with ..", ["train/gatys.py", "--pairs", f"{bad}/escape.jsonl", "--out", "g4",
                                             "--random_vgg", "--image_size", 32, "--iterations", 2], 1,
             ("every pair failed (1)",), out="g4"),
        Case("gatys absolute pair name", ["train/gatys.py", "--pairs", f"{bad}/absolute.jsonl", "--out", "g5",
                                          "--random_vgg", "--image_size", 32, "--iterations", 2], 1,
             ("every pair failed (1)",), out="g5"),
        Case("gatys changed size on rerun", ["train/gatys.py", "--content", content, "--style", style, "--out", renders,
                                             "--random_vgg", "--image_size", 48, "--iterations", 2], 1,
             ("made with other settings", "image_size 32 -> 48", "--overwrite")),
        Case("gatys part out of range", ["train/gatys.py", "--pairs", f"{bad}/escape.jsonl", "--out", "g6", "--part", 2,
                                         "--parts", 2], 2, ("--part must be below --parts",)),
        Case("gatys broken json line", ["train/gatys.py", "--pairs", f"{bad}/badrow.jsonl", "--out", "g7"], 1,
             ("badrow.jsonl:1: not valid JSON",)),
        # shards
        Case("shard max_side -1", ["data_prep/shard.py", "src", "--out", "s1", "--max_side", -1], 2,
             ("--max_side must be between 0",)),
        Case("shard max_pixels 0", ["data_prep/shard.py", "src", "--out", "s2", "--max_pixels", 0], 2,
             ("--max_pixels must be at least 1",)),
        Case("shard samples 0", ["data_prep/shard.py", "src", "--out", "s3", "--samples_per_shard", 0], 2,
             ("--samples_per_shard must be between 1",)),
        Case("shard rerun other settings", ["data_prep/shard.py", "data/src", "--out", data, "--samples_per_shard", 3],
             1, ("holds shards of other input or settings (samples_per_shard 4 -> 3)", "--overwrite")),
        Case("shard truncated zip", ["data_prep/shard.py", f"{bad}/cut.zip", "--out", "s4"], 1,
             ("cut.zip: damaged or truncated zip archive",)),
        Case("shard unknown protocol", ["data_prep/shard.py", "src", "--out", "foo://bucket/x"], 1,
             ("unknown storage protocol foo://",)),
        Case("shard job index", ["data_prep/shard.py", "src", "--out", "s5", "--job_index", 3, "--num_jobs", 2], 2,
             ("--job_index must be below --num_jobs",)),
        Case("shard everything rejected", ["data_prep/shard.py", "src", "--out", "s6", "--max_pixels", 10], 1,
             ("every image of trainA, trainB", "rejected.jsonl"), out="s6"),
        Case("shard zip input is fine", ["data_prep/shard.py", f"{bad}/ds.zip", "--out", "s7"], 0,
             ("train A 4, B 4",), out="s7"),
        # survey
        Case("survey n 0", ["eval/survey.py", "build", "--fakes", photos, "--reals", photos, "--out", "v1", "--n", 0], 2,
             ("--n must be between 1",)),
        Case("survey size 0", ["eval/survey.py", "build", "--fakes", photos, "--reals", photos, "--out", "v2", "--image_size",
                               0], 2, ("--image_size must be between 32",)),
        Case("survey quality 500", ["eval/survey.py", "build", "--fakes", photos, "--reals", photos, "--out", "v3",
                                    "--quality", 500], 2, ("--quality must be between 1 and 100",)),
        Case("survey tiny real", ["eval/survey.py", "build", "--fakes", photos, "--reals", f"{bad}/tiny_real", "--out",
                                  "v4", "--n", 1], 1, ("one.png: 1x1 is too small",)),
        Case("survey binary response skipped", ["eval/survey.py", "score", "survey_answers/key.json", f"{bad}/response.bin",
                                                "--out", "v5"], 1, ("no valid responses",)),
        Case("survey simulate bad key", ["eval/survey.py", "simulate", f"{bad}/notakey.json", "--out", "v6"], 1,
             ("notakey.json: not a survey key",)),
        Case("survey score missing key", ["eval/survey.py", "score", "nokey.json", f"{bad}/response.bin", "--out", "v7"],
             1, ("nokey.json: no such key file",)),
        # the rest
        Case("fid batch 0", ["eval/fid.py", "--fakes", photos, "--reals", photos, "--batch_size", 0], 2,
             ("--batch_size must be between 1",)),
        Case("fid missing folder", ["eval/fid.py", "--fakes", "nothing", "--reals", photos, "--random_inception"], 1,
             ("nothing: no such file or folder",)),
        Case("download retries -1", ["data_prep/download.py", "monet2photo", "--retries", -1], 2,
             ("--retries must be between 0 and 50",)),
        Case("fast style width 1", ["train/fast_style.py", "--style", style, "--data", data, "--width", 1], 2,
             ("--width must be between 2",)),
        Case("stylize style index", ["eval/stylize.py", "fast/net.pth", "--input", photos, "--out", "y1",
                                     "--style_index", 3], 1, ("--style_index 3: the network has 1 style(s)",)),
        Case("stylize a cyclegan run", ["eval/stylize.py", run, "--input", photos, "--out", "y2"], 1,
             ("run: a CycleGAN run, not a fast-style run; use eval/translate.py run",)),
        Case("translate a fast-style net", ["eval/translate.py", "fast/net.pth", "--input", photos, "--out", "y3"], 1,
             ("fast-style weights, not CycleGAN weights; use eval/stylize.py",)),
        Case("stylize out inside input", ["eval/stylize.py", "fast/net.pth", "--input", photos, "--out",
                                          f"{photos}/styled"], 2,
             ("--out photos/styled is inside --input photos", "choose an --out outside it")),
        Case("translate out is input", ["eval/translate.py", run, "--input", photos, "--out", photos], 2,
             ("--out photos is inside --input photos",)),
        Case("gatys out inside content", ["train/gatys.py", "--content", photos, "--style", style, "--out",
                                          f"{photos}/renders"], 2, ("--out photos/renders is inside --content photos",)),
        Case("grids rows 0", ["eval/grids.py", run, "--rows", 0], 2, ("--rows must be between 1",)),
        # paths the user owns are never deleted or overwritten
        Case("download name ..", ["data_prep/download.py", "..", "--url", f"file://{bad}/ds.zip", "--out", "dl1"], 2,
             ("dataset name '..' is not a safe file name",)),
        Case("download empty name", ["data_prep/download.py", "", "--url", f"file://{bad}/ds.zip", "--out", "dl2"], 2,
             ("dataset name '' is not a safe file name",)),
        Case("download name with a path", ["data_prep/download.py", "x/../../y", "--url", f"file://{bad}/ds.zip",
                                           "--out", "dl3"], 2, ("is not a safe file name",)),
        Case("download over a user folder", ["data_prep/download.py", "photos", "--from", f"{bad}/ds.zip", "--dest", "."],
             1, ("photos exists and was not extracted by data_prep/download.py", "choose another --dest")),
        Case("stylize onnx onto an input photo", ["eval/stylize.py", "fast/net.pth", "--input", photos, "--out", "y4",
                                                  "--onnx", f"{photos}/p0.png"], 2, ("--onnx photos/p0.png",)),
        Case("stylize onnx onto its weights", ["eval/stylize.py", "fast/net.pth", "--input", photos, "--out", "y5",
                                               "--onnx", "fast/net.pth"], 2, ("--onnx fast/net.pth",)),
        Case("stylize onnx over a file", ["eval/stylize.py", "fast/net.pth", "--input", photos, "--out", "y6",
                                          "--onnx", "run/config.toml"], 2, ("must end in .onnx",)),
        # files and numbers that cannot be right
        Case("gatys empty style layers", ["train/gatys.py", "--content", content, "--style", style, "--out", "g8",
                                          "--style_layers", ","], 2, ("--style_layers needs at least one layer name",)),
        Case("gatys empty content layers", ["train/gatys.py", "--content", content, "--style", style, "--out", "g9",
                                            "--content_layers", ""], 2, ("--content_layers needs at least one layer",)),
        Case("gatys multiscale ends elsewhere", ["train/gatys.py", "--content", content, "--style", style, "--out",
                                                "g10", "--image_size", 48, "--multiscale", "16,32"], 2,
             ("--multiscale 16,32 ends at 32 px but --image_size is 48",)),
        Case("fast style empty style layers", ["train/fast_style.py", "--style", style, "--data", data, "--run_dir",
                                               "f1", "--style_layers", ","], 2,
             ("--style_layers needs at least one layer name",)),
        Case("stylize mix overflows", ["eval/stylize.py", "fast/net.pth", "--input", photos, "--out", "y8",
                                       "--style_mix", "1e308,1e308"], 2, ("--style_mix weights add up to more",)),
        Case("survey fakes are the reals", ["eval/survey.py", "build", "--fakes", photos, "--reals", photos, "--out",
                                            "v8", "--n", 2], 1, ("--fakes and --reals are the same folder",)),
        Case("translate a NaN network", ["eval/translate.py", f"{bad}/nan_G.pth", "--input", photos, "--out", "o10"], 1,
             ("holds NaN or infinite values (the run diverged)",)),
        Case("translate device banana", ["eval/translate.py", run, "--input", photos, "--out", "o11", "--device",
                                         "banana"], 2, ("--device banana: give cpu, cuda, cuda:N or mps",)),
        Case("translate device cuda without one", ["eval/translate.py", run, "--input", photos, "--out", "o12",
                                                   "--device", "cuda:3"], 1,
             ("--device cuda:3: this machine has 0 CUDA device(s)",)),
        Case("stylize onnx exists", ["eval/stylize.py", "fast/net.pth", "--input", photos, "--out", "y7",
                                     "--onnx", "fast/old.onnx"], 2, ("fast/old.onnx already exists", "--overwrite")),
        Case("check images none", ["data_prep/check_images.py"], 1, ("name at least one folder",)),
        *second_sweep_cases(train, style, content),
        *bounds_cases(train, style, content),
    ]


def second_sweep_cases(train, style, content):
    """Damaged records, colliding and odd names, stale outputs, changed resumes, the environment."""
    m = "manifests"
    resume_in = lambda run: [*train, "--run_dir", run, "--max_steps", 4, "--resume", "auto"]
    resume = resume_in("run")
    fast = lambda size=32: ["train/fast_style.py", "--style", style, "--data", "data/shards", "--run_dir", "fast_run",
                            "--random_vgg", "--max_steps", 4, "--size", size, "--batch_size", 2, "--width", 4,
                            "--num_workers", 0, "--resume", "auto"]
    return [
        # two inputs, one output name: both kept, by the documented rule
        Case("translate a.jpg and a.png", ["eval/translate.py", "run", "--input", "dup", "--out", "o20"], 0,
             ("2 image(s) into o20",), out="o20"),
        Case("stylize a.jpg and a.png", ["eval/stylize.py", "fast/net.pth", "--input", "dup", "--out", "y20"], 0,
             ("2 image(s) into y20",), out="y20"),
        Case("gatys a.jpg and a.png", ["train/gatys.py", "--content", "dup", "--style", style, "--out", "g20",
                                       "--random_vgg", "--image_size", 32, "--iterations", 1], 0, ("rendered 2",), out="g20"),
        Case("gatys style with + in its name", ["train/gatys.py", "--content", content, "--style", "plus/a+b.png",
                                                "--out", "g21", "--random_vgg", "--image_size", 32, "--iterations", 1], 0,
             ("rendered 1",), out="g21"),
        Case("gatys pairs file with a BOM", ["train/gatys.py", "--pairs", "bad/bom.jsonl", "--out", "g22",
                                             "--random_vgg", "--image_size", 32, "--iterations", 1], 0, ("rendered 1",),
             out="g22"),
        # one odd input is skipped (or renamed), never the job
        Case("translate long name, AppleDouble, empty file", ["eval/translate.py", "run", "--input", "odd", "--out",
                                                              "o21"], 0,
             ("skipped: odd/a0.png: empty file", "2 image(s) into o21, 1 unreadable"), out="o21"),
        Case("stylize onnx after an empty first image", ["eval/stylize.py", "fast/net.pth", "--input", "odd", "--out",
                                                         "y21", "--onnx", "y21.onnx"], 0,
             ("onnxruntime matches torch", "1 unreadable"), out=("y21", "y21.onnx")),
        Case("translate a 248-byte shard key", ["eval/translate.py", "run", "--input", "long_shards", "--split", "train",
                                                "--out", "o22"], 0, ("1 image(s) into o22",), out="o22"),
        Case("translate FIFO in the input", ["eval/translate.py", "run", "--input", "fifo_src/trainB", "--out", "o23"],
             0, ("fifo.jpg: not a regular file", "2 image(s) into o23, 1 unreadable"), out="o23"),
        Case("translate results page beside an index_inputs folder", ["eval/translate.py", "run", "--input",
                                                                      "with_index", "--out", "o24", "--results_html"],
             0, ("2 image(s) into o24",), out="o24"),
        # shards: inputs never touched, every key distinct, nothing silently missing
        Case("shard out is the inputs' parent", ["data_prep/shard.py", "--a", "mine/train", "--b", "mine/test", "--out",
                                                 "mine"], 2, ("--a mine/train lies inside --out mine",)),
        Case("shard overwrite the inputs' parent", ["data_prep/shard.py", "--a", "mine/train", "--b", "mine/test",
                                                    "--out", "mine", "--overwrite"], 2, ("lies inside --out mine",)),
        Case("shard keys that clash after suffixing", ["data_prep/shard.py", "keyclash", "--out", "s20"], 0,
             ("train A 3, B 1",), out="s20"),
        Case("shard zip with a member twice", ["data_prep/shard.py", "bad/dupmembers.zip", "--out", "s21"], 0,
             ("stored more than once", "train A 1, B 1"), out="s21"),
        Case("shard FIFO named .jpg", ["data_prep/shard.py", "fifo_src", "--out", "s22"], 0, ("1 rejected",),
             out="s22"),
        Case("shard garbage source sidecar", ["data_prep/shard.py", "sidecar", "--out", "s23"], 1,
             ("sidecar.source.json: not valid JSON",), out="s23"),
        Case("shard more workers than shards", ["data_prep/shard.py", "fifo_src", "--out", "s24", "--workers", 16], 0,
             ("1 rejected",), out="s24"),
        # manifests edited or damaged by hand
        *[Case(f"train on manifest {name}", [*train[:4], f"{m}/{name}", *train[5:], "--run_dir", f"t_{name}"], 1,
               needles) for name, needles in (
            ("m_samples_str", ("manifest.json: shards.0.samples: Input should be a valid integer",)),
            ("m_samples_missing", ("manifest.json: shards.0.samples: Field required",)),
            ("m_samples_list", ("shards.0.samples: Input should be a valid integer",)),
            ("m_samples_huge", ("shards.0.samples: Input should be a valid integer",)),
            ("m_samples_negative", ("shards.0.samples: Input should be greater than or equal to 0",)),
            ("m_escape", ("shards.0.name: '../other/train/A-000000.tar' is not a path inside the folder",)),
            ("m_twice", ("train/A-000000.tar is listed twice",)),
            ("m_not_object", ("manifest.json: holds a JSON list, not an object",)),
            ("m_short_tar", ("A-000000.tar: 1024 bytes but the manifest lists",)))],
        # run dirs edited or damaged by hand
        Case("translate a run with a step_final folder", ["eval/translate.py", "run_step_final", "--input", "photos",
                                                          "--out", "o25"], 0, ("step 2",), out="o25"),
        Case("resume a damaged rank part", resume_in("run_rank_part"), 1,
             ("rank_NNNNN.pt: no 'pool_A'",)),
        Case("resume meta.json of wrong type", resume_in("run_meta_type"), 1,
             ("meta.json: step: Input should be a valid integer",)),
        Case("resume meta.json missing a key", resume_in("run_meta_missing"), 1,
             ("meta.json: images_seen: Field required",)),
        Case("resume latest into another run", resume_in("run_latest_other"), 1,
             ("not a step_NNNNNNNN folder of this run",)),
        Case("resume NaN weights", resume_in("run_nan"), 1, ("holds NaN or infinite values",)),
        Case("grids config of wrong type", ["eval/grids.py", "run_cfg_types", "--out", "gr1"], 1,
             ("config.toml: data: Input should be a valid string",)),
        Case("stylize config of wrong type", ["eval/stylize.py", "fast_cfg_types", "--input", "photos", "--out", "y22"],
             1, ("config.toml: style: Input should be a valid list",)),
        # resume with changed settings: refused, naming each change
        Case("resume another seed", [*resume, "--seed", 3], 1, ("seed 0 -> 3", "--allow_change seed")),
        Case("resume other data", [*resume[:4], "data2/shards", *resume[5:]], 1, ("data ", "--allow_change data")),
        Case("resume another crop", [*resume, "--load_size", 30, "--crop_size", 24], 1, ("crop_size 32 -> 24",)),
        Case("resume another lambda_a", [*resume, "--lambda_a", 3], 1, ("lambda_a 10.0 -> 3.0",)),
        Case("resume another lr", [*resume, "--lr", 0.001], 1, ("lr 0.0002 -> 0.001",)),
        Case("fast style resume another loss network", [*fast(), "--loss_network", "vgg19"], 1,
             ("loss_network 'vgg16' -> 'vgg19'",)),
        Case("fast style resume another domain", [*fast(), "--domain", "A"], 1, ("domain 'B' -> 'A'",)),
        Case("fast style resume another size", fast(48), 1, ("size 32 -> 48",)),
        Case("fast style resume other style layers", [*fast(), "--style_layers", "relu1_2,relu2_2"], 1,
             ("style_layers",)),
        # reruns into a folder made with other settings or inputs
        Case("gatys rerun with other content", ["train/gatys.py", "--content", "other_content/tubingen.jpg", "--style",
                                                style, "--out", "renders", "--random_vgg", "--image_size", 32,
                                                "--iterations", 2], 1, ("tubingen", "--overwrite")),
        Case("translate rerun the other direction", ["eval/translate.py", "run", "--input", "photos", "--out",
                                                     "translated", "--direction", "BtoA"], 1,
             ("direction 'AtoB' -> 'BtoA'", "--overwrite")),
        Case("stylize rerun another size", ["eval/stylize.py", "fast/net.pth", "--input", "photos", "--out",
                                            "stylized", "--load_size", 24], 1, ("load_size", "--overwrite")),
        # a documented tracker choice, a survey key beside odd folder names
        Case("train log_with none", [*train, "--run_dir", "t_none", "--max_steps", 4, "--sample_every", 1, "--log_with",
                                     "none"], 0, ("step 0 -> 4",), out="t_none"),
        Case("survey out DIR/..", ["eval/survey.py", "build", "--fakes", "photos", "--reals", "real_photos", "--out",
                                   "sv/inner/..", "--n", 2, "--image_size", 32, "--zip"], 0, ("answer key",),
             out=("sv", "sv.zip", "sv_answers")),
        Case("fid of a folder with itself", ["eval/fid.py", "--fakes", "photos", "--reals", "photos",
                                             "--random_inception", "--out", "fid1"], 0, ("FID 0.000",),
             out="fid1"),
        # the environment a launcher leaves behind
        Case("WORLD_SIZE without MASTER_ADDR", ["eval/translate.py", "run", "--input", "photos", "--out", "o26"], 1,
             ("WORLD_SIZE=2 is set but MASTER_ADDR is not",), stdin_env={"WORLD_SIZE": "2", "RANK": "0"}),
        Case("RANK outside WORLD_SIZE", ["eval/translate.py", "run", "--input", "photos", "--out", "o27"], 1,
             ("RANK=4 with WORLD_SIZE=2: no such rank",),
             stdin_env={"WORLD_SIZE": "2", "RANK": "4", "MASTER_ADDR": "127.0.0.1"}),
        Case("WORLD_SIZE not a number", ["eval/translate.py", "run", "--input", "photos", "--out", "o28"], 1,
             ("WORLD_SIZE='two'",), stdin_env={"WORLD_SIZE": "two"}),
        Case("file-size limit during a checkpoint", [*train, "--run_dir", "t_fsize", "--max_steps", 2], 1,
             ("file-size limit (ulimit -f)",), out="t_fsize", fsize_kb=64),
    ]


def bounds_cases(train, style, content):
    """Numbers and words out of range, in every command: exit 2 before any work, naming the flag."""
    photos = ["--input", "photos"]
    gatys = ["train/gatys.py", "--content", content, "--style", style, "--out", "gb"]
    fast = ["train/fast_style.py", "--style", style, "--data", "data/shards", "--run_dir", "fb"]
    rows = [
        (["eval/translate.py", "run", *photos, "--out", "ob", "--load_size", 0], "--load_size must be between 8"),
        (["eval/translate.py", "run", *photos, "--out", "ob", "--preprocess", "stretch"], "argument '--preprocess'"),
        (["eval/translate.py", "run", *photos, "--out", "ob", "--batch_size", "abc"], "Error parsing --batch_size"),
        (["eval/translate.py", "run", *photos, "--out", "ob", "--max_pixels", 0], "--max_pixels must be at least 1"),
        (["eval/stylize.py", "fast/net.pth", *photos, "--out", "yb", "--batch_size", 0], "--batch_size must be"),
        (["eval/stylize.py", "fast/net.pth", *photos, "--out", "yb", "--style_mix", "-1,2"], "--style_mix"),
        ([*gatys, "--image_size", 8], "--image_size must be between 16"),
        ([*gatys, "--optimizer", "sgd"], "argument '--optimizer'"),
        ([*gatys, "--style_weight", -1], "--style_weight must be at least 0"),
        ([*gatys, "--init", "zeros"], "argument '--init'"),
        ([*gatys, "--lr", 0], "--lr must be at least"),
        ([*gatys, "--parts", 0], "--parts must be at least 1"),
        ([*fast, "--size", 8], "--size must be between 16"),
        ([*fast, "--batch_size", 0], "--batch_size must be between 1"),
        ([*fast, "--lr", -1], "--lr must be at least 0"),
        ([*fast, "--loss_network", "resnet"], "argument '--loss_network'"),
        ([*train, "--run_dir", "tb", "--ngf", 0], "--ngf must be between 1"),
        ([*train, "--run_dir", "tb", "--n_blocks", 100], "--n_blocks must be between 1 and 64"),
        ([*train, "--run_dir", "tb", "--beta1", 2], "--beta1 must be between 0"),
        ([*train, "--run_dir", "tb", "--pool_size", -1], "--pool_size must be between 0"),
        ([*train, "--run_dir", "tb", "--checkpoint_every", 0], "--checkpoint_every must be at least 1"),
        ([*train, "--run_dir", "tb", "--gan_mode", "wgan"], "argument '--gan_mode'"),
        (["eval/grids.py", "run", "--cell_size", 8], "--cell_size must be between 16"),
        (["eval/fid.py", "--fakes", "photos", "--reals", "photos", "--kid_subset_size", 1], "--kid_subset_size must be"),
        (["data_prep/shard.py", "src", "--out", "sb", "--workers", 0], "--workers must be between 1"),
        (["eval/survey.py", "build", "--fakes", "photos", "--reals", "real_photos", "--out", "vb", "--n", "abc"],
         "Error parsing --n"),
    ]
    return [Case(f"bounds: {argv[0]} {' '.join(map(str, argv[-2:]))}", argv, 2, (needle,)) for argv, needle in rows]


def run_case(w, case):
    argv = [sys.executable, str(REPO / case.argv[0]), *map(str, case.argv[1:])]
    limit = None
    if case.fsize_kb:
        import resource

        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize_kb * 1024, case.fsize_kb * 1024))
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=w, preexec_fn=limit,
                          env={**os.environ, **TRAIN_ENV, "TORCH_HOME": str(w / "torch_home"), **case.stdin_env})


def test_the_fault_table(ws):
    table = cases(ws)
    assert len(table) >= 150
    before = digest(ws)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda c: run_case(ws, c), table))
    problems = []
    for case, proc in zip(table, results):
        err = proc.stderr
        lines = [l for l in err.splitlines() if "error:" in l]
        why = None
        if proc.returncode != case.rc:
            why = f"exit {proc.returncode}, expected {case.rc}"
        elif "Traceback" in err:
            why = "a traceback"
        elif case.rc and len(lines) != 1:
            why = f"{len(lines)} error lines"
        else:
            text = lines[0] if case.rc else proc.stdout + err
            missing = [n for n in case.needles if n not in text]
            if missing:
                why = f"missing {missing}"
        if why:
            problems.append(f"{case.name}: {why}\n{err[-800:]}")
    assert not problems, "\n\n".join(problems)
    after = digest(ws)
    allowed = {o for c in table if c.out for o in ((c.out,) if isinstance(c.out, str) else c.out)}
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    outside = sorted(k for k in changed if not any(k == a or k.startswith(a + "/") for a in allowed))
    assert outside == [], outside  # nothing written outside the output folders; every earlier output untouched
    assert not (ws.parent / "escaped.png").exists() and not (ws / "abs_escape.png").exists()


def test_debug_switch_shows_the_traceback(ws):
    proc = run_script("train/cyclegan.py", "--data", ws / "nothing", "--run_dir", ws / "dbg", env={"BRUSHWORK_DEBUG": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "cyclegan.py: error:" in proc.stderr


def test_a_full_disk_leaves_no_temp_files_and_says_so(tmp_path, monkeypatch):
    from brushwork.core import fileio
    from brushwork.core.errors import BrushworkError
    from brushwork.data import shards
    from brushwork.training import checkpoint

    real_replace = os.replace
    src = make_synth(tmp_path / "src", 2)
    plans = shards.plan_shards(shards.sources_from_layout(src), samples_per_shard=2)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(BrushworkError, match=r"disk full while writing .*x.bin; free space and rerun \(finished files "
                                             r"are kept, the unfinished one was not written\)"):
        fileio.atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    with pytest.raises(BrushworkError, match="disk full"):
        shards.write_shard(plans[0], str(tmp_path / "out"), shards.ShardOptions())
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []  # no A-000000.tar.tmp, no part record
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    monkeypatch.setattr(os, "replace", lambda a, b: full() if "rank_" in str(a) else real_replace(a, b))
    state = {"meta": {"step": 3}, "models": {}, "optim": {}, "rank": {"x": torch.zeros(1)}}
    with pytest.raises(BrushworkError, match="disk full"):
        checkpoint.save(tmp_path / "run", state, step=3, rank=0, barrier=lambda: None)
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []  # no .step_3.tmp/ left behind
