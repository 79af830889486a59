#!/usr/bin/env python3
"""The GPU acceptance in one command: every GPU-only branch run for real, through the paths users run.

  python bench/gpu_check.py                  # on a CUDA machine: the table for BENCHMARKS.md
  python bench/gpu_check.py --dry_run        # anywhere: every row's code at 32 px, 1 step (what CI runs)

Step rows build the trainer as train/cyclegan.py does: an Accelerator from brushwork's own set-up
(accel.build_accelerator) with the row's precision and dynamo backend, so autocast, the fp16 grad
scaler and compile are accelerate's, not stand-ins. Rows: fp32 (TF32 off), bf16, fp16 + grad scaler
(its state saved and loaded back through the trainer), bf16 + channels_last, bf16 + compile, bf16
with separate passes; then the loader with pinned memory, a one-GPU `accelerate launch
train/cyclegan.py` run, eval/translate.py, eval/stylize.py and train/gatys.py on the device, Gatys
batched against sequential, and with 2+ GPUs a 2-rank NCCL step (bench/ddp_overhead.py). Every row
checks that its losses (or outputs) are finite; the exit code is 1 if one is not. Each row is printed
as a JSON line when it is done, then the tables.
"""

from brushwork import cli
from brushwork.schemas.bench import GPUCheck

if __name__ == "__main__":  # --help answers before torch is imported (that takes seconds)
    cli.help_before_imports(cli.Command(GPUCheck, None, __doc__))

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, machine, time_steps  # noqa: E402

TINY = {"ngf": 8, "ndf": 8, "n_blocks": 2}  # a dry run's model: the code paths, not the speed
STEP_ROWS = (  # name, mixed precision, dynamo backend (None: the device's compiler), channels_last, joined passes
    ("fp32", "no", "no", False, True),
    ("bf16", "bf16", "no", False, True),
    ("fp16 + grad scaler", "fp16", "no", False, True),
    ("bf16 + channels_last", "bf16", "no", True, True),
    ("bf16 + compile", "bf16", None, False, True),
    ("bf16, separate passes", "bf16", "no", False, False),
)


def fresh_accelerator(mixed_precision: str, backend: str):
    """brushwork's Accelerator for one row; accelerate keeps one state per process, so it is reset first."""
    from accelerate.state import AcceleratorState

    from brushwork.training import accel

    AcceleratorState._reset_state(reset_partial_state=True)
    settings = accel.LaunchSettings(mixed_precision, backend != "no", backend, ())
    return accel.build_accelerator(settings, ("none",), tempfile.mkdtemp(prefix="gpu_check_"))


def finite(values) -> bool:
    return all(bool(torch.isfinite(torch.as_tensor(v)).all()) for v in values)


def step_row(name, mixed_precision, backend, channels_last, join, size, batch, cfg, on_gpu) -> dict:
    """The trainer's step as train/cyclegan.py builds it (the paper's model; a tiny one in a dry run)."""
    from brushwork.schemas.train import CycleGANConfig
    from brushwork.training.cyclegan import CycleGANTrainer

    if backend is None:
        backend = "inductor" if on_gpu else "eager"  # the CPU dry run checks the path, not the compiler
    note = ""
    if mixed_precision == "fp16" and not on_gpu:
        note = "CPU: accelerate runs fp16 as fp32 without a scaler"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    accelerator = fresh_accelerator(mixed_precision, backend)
    model = CycleGANConfig(winograd=False, **(TINY if cfg.dry_run else {}))
    trainer = CycleGANTrainer(model, accelerator, device=accelerator.device, join_passes=join)
    if channels_last:
        for net in trainer.plain.values():
            net.to(memory_format=torch.channels_last)
    times = time_steps(trainer, size, batch, cfg.iters, cfg.warmup, channels_last)
    losses, _ = trainer.step({d: torch.rand(batch, 3, size, size, device=accelerator.device) * 2 - 1 for d in "AB"})
    ok = finite(losses.values())
    if trainer.scaler is not None:  # fp16: the scaler's state goes through the trainer's save and load
        state = trainer.state_dict()
        again = CycleGANTrainer(model, accelerator, device=accelerator.device)
        again.load_state_dict(state)
        ok = ok and again.scaler.state_dict() == trainer.scaler.state_dict()
        note = f"scaler scale {trainer.scaler.get_scale():g}, saved and loaded"
    median = statistics.median(times)
    return {"row": name, "size": size, "batch": batch, "s_per_step": median, "min": min(times), "max": max(times),
            "images_per_s_both_domains": 2 * batch / median, "finite": ok, "note": note,
            "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if on_gpu else float("nan"),
            "precision": accelerator.mixed_precision, "compiled": backend != "no"}


def loader_row(work: Path, size: int, on_gpu: bool) -> dict:
    from brushwork.data import shard_build, synth
    from brushwork.data import stream as data
    from brushwork.schemas.data import ShardConfig

    src = work / "src"
    synth.write_dataset(src, n_train=16, n_test=4, size=size, seed=0)
    shard_build.build(ShardConfig(input=str(src), out=str(work / "shards"), samples_per_shard=8),
                      say=lambda line: None)  # shard.py's own path
    loader, _ = data.train_loader(str(work / "shards"), batch_size=4, rank=0, world=1, num_workers=2, seed=0,
                                  aug=data.Augment(size, size, flip=True), buffer=16, start_batch=0, pin_memory=True)
    stream = data.batches(loader)
    start, n, pinned = time.perf_counter(), 0, True
    for _ in range(8):
        batch = next(stream)
        pinned = pinned and (batch["A"].is_pinned() or not on_gpu)
        n += batch["A"].shape[0]
    return {"row": "loader, pinned memory", "size": size, "batch": 4, "images_per_s": n / (time.perf_counter() - start),
            "finite": pinned, "note": "batches pinned" if on_gpu else "CPU: pinning skipped"}


def command_row(name: str, argv: list[str], env: dict | None = None) -> dict:
    """A user's command, timed end to end; finite: it exited 0."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
    return {"row": name, "seconds": seconds, "finite": proc.returncode == 0, "note": proc.stdout.strip()[-120:]}


def user_rows(work: Path, size: int, iterations: int) -> list[dict]:
    """The commands users run on a GPU: one-GPU accelerate launch training, translate, stylize, Gatys."""
    py, launcher = sys.executable, str(Path(sys.executable).parent / "accelerate")
    photos = work / "src" / "testB"
    style = REPO / "data_prep" / "samples" / "gatys" / "style" / "the_scream.jpg"
    tiny = ["--ngf", "8", "--ndf", "8", "--n_blocks", "2", "--load_size", str(size + 4), "--crop_size", str(size)]
    rows = [command_row("accelerate launch, 1 process, bf16: train/cyclegan.py",
                        [launcher, "launch", "--num_processes", "1", "--mixed_precision", "bf16", "--dynamo_backend",
                         "no", str(REPO / "train/cyclegan.py"), "--dataset", "synth", "--data", str(work / "shards"),
                         "--run_dir", str(work / "run"), *tiny, "--max_steps", "4", "--num_workers", "1"])]
    rows.append(command_row("eval/translate.py (the run's G_A)", [py, str(REPO / "eval/translate.py"),
                                                                  str(work / "run"), "--input", str(photos), "--out",
                                                                  str(work / "translated")]))
    rows.append(command_row("train/fast_style.py",
                            [py, str(REPO / "train/fast_style.py"), "--style", str(style), "--data",
                             str(work / "shards"), "--run_dir", str(work / "fast"), "--random_vgg", "--width", "8",
                             "--size", str(size), "--batch_size", "2", "--max_steps", "2"]))
    if rows[-1]["finite"]:
        rows.append(command_row("eval/stylize.py", [py, str(REPO / "eval/stylize.py"), str(work / "fast"), "--input",
                                                    str(photos), "--out", str(work / "stylized")]))
    rows.append(command_row("train/gatys.py (runner, batched L-BFGS)",
                            [py, str(REPO / "train/gatys.py"), "--content", str(photos), "--style", str(style),
                             "--out", str(work / "gatys"), "--random_vgg", "--image_size", str(size),
                             "--iterations", str(iterations), "--batch_size", "4"]))
    return rows


def gatys_rows(size: int, batch: int, device: str, on_gpu: bool) -> list[dict]:
    from gatys import problem  # bench/gatys.py

    from brushwork.gatys import optim

    rows = []
    for B in (1, batch):
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        objective, x0 = problem(B, size, device)
        optim.batched_lbfgs(x0, objective, max_iter=2, line_search_fn=None)  # warm-up
        if on_gpu:
            torch.cuda.synchronize()
        start = time.perf_counter()
        x, hist = optim.batched_lbfgs(x0, objective, max_iter=10, line_search_fn=None, tolerance_change=0,
                                      tolerance_grad=0)
        if on_gpu:
            torch.cuda.synchronize()
        s = (time.perf_counter() - start) / len(hist[0])
        rows.append({"row": f"gatys B={B}", "size": size, "batch": B, "s_per_iteration_per_pair": s / B,
                     "finite": finite([x, *[h[-1] for h in hist]]),
                     "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if on_gpu else float("nan")})
    rows[-1]["speedup_vs_B1"] = rows[0]["s_per_iteration_per_pair"] / rows[-1]["s_per_iteration_per_pair"]
    return rows


def nccl_row() -> dict:
    launcher = str(Path(sys.executable).parent / "accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "4"}
    outs = {}
    for n in (1, 2):
        cmd = [launcher, "launch", "--num_processes", str(n), *(["--multi_gpu"] if n > 1 else []),
               "--mixed_precision", "bf16", str(REPO / "bench" / "ddp_overhead.py"), "--size", "256", "--iters", "10",
               "--block_conv", "direct"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout.strip().splitlines()
        outs[n] = json.loads(out[-1])["s_per_step"]
    return {"row": "NCCL 2 ranks vs 1", "s_per_step_1": outs[1], "s_per_step_2": outs[2],
            "overhead": outs[2] / outs[1] - 1, "finite": True}


def show(row: dict) -> dict:
    print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}),
          flush=True)
    return row


def run(cfg: GPUCheck) -> int:
    on_gpu = torch.cuda.is_available()
    if not on_gpu and not cfg.dry_run:
        print("gpu_check: no CUDA device here; nothing to check (run it on a GPU machine, or --dry_run to exercise "
              "every row's code on this one)")
        return 0
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 rows are fp32, not TF32
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    if cfg.dry_run:
        cfg = cfg.replace(sizes=(32,), batches=(1,), iters=1, warmup=0, gatys_size=32, gatys_batch=2)
    device = "cuda" if on_gpu else "cpu"
    steps = [show(step_row(*spec, size, batch, cfg, on_gpu)) for size in cfg.sizes for batch in cfg.batches
             for spec in STEP_ROWS if cfg.compile or spec[2] is not None]
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        size = 32 if cfg.dry_run else 256
        others = [show(loader_row(work, size, on_gpu)), *map(show, user_rows(work, size, 2 if cfg.dry_run else 50))]
    gatys = [show(r) for r in gatys_rows(cfg.gatys_size, cfg.gatys_batch, device, on_gpu)]
    nccl = show(nccl_row()) if cfg.nccl and on_gpu and torch.cuda.device_count() >= 2 else None
    print(f"\n{machine()}{' (dry run: numbers mean nothing)' if cfg.dry_run else ''}\n")
    print("| step | px | batch | s/step median (min-max) | images/s (A+B) | peak GiB | finite | note |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in steps:
        print(f"| {r['row']} | {r['size']} | {r['batch']} | {r['s_per_step']:.4f} ({r['min']:.4f}-{r['max']:.4f}) | "
              f"{r['images_per_s_both_domains']:.1f} | {r['peak_gib']:.2f} | {r['finite']} | {r['note']} |")
    print("\n| command | seconds | ok | last output |\n| --- | --- | --- | --- |")
    for r in others:
        seconds = r.get("seconds", n_images := r.get("images_per_s", 0))
        shown = f"{seconds:.1f}" if "seconds" in r else f"{n_images:.0f} img/s"
        print(f"| {r['row']} | {shown} | {r['finite']} | {r['note'].splitlines()[-1] if r['note'] else ''} |")
    print("\n| Gatys | px | B | s per iteration per pair | peak GiB | finite |\n| --- | --- | --- | --- | --- | --- |")
    for r in gatys:
        print(f"| {r['row']} | {r['size']} | {r['batch']} | {r['s_per_iteration_per_pair']:.4f} | {r['peak_gib']:.2f} | "
              f"{r['finite']} |")
    print(f"\nGatys batched vs sequential: {gatys[-1]['speedup_vs_B1']:.2f}x")
    if nccl:
        print(f"NCCL, 2 ranks: {nccl['s_per_step_2']:.4f} s/step vs {nccl['s_per_step_1']:.4f} on 1 "
              f"({100 * nccl['overhead']:+.1f} %)")
    bad = [r["row"] for r in (*steps, *others, *gatys) if not r["finite"]]
    if bad:
        print(f"gpu_check: not finite or failed: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


COMMAND = cli.Command(GPUCheck, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
