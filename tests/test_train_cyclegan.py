"""train/cyclegan.py for real: 2 gloo ranks, TensorBoard, kill + resume exactness, signals, bad checkpoints."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from conftest import (
    REPO,
    TRAIN_ENV,
    assert_one_error_line,
    kill_at_first_checkpoint,
    run_train,
    synth_shards,
    train_command,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return synth_shards(tmp_path_factory.mktemp("synth"))


def ckpt(run_dir, step=None):
    root = run_dir / "checkpoints"
    name = f"step_{step:08d}" if step is not None else (root / "latest").read_text().strip()
    path = root / name
    load = lambda f: torch.load(path / f, weights_only=True)
    ranks = sorted(path.glob("rank_*.pt"))
    return {"meta": json.loads((path / "meta.json").read_text()), "models": load("models.pt"),
            "optim": load("optim.pt"), "ranks": [torch.load(r, weights_only=True) for r in ranks]}


def assert_same_state(a, b):
    for net in ("G_A", "G_B", "D_A", "D_B"):
        for k, v in a["models"][net].items():
            assert torch.equal(v, b["models"][net][k]), f"{net}.{k}"
    for which in ("G", "D"):
        sa, sb = a["optim"][which]["state"], b["optim"][which]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            for k in sa[i]:
                assert torch.equal(sa[i][k], sb[i][k]), f"optim {which} {i} {k}"
    for ra, rb in zip(a["ranks"], b["ranks"], strict=True):
        for pool in ("pool_A", "pool_B"):
            assert len(ra[pool]["images"]) == len(rb[pool]["images"])
            assert all(torch.equal(x, y) for x, y in zip(ra[pool]["images"], rb[pool]["images"]))
            assert torch.equal(ra[pool]["generator"], rb[pool]["generator"])
    for key in ("step", "images_seen", "data_batches", "data_seed"):
        assert a["meta"][key] == b["meta"][key], key


def tensorboard_events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_two_processes_stay_in_sync_and_log_to_tensorboard(tmp_path, shards):
    run = tmp_path / "run"
    proc = run_train(run, shards, "--max_steps", 8, "--checkpoint_every", 4, "--num_workers", 2, procs=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es) x batch 1" in proc.stdout
    state = ckpt(run)
    assert state["meta"]["step"] == 8 and state["meta"]["world"] == 2 and state["meta"]["images_seen"] == 16
    assert state["meta"]["kind"] == "cyclegan" == json.loads((run / "export" / "info.json").read_text())["kind"]
    assert len(state["ranks"]) == 2
    fp0, fp1 = (r["weights_fingerprint"] for r in state["ranks"])
    for net in ("G_A", "G_B", "D_A", "D_B"):
        assert torch.equal(fp0[net], fp1[net]), net  # DDP kept every rank's weights identical
    assert not torch.equal(fp0["G_A"], fp0["G_B"])
    # the pools are per rank: they saw different images
    assert not torch.equal(state["ranks"][0]["pool_A"]["images"][0], state["ranks"][1]["pool_A"]["images"][0])
    events = tensorboard_events(run)
    tags = events.Tags()
    for name in ("G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B", "idt_A", "idt_B"):
        assert f"loss/{name}" in tags["scalars"]
    assert {"lr", "images_per_s"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("loss/G_A")] == [4, 8, 12, 16]  # the axis: images seen (2 per step)
    assert "samples" in tags["images"] and len(events.Images("samples")) == 2
    assert (run / "samples" / "step_00000008.png").is_file()
    assert (run / "export" / "G_A.pth").is_file()
    import tomllib

    launch = tomllib.loads((run / "config.toml").read_text())["launch"]
    assert (launch["processes"], launch["distributed_type"]) == (2, "multi_cpu")
    assert "\n" not in (run / "checkpoints" / "latest").read_text().strip()


@pytest.mark.parametrize("procs", [1, 2])
def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path, shards, procs):
    k = 5
    common = ["--max_steps", 2 * k, "--checkpoint_every", k, "--num_workers", 2 if procs == 1 else 1, "--keep_last", 5]
    whole = tmp_path / "whole"
    assert run_train(whole, shards, *common, procs=procs).returncode == 0
    killed = tmp_path / "killed"
    at = kill_at_first_checkpoint(train_command(killed, shards, *common, procs=procs), killed)  # mid-run
    assert at < 2 * k, "training ended before it could be killed"
    resumed = run_train(killed, shards, *common, "--resume", "auto", procs=procs)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"step {at} -> {2 * k}" in resumed.stdout
    assert_same_state(ckpt(whole, 2 * k), ckpt(killed, 2 * k))


def test_sigterm_saves_a_checkpoint_and_exits_zero(tmp_path, shards):
    run = tmp_path / "run"
    cmd = train_command(run, shards, "--max_steps", 100000, "--checkpoint_every", 100000, "--num_workers", 0)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, **TRAIN_ENV})
    deadline = time.time() + 120
    while time.time() < deadline and not list((run / "tb").glob("events*")):
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped by signal" in out
    state = ckpt(run)
    assert state["meta"]["step"] >= 1
    info = json.loads((run / "export" / "info.json").read_text())  # export/ follows every checkpoint
    assert info["step"] == state["meta"]["step"]


def test_sigterm_to_the_process_group_with_loader_workers_still_checkpoints(tmp_path, shards):
    """What timeout, kill -- -PGID and SLURM do: the signal reaches the DataLoader workers as well."""
    run = tmp_path / "run"
    cmd = train_command(run, shards, "--max_steps", 100000, "--checkpoint_every", 100000, "--num_workers", 2,
                        "--log_with", "none")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, **TRAIN_ENV}, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((run / "samples").glob("*.png")):
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped by signal" in out and "Traceback" not in err
    step = ckpt(run)["meta"]["step"]
    assert step >= 4 and not (run / "tb").exists()  # --log_with none: samples as files, no tracker
    resumed = run_train(run, shards, "--max_steps", step + 2, "--num_workers", 2, "--log_with", "none",
                        "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"step {step} -> {step + 2}" in resumed.stdout and ckpt(run)["meta"]["step"] == step + 2


def test_sigterm_to_a_two_rank_job_group_checkpoints_exits_zero_and_resumes_exactly(tmp_path, shards):
    """accelerate launch through launch/local/run_ranks.sh, 2 loader workers per rank, in its own process
    group, and the whole group signalled, as SLURM preemption does."""
    run, whole = tmp_path / "run", tmp_path / "whole"
    flags = ["--checkpoint_every", 100000, "--num_workers", 2, "--log_with", "none"]
    cmd = ["bash", str(REPO / "launch/local/run_ranks.sh"),
           *train_command(run, shards, "--max_steps", 100000, *flags, procs=2)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, **TRAIN_ENV}, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and not list((run / "samples").glob("*.png")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    assert "stopped by signal" in out and "Traceback" not in err and "run_ranks: stopped after checkpointing" in err
    step = ckpt(run)["meta"]["step"]
    assert step >= 4
    resumed = run_train(run, shards, "--max_steps", step + 4, *flags, "--resume", "auto", procs=2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run_train(whole, shards, "--max_steps", step + 4, *flags, procs=2).returncode == 0
    assert_same_state(ckpt(whole, step + 4), ckpt(run, step + 4))


def test_resume_with_changed_settings_is_refused_unless_allowed(tmp_path, shards):
    run = tmp_path / "run"
    assert run_train(run, shards, "--max_steps", 2, "--num_workers", 0).returncode == 0
    other = synth_shards(tmp_path / "other", n_train=6, per_shard=3)
    for flags, listed in ((["--lambda_a", 5], "lambda_a 10.0 -> 5.0"), (["--seed", 3], "seed 0 -> 3"),
                          (["--data", other], f"data {str(shards)!r} -> {str(other)!r}"),
                          (["--lr", 1e-3, "--crop_size", 24], "crop_size 32 -> 24; lr 0.0002 -> 0.001")):
        proc = run_train(run, shards, "--max_steps", 4, "--num_workers", 0, "--resume", "auto", *flags)
        allow = ",".join(sorted(f.lstrip("-") for f in flags[::2]))
        assert_one_error_line(proc, "was trained with other settings", listed, f"--allow_change {allow}")
    assert ckpt(run)["meta"]["step"] == 2  # nothing written by the refusals
    proc = run_train(run, shards, "--max_steps", 4, "--num_workers", 0, "--resume", "auto", "--log_every", 1)
    assert proc.returncode == 0 and "resume: log_every 2 -> 1" in proc.stdout  # a free change: one line
    proc = run_train(run, shards, "--max_steps", 6, "--num_workers", 0, "--resume", "auto", "--lambda_a", 5,
                     "--allow_change", "lambda_a")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming with lambda_a changed (--allow_change): the data order restarts at step 4" in proc.stdout
    assert ckpt(run)["meta"]["config"]["lambda_a"] == 5.0 and ckpt(run)["meta"]["data_batches"] == 2
    proc = run_train(run, shards, "--max_steps", 7, "--num_workers", 0, "--resume", "auto", "--allow_change", "lamda_a")
    assert_one_error_line(proc, "--allow_change lamda_a: not a setting of this command")


def test_resume_with_another_worker_count_restarts_the_data_order(tmp_path, shards):
    run = tmp_path / "run"
    assert run_train(run, shards, "--max_steps", 2, "--num_workers", 0).returncode == 0
    proc = run_train(run, shards, "--max_steps", 4, "--num_workers", 2, "--resume", "auto")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resume: num_workers 0 -> 2" in proc.stdout
    assert "x 2 loader worker(s) (checkpoint: 1 x 1 x 1): the data order restarts" in proc.stdout
    assert ckpt(run)["meta"]["data_batches"] == 2  # the new layout's own position


def test_resume_on_another_world_size_keeps_the_lr_schedule(tmp_path, shards):
    run = tmp_path / "run"
    flags = ["--epochs", 1, "--epochs_decay", 3, "--num_workers", 1, "--checkpoint_every", 100]
    assert run_train(run, shards, *flags, "--max_steps", 12, procs=2).returncode == 0
    assert ckpt(run)["meta"]["images_seen"] == 24
    proc = run_train(run, shards, *flags, "--max_steps", 30, "--resume", "auto", procs=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data order restarts" in proc.stdout
    meta = ckpt(run)["meta"]
    assert meta["images_seen"] == 24 + 18 and meta["world"] == 1
    # one axis on both sides of the resume: images seen (TensorBoard and the progress line), no jump, no repeat
    events = tensorboard_events(run)
    lrs = {e.step: e.value for e in events.Scalars("lr")}
    assert sorted(lrs) == [*range(4, 25, 4), *range(26, 43, 2)]  # every 2 steps: 4 images, then 2
    assert [e.step for e in events.Scalars("step")] == sorted(lrs) and events.Scalars("step")[-1].value == 30
    assert "step 12 -> 30, images 24 -> 42 of 64" in proc.stdout and "images 26/42 (epoch 1.62/4, step 14)" in proc.stdout
    epoch_images = 16
    for images, lr in lrs.items():
        before = images - (2 if images <= 24 else 1)  # images seen before that step
        epoch = before // epoch_images
        expected = 2e-4 * (1 - max(0, epoch + 1 - 1) / 4)
        assert abs(lr - expected) < 1e-9, (images, lr, expected)
    assert min(lrs.values()) < 2e-4 * 0.5  # the run really reached the decay
    # the schedule ends at its images, whatever the processes: 64 images, 24 of them on 2 processes
    proc = run_train(run, shards, *flags, "--resume", "auto", procs=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 30 -> 52, images 42 -> 64 of 64" in proc.stdout and ckpt(run)["meta"]["images_seen"] == 64


def test_mismatched_or_damaged_checkpoint_is_one_clear_error(tmp_path, shards):
    run = tmp_path / "run"
    assert run_train(run, shards, "--max_steps", 2, "--num_workers", 0).returncode == 0
    proc = run_train(run, shards, "--max_steps", 4, "--num_workers", 0, "--resume", "auto", "--ngf", 16)
    assert_one_error_line(proc, "step_00000002 was trained with ngf=8 (this run: 16)", "start a new --run_dir")
    latest = run / "checkpoints" / "step_00000002"
    (latest / "models.pt").write_bytes(b"\x00garbage")
    proc = run_train(run, shards, "--max_steps", 4, "--num_workers", 0, "--resume", "auto")
    assert_one_error_line(proc, "models.pt: unreadable checkpoint file", "resume from an older step folder")
    proc = run_train(run, shards, "--max_steps", 4, "--resume", tmp_path / "nowhere")
    assert_one_error_line(proc, "not a checkpoint folder")


def test_bad_flags_and_missing_data_are_one_line(tmp_path):
    proc = run_train(tmp_path / "r", tmp_path / "no_shards", "--max_steps", 1)
    assert_one_error_line(proc, "no manifest.json; run data_prep/shard.py")
    proc = run_train(tmp_path / "r", tmp_path, "--epochs", "abc")
    assert_one_error_line(proc, "Error parsing --epochs: invalid literal for int() with base 10: 'abc'")
    proc = run_train(tmp_path / "r", tmp_path, "--lamda_a", 3)
    assert_one_error_line(proc, "unknown flag --lamda_a", "--lambda_a")


def test_compiled_run_writes_plain_checkpoints_that_resume_uncompiled(tmp_path, shards):
    run = tmp_path / "run"
    proc = run_train(run, shards, "--max_steps", 2, "--num_workers", 0, "--compile")
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = ckpt(run)
    assert all(not k.startswith(("_orig_mod.", "module.")) for k in state["models"]["G_A"])
    exported = torch.load(run / "export" / "G_A.pth", weights_only=True)
    assert list(exported) == list(state["models"]["G_A"])
    proc = run_train(run, shards, "--max_steps", 3, "--num_workers", 0, "--resume", "auto")
    assert proc.returncode == 0 and "step 2 -> 3" in proc.stdout


def test_a_run_dir_belongs_to_one_run_and_tensorboard_keeps_one_run(tmp_path, shards):
    from conftest import digest_tree

    run = tmp_path / "run"
    assert run_train(run, shards, "--max_steps", 2, "--num_workers", 0, "--sample_every", 2).returncode == 0
    before = digest_tree(run)
    proc = run_train(run, shards, "--max_steps", 1, "--num_workers", 0)  # a new run in a used dir: refused
    assert_one_error_line(proc, f"{run} has checkpoints up to step 2: --resume auto to continue, or another --run_dir")
    proc = run_train(tmp_path / "other", shards, "--max_steps", -3)
    assert_one_error_line(proc, "--max_steps must be at least 1; got -3")
    assert digest_tree(run) == before and not (tmp_path / "other").exists()
    proc = run_train(run, shards, "--max_steps", 4, "--num_workers", 0, "--resume", "auto", "--sample_every", 2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tb = run / "tb"
    assert [p for p in tb.iterdir() if p.is_dir()] == []  # no timestamped sub-runs: one TensorBoard run
    assert len(list(tb.glob("events.*"))) == 2  # the resume appends to it
    events = tensorboard_events(run)
    samples = events.Images("samples")
    assert [s.step for s in samples] == [2, 4]
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(samples[-1].encoded_image_string))
    assert image.width == 6 * 32 and image.height > 32  # six columns and a caption strip above them
    strip = np.asarray(image.convert("L"))[: image.height - 32]
    assert (strip < 128).any() and (strip > 200).mean() > 0.5  # dark caption text on a white strip
    assert any(t.startswith("config") for t in events.Tags()["tensors"])  # the resolved config, once, as text


def test_a_raw_image_folder_is_sharded_once_into_the_runs_cache(tmp_path):
    from conftest import make_synth

    from brushwork.data import shards as shard_lib

    raw = make_synth(tmp_path / "raw", 6, n_test=2, size=32)  # trainA/ trainB/ testA/ testB/
    run = tmp_path / "run"
    proc = run_train(run, raw, "--max_steps", 2, "--num_workers", 0, "--checkpoint_every", 100)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"data: {raw} is an image folder, not shards: sharding it into {run}/shards" in proc.stdout
    manifest = shard_lib.read_manifest(str(run / "shards"))
    assert manifest["splits"]["train"] == {"A": {"samples": 6, "shards": 1}, "B": {"samples": 6, "shards": 1}}
    tars = {p: p.stat().st_mtime_ns for p in (run / "shards").rglob("*.tar")}
    proc = run_train(run, raw, "--max_steps", 4, "--num_workers", 0, "--resume", "auto")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in (run / "shards").rglob("*.tar")} == tars  # reused, not rewritten
    assert json.loads((run / "checkpoints" / "step_00000004" / "meta.json").read_text())["step"] == 4
    # a changed folder is not silently re-sharded under a resumed run
    (raw / "trainA" / sorted(os.listdir(raw / "trainA"))[0]).unlink()
    proc = run_train(run, raw, "--max_steps", 6, "--num_workers", 0, "--resume", "auto")
    assert_one_error_line(proc, f"{raw} changed since {run}/shards was sharded from it (1 input image(s) removed)",
                          "start a new --run_dir")
    # a plain folder is one domain: CycleGAN says what it needs; fast style trains on it
    photos = raw / "trainB"
    proc = run_train(tmp_path / "r2", photos, "--max_steps", 1)
    assert_one_error_line(proc, "a plain folder of images is one domain; this trainer needs trainA/ and trainB/")
    assert not (tmp_path / "r2").exists()
    from test_fast_style import run_fast

    proc = run_fast(tmp_path / "fast", photos, "--max_steps", 1, "--num_workers", 0)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert shard_lib.read_manifest(str(tmp_path / "fast" / "shards"))["splits"]["train"]["B"]["samples"] == 6
    assert (tmp_path / "fast" / "checkpoints" / "step_00000001").is_dir()
