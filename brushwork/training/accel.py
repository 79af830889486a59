"""What ``accelerate launch`` asked for, merged with the script's own flags, and the Accelerator built from it.

``accelerate launch`` passes its settings (its flags, or its ``--config_file`` yaml) to the script
through the environment (``ACCELERATE_MIXED_PRECISION``, ``ACCELERATE_DYNAMO_BACKEND``). They win
unless the script's own flag is given; an explicit flag wins and a disagreement is one line saying
which value is used. The effective values are what the run's config.toml records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from brushwork.core.errors import ConfigError

TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml",
                    "aim": "aim", "clearml": "clearml", "dvclive": "dvclive", "swanlab": "swanlab",
                    "trackio": "trackio"}


@dataclass(frozen=True)
class LaunchSettings:
    mixed_precision: str        # no | bf16 | fp16
    compile: bool
    dynamo_backend: str         # "no" or a torch.compile backend
    notes: tuple[str, ...]      # lines for the log (conflicts, emulation, a launcher that started 1 process)


def resolve(mixed_precision: str | None, compile: bool | None, on_gpu: bool) -> LaunchSettings:
    """Effective precision and compile setting: explicit flag > accelerate launch > off."""
    notes = []
    launcher_mp = (os.environ.get("ACCELERATE_MIXED_PRECISION") or "").lower() or None
    if mixed_precision is None:
        mp = launcher_mp or "no"
    else:
        mp = mixed_precision
        if launcher_mp and launcher_mp != mp:
            notes.append(f"mixed precision: using {mp} (--mixed_precision given to the script) instead of "
                         f"{launcher_mp} (from accelerate launch)")
    if mp not in ("no", "bf16", "fp16"):
        raise ConfigError(f"accelerate launch asked for mixed precision {mp!r}, which brushwork does not support; "
                          "use no, bf16 or fp16")
    if mp == "fp16" and not on_gpu:
        raise ConfigError("mixed precision fp16 needs a GPU; use no (bf16 runs on a CPU, emulated and slow)")
    if mp == "bf16" and not on_gpu:
        notes.append("mixed precision bf16 on a CPU is emulated and several times slower than fp32; fine for "
                     "checks, use no for CPU training")
    launcher_backend = (os.environ.get("ACCELERATE_DYNAMO_BACKEND") or "no").lower()
    if compile is None:
        backend = launcher_backend if launcher_backend != "no" else "no"
    else:
        backend = ("inductor" if launcher_backend == "no" else launcher_backend) if compile else "no"
        if not compile and launcher_backend != "no":
            notes.append(f"compile: off (--compile false given to the script) instead of accelerate launch's "
                         f"dynamo backend {launcher_backend}")
    if single_process_under_launcher():
        notes.append("accelerate launch started 1 process: on a machine without GPUs add --multi_gpu to get N CPU "
                     "ranks (accelerate launch --multi_gpu --num_processes N ...)")
    return LaunchSettings(mp, backend != "no", backend, tuple(notes))


def single_process_under_launcher() -> bool:
    """accelerate launch was asked for several processes but its simple launcher started one.

    Without ``--multi_gpu`` on a machine without GPUs, ``accelerate launch --num_processes 2`` runs
    the script once, with MASTER_ADDR set (for a group it never forms) and no WORLD_SIZE.
    """
    env = os.environ
    return ("ACCELERATE_USE_CPU" in env and "MASTER_ADDR" in env and "WORLD_SIZE" not in env
            and not torch.cuda.is_available())


def trackers(names: tuple[str, ...]) -> list[str] | None:
    """accelerate's ``log_with``; one line naming the package when a tracker is not installed."""
    if not names or "none" in names:
        return None
    import importlib.util

    for name in names:
        package = TRACKER_PACKAGES[name]
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"--log_with {name}: the {package} package is not installed (pip install {package}), "
                              "or use --log_with tensorboard")
    return list(names)


def build_accelerator(settings: LaunchSettings, log_with: tuple[str, ...], project_dir: str):
    """The Accelerator: gloo on CPU (cpu=True makes CPU ranks join one group), NCCL on GPUs."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    ddp = DistributedDataParallelKwargs(gradient_as_bucket_view=True)  # grads live in the buckets: no copy
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=settings.mixed_precision,
                       log_with=trackers(log_with), project_dir=project_dir, kwargs_handlers=[ddp],
                       dynamo_backend=settings.dynamo_backend)
