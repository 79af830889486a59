"""Configs of the benchmarks in bench/ (figures go to BENCHMARKS.md with the command that made them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from brushwork.schemas.fields import Config, setting

BlockConv = Literal["winograd", "direct"]


@dataclass(frozen=True)
class TrainStepBench(Config):
    """``bench/train_step.py``: seconds per CycleGAN step, brushwork against the original code, alternated."""

    sizes: tuple[int, ...] = setting((128, 256), "image sizes (px)", min=16, max=2048)
    batches: tuple[int, ...] = setting((1, 2), "batch sizes", min=1, max=256)
    iters: int = setting(5, "timed steps per measurement", min=1)
    warmup: int = setting(2, "untimed steps first", min=0)
    repeats: int = setting(1, "alternate brushwork / original this many times per row", min=1)
    threads: int = setting(2, "torch threads", min=1, max=1024)
    original: bool = setting(True, "also time the original code (../shared/reference/junyanz_bench.py; CPU only)")
    device: Literal["cpu", "cuda"] = setting("cpu", "where brushwork's step runs")
    bf16: bool = setting(False, "bf16 autocast for brushwork (pays on GPUs)")
    channels_last: bool = setting(False, "channels_last memory format")
    join_passes: Literal["auto", "on", "off"] = setting("auto", "batch passes through one network together (auto: on "
                                                                "GPUs only, as the trainer)")
    block_conv: BlockConv = setting("winograd", "ResNet-block convs: Winograd F(4x4,3x3) (the CPU default) or direct")
    compile: bool = setting(False, "torch.compile the networks")
    memory: bool = setting(False, "run brushwork's steps in a fresh process too, and report each side's peak RSS")


@dataclass(frozen=True)
class RooflineBench(Config):
    """``bench/roofline.py``: this machine's conv/matmul peak, the FLOPs a step executes, and utilisation."""

    sizes: tuple[int, ...] = setting((128, 256), "image sizes (px)", min=16, max=2048)
    threads: int = setting(2, "torch threads", min=1, max=1024)
    iters: int = setting(3, "timed steps per size", min=1)
    block_conv: BlockConv = setting("winograd", "ResNet-block convs the timed step runs (the FLOPs counted follow it)")


@dataclass(frozen=True)
class ProfileBench(Config):
    """``bench/profile_step.py``: the top operators of one CycleGAN step (torch.profiler)."""

    size: int = setting(128, "image size (px)", min=16, max=2048)
    threads: int = setting(2, "torch threads", min=1, max=1024)
    rows: int = setting(12, "operators listed", min=1)
    block_conv: BlockConv = setting("winograd", "ResNet-block convs: Winograd or direct")


@dataclass(frozen=True)
class ConvBench(Config):
    """``bench/conv.py``: one 3x3 conv forward + backward, Winograd against direct, per map size and width."""

    maps: tuple[int, ...] = setting((16, 32, 64), "feature map sides (px)", min=4, max=1024)
    channels: tuple[int, ...] = setting((64, 128, 256), "channels in and out", min=1, max=4096)
    repeats: int = setting(10, "timed runs per cell (median, min and max reported)", min=1)
    threads: int = setting(2, "torch threads", min=1, max=1024)


@dataclass(frozen=True)
class DDPBench(Config):
    """``bench/ddp_overhead.py``: the trainer's step under 1 vs N processes (run under accelerate launch)."""

    size: int = setting(128, "image size (px)", min=16, max=2048)
    iters: int = setting(4, "timed steps", min=1)
    warmup: int = setting(1, "untimed steps first", min=0)
    block_conv: BlockConv = setting("winograd", "ResNet-block convs (winograd: the trainer's CPU default)")
    alternate: int = setting(0, "run as the driver: launch 1 and 2 processes alternately this many times each and "
                                "print the overhead with its spread (0: be one launched run)", min=0, max=100)


@dataclass(frozen=True)
class GatysBench(Config):
    """``bench/gatys.py``: Gatys seconds per iteration per pair, batched against sequential; peak memory."""

    sizes: tuple[int, ...] = setting((128, 256), "image sizes (px)", min=16, max=4096)
    batches: tuple[int, ...] = setting((1, 4, 8), "pairs per batch", min=1, max=256)
    iters: int = setting(5, "timed L-BFGS iterations per measurement", min=1)
    repeats: int = setting(3, "measurements per row, alternated over the rows (median, min, max)", min=1)
    threads: int = setting(2, "torch threads", min=1, max=1024)
    memory_size: int = setting(512, "image size of the peak-memory run (px; 0: skip it)", min=0, max=4096)
    device: Literal["auto", "cpu", "cuda"] = setting("auto", "where to run (auto: cuda if available)")
    winograd: Literal["on", "off", "both"] = setting("on", "VGG's wide 3x3 convs as Winograd on CPU (both: A/B "
                                                         "alternated in one run)")
    memory_child: bool = setting(False, "internal: run the peak-memory measurement in this process")


@dataclass(frozen=True)
class LoaderBench(Config):
    """``bench/loader.py``: decode + augment throughput from shards, images/s."""

    shards: str = setting("", "a shard root (default: the bundled monet2photo samples, sharded with the defaults)")
    workers: tuple[int, ...] = setting((0, 1, 2), "DataLoader worker counts to time", min=0, max=64)
    batches: int = setting(200, "timed batches per measurement", min=1)
    batch_size: int = setting(1, "images per domain per batch", min=1)
    load_size: int = setting(286, "resize before cropping", min=8)
    crop_size: int = setting(256, "crop", min=8)
    slots: int = setting(1, "simulate this rank as one of N equal ranks (world size), e.g. 16", min=1, max=4096)
    domain_size: int = setting(0, "shard a synthetic domain of this many images instead (e.g. 400; 0: off)", min=0)
    all_slots: bool = setting(False, "read every slot of the simulated world (--slots ranks x the first --workers) "
                                     "one after another, without decoding: images read, distinct, bytes fetched")
    passes: int = setting(1, "with --all_slots: passes to read", min=1, max=1000)
    s3: bool = setting(False, "with --all_slots: put the shards on a local S3 server (moto on 127.0.0.1) and count "
                              "the bytes it serves")


@dataclass(frozen=True)
class FastStyleBench(Config):
    """``bench/fast_style.py``: fast-style training step and stylise throughput against Gatys, one run."""

    train_size: int = setting(256, "training step image size (px)", min=16, max=2048)
    train_batch: int = setting(4, "training step batch", min=1)
    stylize_size: int = setting(512, "stylise / Gatys image size (px)", min=16, max=4096)
    width: int = setting(32, "network width (32: the paper)", min=2)
    iters: int = setting(3, "timed training steps", min=1)
    images: int = setting(8, "images stylised for the throughput", min=1)
    gatys_iterations: int = setting(300, "Gatys iterations per image (the paper); its seconds are extrapolated from "
                                         "--gatys_timed", min=1)
    gatys_timed: int = setting(3, "Gatys iterations actually timed", min=1)
    threads: int = setting(2, "torch threads", min=1, max=1024)


@dataclass(frozen=True)
class GPUCheck(Config):
    """``bench/gpu_check.py``: the GPU acceptance in one command; prints a table for BENCHMARKS.md."""

    sizes: tuple[int, ...] = setting((256,), "step image sizes (px)", min=16, max=2048)
    batches: tuple[int, ...] = setting((1, 4), "step batch sizes", min=1)
    iters: int = setting(10, "timed steps per row", min=1)
    warmup: int = setting(3, "untimed steps first", min=0)
    gatys_size: int = setting(512, "Gatys image size (px)", min=16)
    gatys_batch: int = setting(8, "Gatys batch", min=1)
    compile: bool = setting(True, "also time torch.compile'd steps")
    nccl: bool = setting(True, "with 2+ GPUs, also a 2-rank NCCL step")
    dry_run: bool = setting(False, "run every row's code on this machine's device at 32 px with 1 timed step (CI "
                                   "on a CPU: the numbers mean nothing, the code paths are exercised)")


@dataclass(frozen=True)
class MutationsConfig(Config):
    """``bench/mutations.py``: break the library on purpose, one claim at a time; each break must fail a test."""

    only: tuple[str, ...] = setting((), "run only these mutations (their numbers or names; default: all)")
    list: bool = setting(False, "list the mutations and the tests meant to catch each, then exit")
    timeout: int = setting(900, "seconds a mutant's tests may take before it counts as not caught", min=10)


@dataclass(frozen=True)
class AdaINBench(Config):
    """``bench/adain.py``: AdaIN's training step and stylise time against fast style and Gatys, one run."""

    train_size: int = setting(256, "training step crop (px; the paper: 256)", min=16, max=2048)
    train_batch: int = setting(8, "training step batch (the paper: 8)", min=1)
    stylize_size: int = setting(512, "stylise / Gatys image size (px)", min=16, max=4096)
    iters: int = setting(3, "timed training steps", min=1)
    images: int = setting(4, "images stylised, per method, alternating AdaIN and fast style", min=1)
    gatys_iterations: int = setting(300, "Gatys iterations per image; its seconds are extrapolated from --gatys_timed",
                                    min=1)
    gatys_timed: int = setting(3, "Gatys iterations actually timed", min=1)
    threads: int = setting(2, "torch threads", min=1, max=1024)
