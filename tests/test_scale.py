"""The first cluster run: default shards feed 2x2 readers, accelerate's settings win, job logs are readable,
errors once, shards in S3 (a real S3 API on 127.0.0.1), and every GPU-only branch run on the CPU."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from conftest import (
    REPO,
    SAMPLES,
    TINY_GAN,
    TRAIN_ENV,
    assert_one_error_line,
    free_port,
    make_synth,
    run_script,
    run_train,
    synth_shards,
    train_command,
)

from brushwork.data import shards
from brushwork.data import stream as data
from brushwork.schemas.train import CycleGANConfig

ACCELERATE = str(Path(sys.executable).parent / "accelerate")


def launch(*args, env=None, timeout=300):
    return subprocess.run([ACCELERATE, "launch", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**os.environ, **TRAIN_ENV, **(env or {})})


def shard_defaults(tmp_path, n=12):
    src = make_synth(tmp_path / "src", n, n_test=2, size=32)
    out = tmp_path / "shards"
    proc = run_script("data_prep/shard.py", src, "--out", out)  # the default 64 per shard: one shard per domain
    assert proc.returncode == 0, proc.stderr
    return out


# ---------------------------------------------------------------------------------------------
# Any world size on the default shards


@pytest.mark.slow
def test_two_processes_x_two_workers_train_on_default_shards_and_a_truncated_shard_stops_them(tmp_path):
    out = shard_defaults(tmp_path)
    proc = run_train(tmp_path / "run", out, "--max_steps", 4, "--num_workers", 2, procs=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es) x batch 1" in proc.stdout and "6 steps/epoch" in proc.stdout
    # cut one sample off the only train A shard, at a member boundary: the manifest still says 12
    from test_data import truncate_shard

    truncate_shard(out / "train" / "A-000000.tar", 11)
    proc = run_train(tmp_path / "run2", out, "--max_steps", 20, "--num_workers", 2, procs=2)
    assert proc.returncode != 0
    errors = [l for l in proc.stderr.splitlines() if l.startswith("cyclegan.py: error:")]
    assert errors and re.search(r"A-000000.tar: holds no sample \d+ of the 12 the manifest lists \(truncated or "
                                r"replaced after sharding\)", errors[0]), errors
    assert "Original Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------------
# accelerate launch's settings, and what config.toml records


@pytest.mark.slow
def test_accelerate_launch_mixed_precision_reaches_the_run_unless_a_flag_says_otherwise(tmp_path):
    out = synth_shards(tmp_path / "d", n_train=8, per_shard=4)
    script = [REPO / "train/cyclegan.py", "--dataset", "synth", "--data", out, *TINY_GAN, "--num_workers", 0]
    proc = launch("--num_processes", 1, "--mixed_precision", "bf16", *script, "--run_dir", tmp_path / "a",
                  "--max_steps", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = tomllib.loads((tmp_path / "a" / "config.toml").read_text())
    assert recorded["mixed_precision"] == "bf16" and "precision bf16" in proc.stdout
    assert recorded["launch"] == {"processes": 1, "machines": 1, "mixed_precision": "bf16", "dynamo_backend": "no",
                                  "distributed_type": "no", "device": "cpu"}  # what accelerate decided
    proc = launch("--num_processes", 1, "--mixed_precision", "bf16", *script, "--run_dir", tmp_path / "b",
                  "--max_steps", 1, "--mixed_precision", "no")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tomllib.loads((tmp_path / "b" / "config.toml").read_text())["mixed_precision"] == "no"
    assert "mixed precision: using no (--mixed_precision given to the script) instead of bf16 (from accelerate " \
           "launch)" in proc.stdout
    config_file = tmp_path / "bf16.yaml"
    config_file.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: 'NO'\nnum_processes: 1\n"
                           "mixed_precision: bf16\nuse_cpu: true\n")
    proc = launch("--config_file", config_file, *script, "--run_dir", tmp_path / "c", "--max_steps", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tomllib.loads((tmp_path / "c" / "config.toml").read_text())["mixed_precision"] == "bf16"
    # two processes asked for without --multi_gpu on a CPU machine: one runs, and a line says how to get two
    proc = launch("--num_processes", 2, "--mixed_precision", "no", *script, "--run_dir", tmp_path / "d2",
                  "--max_steps", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "accelerate launch started 1 process: on a machine without GPUs add --multi_gpu" in proc.stdout


@pytest.mark.slow
def test_bf16_on_cpu_trains_with_finite_losses_and_resumes(tmp_path):
    out = synth_shards(tmp_path / "d", n_train=8, per_shard=4)
    run = tmp_path / "run"
    proc = run_train(run, out, "--max_steps", 2, "--num_workers", 0, "--mixed_precision", "bf16", "--log_every", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_train(run, out, "--max_steps", 4, "--num_workers", 0, "--mixed_precision", "bf16", "--log_every", 1,
                     "--resume", "auto")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 2 -> 4" in proc.stdout
    losses = [float(v) for v in re.findall(r"\| G ([-\d.e+na]+) D", proc.stdout)]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(v)) for v in losses)


# ---------------------------------------------------------------------------------------------
# Logs a person can read, errors once


@pytest.mark.slow
def test_a_job_log_file_has_step_lines_with_losses_rate_and_eta(tmp_path):
    out = synth_shards(tmp_path / "d", n_train=8, per_shard=4)
    log = tmp_path / "job.log"
    with open(log, "w") as f:  # as sbatch --output does: stdout is a file
        proc = subprocess.run(train_command(tmp_path / "run", out, "--max_steps", 6, "--num_workers", 0,
                                            "--checkpoint_every", 3), stdout=f, stderr=subprocess.STDOUT, cwd=REPO,
                              env={**os.environ, **TRAIN_ENV}, timeout=300)
    assert proc.returncode == 0
    text = log.read_text()
    lines = [l for l in text.splitlines() if l.startswith("images ")]
    assert len(lines) == 3  # --log_every 2 (TINY_GAN)
    pattern = (r"^images (\d+)/6 \(epoch [\d.]+/200, step \d+\) \| G [\d.]+ D [\d.]+ \| lr 2\.0e-04 \| [\d.]+ img/s "
               r"\(A\+B\) \| ETA ")
    assert all(re.match(pattern, l) for l in lines), lines
    assert [int(re.match(pattern, l).group(1)) for l in lines] == [2, 4, 6]
    assert "\r" not in text  # no progress bar in a file
    assert re.search(r"^checkpoint: .*step_00000003 \(step 3; export/ refreshed\)$", text, re.M)


def run_in_terminal(command: list[str], timeout: float = 300) -> tuple[int, str]:
    """Run a command with stdout and stderr on a pseudo-terminal (120 columns), as a person at a shell does."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=REPO,
                            env={**os.environ, **TRAIN_ENV, "TERM": "xterm"})
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 1.0)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif proc.poll() is not None:
                break
    finally:
        os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_on_a_terminal_training_draws_one_bar_and_prints_other_lines_above_it(tmp_path):
    out = synth_shards(tmp_path / "d", n_train=8, per_shard=4)
    code, text = run_in_terminal(train_command(tmp_path / "run", out, "--max_steps", 6, "--num_workers", 0,
                                               "--checkpoint_every", 3))
    assert code == 0, text[-3000:]
    assert re.search(r"images: 100%\|[^\r\n]*\| 6/6 ", text), text[-3000:]  # the tqdm bar, redrawn with \r
    assert not re.search(r"images \d+/6 \(epoch", text)  # no log-file lines on a terminal
    assert re.search(r"G [\d.]+, D [\d.]+|G [\d.]+ D [\d.]+", text)  # losses ride on the bar
    notices = [m.start() for m in re.finditer(r"checkpoint: ", text)]
    assert len(notices) == 2, text[-3000:]  # steps 3 and 6
    for start in notices:  # each on a line of its own: the bar was cleared first, not glued onto it
        assert text[start - 1] in "\r\n", repr(text[max(0, start - 80):start + 20])


def test_on_a_terminal_shard_draws_a_bar_and_its_summary_on_lines_of_their_own(tmp_path):
    src = make_synth(tmp_path / "src", 6, n_test=2, size=32)
    code, text = run_in_terminal([sys.executable, str(REPO / "data_prep/shard.py"), str(src), "--out",
                                  str(tmp_path / "shards")])
    assert code == 0, text
    assert re.search(r"shard: 100%\|[^\r\n]*\| 16/16 ", text), text
    assert not re.search(r"^shard \d+/16 img", text, re.M)  # the log-file form is for files only
    for line in text.replace("\r\n", "\n").split("\n"):
        if "wrote" in line or "manifest" in line:
            assert "%|" not in line, repr(line)  # summary lines are not glued onto the bar


@pytest.mark.slow
def test_two_rank_gatys_writes_one_progress_stream(tmp_path):
    content, style = SAMPLES / "gatys" / "content", SAMPLES / "gatys" / "style" / "the_scream.jpg"
    proc = launch("--multi_gpu", "--num_processes", 2, "--num_machines", 1, "--main_process_port", free_port(),
                  "--mixed_precision", "no", "--dynamo_backend", "no", REPO / "train/gatys.py", "--content", content,
                  "--style", style, "--out", tmp_path / "out", "--random_vgg", "--image_size", 32, "--iterations", 3,
                  "--batch_size", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    progress = [l for l in proc.stdout.splitlines() if l.startswith("gatys ")]
    assert progress and all(l.startswith(("gatys 0/4", "gatys 1/4", "gatys 2/4", "gatys 3/4", "gatys 4/4"))
                            for l in progress)
    assert progress[-1].startswith("gatys 4/4 pair (100 %)")  # rank 0 counts every rank's finished pairs
    counts = [int(l.split()[1].split("/")[0]) for l in progress]
    assert counts == sorted(counts)


@pytest.mark.slow
def test_two_rank_gatys_on_a_terminal_draws_one_bar_and_the_ranks_lines_below_it(tmp_path):
    content, style = SAMPLES / "gatys" / "content", SAMPLES / "gatys" / "style" / "the_scream.jpg"
    code, text = run_in_terminal([ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                                  "--main_process_port", str(free_port()), "--mixed_precision", "no",
                                  "--dynamo_backend", "no", str(REPO / "train/gatys.py"), "--content", str(content),
                                  "--style", str(style), "--out", str(tmp_path / "out"), "--random_vgg",
                                  "--image_size", "32", "--iterations", "3", "--batch_size", "1"])
    assert code == 0, text[-3000:]
    counts = [int(c) for c in re.findall(r"gatys:\s+\d+%\|[^|\r\n]*\| (\d)/4 ", text)]
    assert counts and counts == sorted(counts) and counts[-1] == 4, text[-3000:]  # one bar: it never goes back
    assert not re.search(r"^gatys \d/4 pair", text, re.M)  # no log-file lines on a terminal
    for rank in (0, 1):
        line = f"rank {rank}: rendered 2"
        start = text.index(line)
        assert text[start - 1] == "\n", repr(text[max(0, start - 80):start + 40])  # not glued onto the bar


@pytest.mark.slow
def test_a_setup_error_under_two_ranks_is_printed_once(tmp_path):
    proc = launch("--multi_gpu", "--num_processes", 2, "--num_machines", 1, "--main_process_port", free_port(),
                  "--mixed_precision", "no", "--dynamo_backend", "no", REPO / "train/cyclegan.py", "--data",
                  tmp_path / "nowhere", "--run_dir", tmp_path / "run")
    assert proc.returncode != 0
    ours = [l for l in proc.stderr.splitlines() if l.startswith("cyclegan.py: error:")]
    assert len(ours) == 1 and "nowhere: no manifest.json" in ours[0]
    # and the launcher's own summary names it as the root cause
    assert re.search(r"traceback : cyclegan.py: error: .*nowhere: no manifest.json", proc.stderr)


# ---------------------------------------------------------------------------------------------
# Shards in object storage: S3 through a real S3 API server on 127.0.0.1


@pytest.fixture
def s3_server():
    """A real S3 API server (moto) on 127.0.0.1 with a bucket brushwork-test; yields the client environment."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    sys.path.insert(0, str(REPO / "bench"))
    from s3_server import s3_server as counting_server

    with counting_server("brushwork-test") as (env, _):
        yield env


@pytest.mark.slow
def test_shard_to_and_train_from_s3(tmp_path, s3_server):
    src = make_synth(tmp_path / "src", 8, n_test=2, size=32)
    url = "s3://brushwork-test/synth2photo"
    proc = run_script("data_prep/shard.py", src, "--out", url, "--samples_per_shard", 3, env=s3_server)
    assert proc.returncode == 0, proc.stderr
    assert "train A 8, B 8" in proc.stdout
    local = tmp_path / "local"
    assert run_script("data_prep/shard.py", src, "--out", local, "--samples_per_shard", 3).returncode == 0
    aug = data.Augment(36, 32)
    for root in (url, str(local)):  # same samples, same order, same pixels from S3 as from a folder
        loader, _ = data.train_loader(root, batch_size=2, rank=0, world=1, num_workers=0, seed=1, aug=aug)
        it = iter(loader)
        batches = [next(it) for _ in range(5)]
        if root == url:
            from_s3 = batches
    for a, b in zip(from_s3, batches):
        assert a["A_keys"] == b["A_keys"] and torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
    manifest = shards.read_manifest(url)
    assert manifest["splits"]["train"]["A"]["samples"] == 8
    proc = run_train(tmp_path / "run", url, "--max_steps", 3, "--num_workers", 1, procs=2, env=s3_server)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 0 -> 3" in proc.stdout


def test_object_storage_without_its_package_or_an_unknown_protocol_is_one_line(tmp_path):
    src = make_synth(tmp_path / "src", 2)
    proc = run_script("data_prep/shard.py", src, "--out", "foo://bucket/ds")
    assert_one_error_line(proc, "foo://bucket/ds: unknown storage protocol foo://")
    proc = run_script("data_prep/shard.py", src, "--out", "gs://bucket/ds")  # gcsfs is not installed here
    assert_one_error_line(proc, "gs:// storage needs gcsfs; pip install -e '.[gcs]' in the brushwork checkout")


# ---------------------------------------------------------------------------------------------
# The GPU-only branches, run on the CPU


def tiny_cfg(**kw):
    return CycleGANConfig(ngf=8, ndf=8, n_blocks=2, load_size=36, crop_size=32, pool_size=4, **kw)


def one_step_state(join_passes, fused_adam=False, steps=1):
    from brushwork.training.cyclegan import CycleGANTrainer

    trainer = CycleGANTrainer(tiny_cfg(), join_passes=join_passes, fused_adam=fused_adam)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        batch = {"A": torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(2, 3, 32, 32, generator=g) * 2 - 1}
        loss, _ = trainer.step(batch)
        losses.append(loss)
    grads = {(n, k): p.grad.clone() for n, net in trainer.plain.items() for k, p in net.named_parameters()}
    return losses, trainer.state_dict()["models"], grads


def test_joined_passes_equal_separate_passes():
    (joined,), _, grads_joined = one_step_state(join_passes=True)
    (separate,), _, grads_separate = one_step_state(join_passes=False)
    for k in joined:
        assert torch.allclose(joined[k], separate[k], rtol=1e-5, atol=1e-6), k
    scale = max(float(g.abs().max()) for g in grads_separate.values())
    for key, g in grads_joined.items():  # G's gradients of the G step, D's of the D step
        assert torch.allclose(g, grads_separate[key], atol=1e-5 * scale), key


def test_fused_adam_equals_unfused_on_cpu():
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError) as e:
        pytest.skip(f"this torch has no fused Adam on CPU ({e})")
    from brushwork.training.cyclegan import CycleGANTrainer

    trainer = CycleGANTrainer(tiny_cfg(), fused_adam=True)
    assert trainer.opt_G.defaults["fused"] and trainer.opt_D.defaults["fused"]  # the trainer's GPU branch
    trainer.step({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1})
    # the same gradients through both kinds of Adam, with the trainer's settings: the same weights
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(64, 3, 3, 3, generator=g), torch.randn(64, generator=g)]
    fused = [p.clone().requires_grad_(True) for p in params]
    plain = [p.clone().requires_grad_(True) for p in params]
    opts = [torch.optim.Adam(fused, lr=2e-4, betas=(0.5, 0.999), fused=True),
            torch.optim.Adam(plain, lr=2e-4, betas=(0.5, 0.999))]
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=g) for p in params]
        for group, opt in zip((fused, plain), opts):
            for p, grad in zip(group, grads):
                p.grad = grad.clone()
            opt.step()
    for a, b in zip(fused, plain):
        assert torch.allclose(a, b, atol=1e-7)


def test_gpu_check_says_there_is_no_gpu_and_exits_zero():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: bench/gpu_check.py would run the real check")
    proc = run_script("bench/gpu_check.py")
    assert proc.returncode == 0 and proc.stdout.strip().splitlines() == [
        "gpu_check: no CUDA device here; nothing to check (run it on a GPU machine, or --dry_run to exercise every "
        "row's code on this one)"]


@pytest.mark.slow
def test_one_pass_of_64_slots_on_s3_fetches_each_byte_about_once(tmp_path):
    """400 + 400 images in default shards on a local S3 server that counts what it serves."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    sys.path.insert(0, str(REPO / "bench"))
    import loader
    from s3_server import BUCKET, s3_server

    from brushwork.schemas.bench import LoaderBench

    with s3_server() as (_, counter):
        root = loader.make_shards(f"s3://{BUCKET}/ds", 400, str(tmp_path))
        for slots in (16, 64):
            counter.reset()
            cfg = LoaderBench(slots=slots, workers=(1,), all_slots=True, passes=1)
            got = loader.read_all_slots(root, cfg, lambda: counter.bytes)
            assert got["images_read"] == got["distinct"] == got["images"] == 800  # one pass: each image once
            assert counter.bytes <= 1.3 * got["dataset_bytes"], got  # the old reader: 5x at 16 slots, 30x at 64


@pytest.mark.slow
def test_the_gpu_check_runs_every_rows_code_on_the_cpu_in_a_dry_run():
    """CI has no GPU: bench/gpu_check.py --dry_run walks every row (accelerate-built trainer in each precision,
    compile, channels_last, the fp16 scaler's save/load path, pinned loader, the user commands) at 32 px."""
    proc = subprocess.run([sys.executable, str(REPO / "bench/gpu_check.py"), "--dry_run"], capture_output=True,
                          text=True, cwd=REPO, timeout=900, env={**os.environ, **TRAIN_ENV})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    import json

    names = [json.loads(line)["row"] for line in rows]
    assert names == ["fp32", "bf16", "fp16 + grad scaler", "bf16 + channels_last", "bf16 + compile",
                     "bf16, separate passes", "loader, pinned memory",
                     "accelerate launch, 1 process, bf16: train/cyclegan.py", "eval/translate.py (the run's G_A)",
                     "train/fast_style.py", "eval/stylize.py", "train/gatys.py (runner, batched L-BFGS)",
                     "gatys B=1", "gatys B=2"]  # each once: no row printed twice
    assert all(json.loads(line)["finite"] for line in rows)
    precision = {json.loads(line)["row"]: json.loads(line).get("precision") for line in rows}
    assert precision["bf16"] == "bf16" and precision["fp32"] == "no"  # the Accelerator's, not a stand-in
    assert "dry run: numbers mean nothing" in proc.stdout
