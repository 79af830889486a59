"""The training loop every trainer shares: resume, data position, schedule, logging, samples, checkpoints, signals.

A trainer (``CycleGANTrainer``, ``FastStyleTrainer``) owns its networks, optimisers, scaler and
per-rank state and offers a small interface: ``step(batch) -> (losses, images)``, ``set_lr``,
``state_dict()`` / ``load_state_dict()`` (the checkpoint parts ``models``, ``optim``, ``rank``),
``export(run_dir, info)``, ``sample(images) -> (columns, labels)``, ``summary(losses)`` and its
``arch`` (the settings a checkpoint must match). ``TrainingLoop`` owns the counters (step, images
seen, data position) and does the rest, the same way for every trainer:

* the run dir belongs to one run (no ``--resume`` where checkpoints exist is refused);
* resume restores everything; on another world size the data order restarts, the LR continues;
* the LR follows images seen (``schedule``), so every rank agrees on it;
* every ``log_every`` steps: losses averaged over ranks to the trackers, and one progress line
  (a tqdm bar on a terminal); every ``sample_every``: a labelled grid to ``samples/`` and the tracker;
* a checkpoint (and a refreshed ``export/``) every ``checkpoint_every`` steps, at each epoch end,
  at the end, and on SIGTERM/SIGUSR1 (cluster preemption), after which the run exits 0.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from brushwork.core import distributed, presets
from brushwork.core.errors import BrushworkError
from brushwork.core.log import say
from brushwork.core.progress import Progress
from brushwork.data.images import to_unit_tensor
from brushwork.evaluation.grids import labelled_grid
from brushwork.models import registry
from brushwork.training import checkpoint, schedule

SIGNAL_CHECK_EVERY = 10  # ranks agree on a preemption signal every N steps (one tiny all-reduce)


class Trainer(Protocol):
    kind: str       # its entry in registry.KINDS, recorded in every checkpoint and export
    arch: dict
    data_domains: tuple[str, ...]
    data_sources: tuple[tuple[str, str, str], ...]  # (batch key, shard root, domain)

    def learning_rate(self, images_seen: int, epoch_images: int) -> float: ...
    def step(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]: ...
    def set_lr(self, lr: float) -> None: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def export(self, run_dir: Path, info: dict) -> Path: ...
    def sample(self, images: dict) -> tuple[list[torch.Tensor], list[str]]: ...
    def summary(self, losses: dict[str, float]) -> str: ...


def fingerprint(net: torch.nn.Module) -> torch.Tensor:
    """(Σw, Σw²) over all parameters in float64: equal on every rank iff DDP kept them in sync."""
    with torch.no_grad():
        flat = torch.cat([p.detach().double().flatten() for p in net.parameters()])
        return torch.stack([flat.sum(), flat.square().sum()]).cpu()


@dataclass
class Counters:
    """Where training stands; all of it goes into ``meta.json``."""

    step: int = 0
    images_seen: int = 0        # global count: the LR and epoch follow it
    data_seed: int = 0          # the stream's seed (changes when the world size does)
    data_batches: int = 0       # batches this stream layout has delivered: the data position

    def state_dict(self) -> dict:
        return {"step": self.step, "images_seen": self.images_seen, "data_seed": self.data_seed,
                "data_batches": self.data_batches}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.images_seen = int(state["step"]), int(state["images_seen"])
        self.data_seed, self.data_batches = int(state["data_seed"]), int(state["data_batches"])


def same_files(old, new) -> bool:
    """Equal values, or local paths (or lists of them) that name the same files however they are spelled."""
    if old == new:
        return True
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return all(same_files(a, b) for a, b in zip(old, new))
    import os

    if isinstance(old, str) and isinstance(new, str) and old and new and "://" not in old + new:
        return os.path.exists(old) and os.path.exists(new) and os.path.realpath(old) == os.path.realpath(new)
    return False


class TrainingLoop:
    """One run of a trainer: ``resume()``, then ``run(loader_factory)``; see the module docstring."""

    def __init__(self, trainer: Trainer, cfg, accelerator, run_dir: Path, *, name: str, config_dict: dict):
        self.trainer, self.cfg, self.acc = trainer, cfg, accelerator
        self.run_dir, self.name, self.config_dict = Path(run_dir), name, config_dict
        self.rank, self.world = accelerator.process_index, accelerator.num_processes
        self.counters = Counters(data_seed=cfg.seed)
        self.global_batch = cfg.batch_size * self.world
        self.stop_signals: list[int] = []
        self.progress: Progress | None = None

    # -- state -----------------------------------------------------------------------------------

    def data_fingerprint(self) -> str:
        """The shards' fingerprint (from their manifest): what the data is, wherever it lies."""
        if not hasattr(self, "_data_fingerprint"):
            from brushwork.data.shards import read_manifest

            prints = []
            for root in dict.fromkeys(root for _, root, _ in self.trainer.data_sources):
                try:
                    prints.append(str(read_manifest(root).get("fingerprint", "")))
                except BrushworkError:
                    prints.append("")
            self._data_fingerprint = "+".join(prints)
        return self._data_fingerprint

    def state_dict(self) -> dict:
        """The checkpoint: the trainer's parts plus meta (counters, world, architecture, config)."""
        state = self.trainer.state_dict()
        meta = {**self.counters.state_dict(), "kind": self.trainer.kind, "world": self.world,
                "batch_size": self.cfg.batch_size,
                "epoch": schedule.epoch_of(self.counters.images_seen, self.epoch_images), "arch": self.trainer.arch,
                "config": self.config_dict, "data_fingerprint": self.data_fingerprint()}
        return {"meta": meta, **state}

    def load_state_dict(self, state: dict) -> None:
        self.trainer.load_state_dict(state)
        self.counters.load_state_dict(state["meta"])

    def resume(self) -> Path | None:
        """Apply the run-dir rule and ``--resume``; returns the checkpoint resumed from (None: a fresh start)."""
        checkpoint.claim_run_dir(self.run_dir, self.cfg.resume)
        path = checkpoint.resolve(self.run_dir, self.cfg.resume)
        if path is None:
            return None
        state = checkpoint.load(path, self.rank)
        registry.expect_resumable(state["meta"], self.trainer.kind, path)  # before its parts: they differ by kind
        checkpoint.check_parts(state, self.trainer.state_dict(), path)
        checkpoint.check_compatible(state["meta"], self.trainer.arch, path)
        allowed = self.check_changes(state["meta"], path)
        self.load_state_dict(state)
        meta = state["meta"]
        workers = lambda config: max(1, int((config or {}).get("num_workers", 0) or 0))
        layout_changed = (meta.get("world") != self.world or meta.get("batch_size") != self.cfg.batch_size
                          or workers(meta.get("config")) != workers(self.config_dict))
        if layout_changed:
            # the stream is laid out per rank and worker: with another layout it restarts, freshly shuffled
            self.note(f"resuming with {self.world} process(es) x batch {self.cfg.batch_size} x "
                      f"{workers(self.config_dict)} loader worker(s) (checkpoint: {meta.get('world')} x "
                      f"{meta.get('batch_size')} x {workers(meta.get('config'))}): the data order restarts; the LR "
                      "schedule continues")
        elif allowed:
            self.note(f"resuming with {', '.join(allowed)} changed (--allow_change): the data order restarts at "
                      f"step {self.counters.step}; the LR schedule continues")
        if layout_changed or allowed:
            self.counters.data_seed, self.counters.data_batches = self.cfg.seed + 1 + self.counters.step, 0
        return path

    def check_changes(self, meta: dict, path: Path) -> list[str]:
        """Compare this run's settings with those the checkpoint recorded: free ones pass with a line each,
        the rest are refused unless ``--allow_change`` names them. Returns the allowed changes.

        The same files under another spelling are no change: local paths compare resolved, and ``data``
        compares by the shards' fingerprint (moved or copied shards are the same data).
        """
        import json

        from brushwork.schemas.train import RESUME_MAY_CHANGE

        recorded = meta.get("config")
        if not isinstance(recorded, dict):
            return []
        now = json.loads(json.dumps(self.config_dict, default=str))  # as meta.json holds it: lists, not tuples
        same_data = meta.get("data_fingerprint") and meta.get("data_fingerprint") == self.data_fingerprint()
        changes = {k: (recorded[k], v) for k, v in now.items()
                   if k in recorded and not (k == "data" and same_data) and not same_files(recorded[k], v)}
        for key in sorted(k for k in changes if k in RESUME_MAY_CHANGE and k not in ("resume", "allow_change")):
            self.note(f"resume: {key} {changes[key][0]!r} -> {changes[key][1]!r}")
        shaping = sorted(k for k in changes if k not in RESUME_MAY_CHANGE)
        refused = [k for k in shaping if k not in self.cfg.allow_change]
        if refused:
            listed = "; ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in refused)
            raise BrushworkError(f"{path} was trained with other settings ({listed}); resume with the same ones, "
                                 f"start a new --run_dir, or resume anyway with --allow_change {','.join(refused)}")
        return shaping

    # -- the loop --------------------------------------------------------------------------------

    def note(self, line: str) -> None:
        if self.progress is not None:
            self.progress.write(line)
        elif self.acc.is_main_process:
            say(line, every_rank=True)  # the main process of the Accelerator (RANK may be unset)

    def run(self, loader, steps_per_epoch: int, describe: str = "") -> bool:
        """Train to the end of the schedule (or --max_steps); returns True if stopped by a signal.

        ``loader`` must start at the data position of ``counters`` (built after ``resume``).
        """
        from brushwork.data.stream import batches as loader_batches

        cfg, c = self.cfg, self.counters
        self.epoch_images = steps_per_epoch * self.global_batch
        epochs = cfg.epochs + cfg.epochs_decay
        # the schedule ends at a number of images, not steps: a resume on another number of processes (another
        # global batch) trains the images that are left, and the progress line and TensorBoard count images
        total_images = schedule.total_images(self.epoch_images, cfg.epochs, cfg.epochs_decay)
        end_step = c.step + math.ceil(max(0, total_images - c.images_seen) / self.global_batch)
        if cfg.max_steps:
            end_step = min(end_step, max(cfg.max_steps, c.step))
        end_images = c.images_seen + (end_step - c.step) * self.global_batch
        self.note(f"training {self.name}: {self.world} process(es) x batch {cfg.batch_size} on {self.acc.device}, "
                  f"{steps_per_epoch} steps/epoch, step {c.step} -> {end_step}, images {c.images_seen} -> "
                  f"{end_images} of {total_images}; run dir {self.run_dir}" + (f"; {describe}" if describe else ""))
        if c.step >= end_step:
            self.note(f"already at step {c.step} ({c.images_seen} images): nothing to train (raise --max_steps or "
                      "--epochs to continue)")
            return False
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, lambda signum, _frame: self.stop_signals.append(signum))
        self.progress = Progress(end_images, desc="images", unit="img", initial=c.images_seen,
                                 enabled=self.acc.is_main_process, every_seconds=None)
        distributed.work_started()
        stream = loader_batches(loader)
        device = self.acc.device
        last_log, last_time = c.step, time.perf_counter()
        stopped = False
        try:
            while c.step < end_step:
                batch = next(stream)
                batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
                lr = self.trainer.learning_rate(c.images_seen, self.epoch_images)
                self.trainer.set_lr(lr)
                losses, images = self.trainer.step(batch)
                epoch_before = schedule.epoch_of(c.images_seen, self.epoch_images)
                c.step, c.data_batches = c.step + 1, c.data_batches + 1
                c.images_seen += self.global_batch
                self.progress.update(self.global_batch)
                if c.step % cfg.log_every == 0 or c.step == end_step:
                    now = time.perf_counter()
                    rate = (c.step - last_log) * self.global_batch * len(self.trainer.data_domains) / (now - last_time)
                    self.log(losses, lr, rate, end_images, epochs)
                    last_log, last_time = c.step, now
                if c.step % cfg.sample_every == 0 or c.step == end_step:
                    self.write_sample(images)
                stopped = self.should_stop()
                epoch_end = schedule.epoch_of(c.images_seen, self.epoch_images) > epoch_before
                if stopped or epoch_end or c.step % cfg.checkpoint_every == 0 or c.step == end_step:
                    self.refuse_non_finite(losses)  # never a checkpoint or an export of diverged weights
                    self.save()
                if stopped:
                    self.note(f"stopped by signal at step {c.step}; resume with --resume auto")
                    break
        finally:
            self.progress.close()
        return stopped

    def refuse_non_finite(self, losses: dict[str, torch.Tensor], values: list[float] | None = None) -> None:
        """Stop with one line when a loss is NaN or infinite on any rank (every rank agrees: one all-reduce;
        ``values``: the losses already averaged over the ranks)."""
        if values is None:
            flag = torch.stack([v.detach().float() for v in losses.values()]).isfinite().all().logical_not()
            if self.acc.reduce(flag.float().reshape(1), "max").item() == 0:
                return
            values = [float("nan")] * len(losses)
        bad = ", ".join(f"{k} = {v}" for k, v in zip(losses, values) if not math.isfinite(v))
        latest = checkpoint.latest(self.run_dir)
        fix = (f"the last good checkpoint is {latest}: resume from it with a lower --lr (now {self.cfg.lr:g}) and "
               "--allow_change lr" if latest else f"no checkpoint was written: rerun with a lower --lr (now "
               f"{self.cfg.lr:g}) in a new --run_dir")
        raise BrushworkError(f"step {self.counters.step}: the loss is not finite ({bad}); stopped without saving; "
                             f"{fix}")

    def log(self, losses: dict[str, torch.Tensor], lr: float, rate: float, end_images: int, epochs: int) -> None:
        names = list(losses)
        values = self.acc.reduce(torch.stack([losses[k].float() for k in names]), "mean").tolist()
        if not all(math.isfinite(v) for v in values):
            self.refuse_non_finite(losses, values)
        mean = dict(zip(names, values))
        c = self.counters
        scalars = {f"loss/{k}": v for k, v in mean.items()}
        scalars.update({"lr": lr, "images_per_s": rate, "epoch": c.images_seen / self.epoch_images, "step": c.step})
        self.acc.log(scalars, step=c.images_seen)  # the axis is images seen: the same on any number of processes
        epoch = c.images_seen / self.epoch_images
        domains = "+".join(self.trainer.data_domains)
        fields = f"{self.trainer.summary(mean)} | lr {lr:.1e} | {rate:.1f} img/s ({domains})"
        self.progress.line(fields, position=f"images {c.images_seen}/{end_images} (epoch {epoch:.2f}/{epochs}, "
                                            f"step {c.step})")

    def write_sample(self, images: dict) -> None:
        if not self.acc.is_main_process:
            return
        from brushwork.data.images import save_image

        columns, labels = self.trainer.sample(images)
        grid = labelled_grid(columns, labels)  # a trainer's columns may hold several rows (a style above a result)
        save_image(grid, self.run_dir / "samples" / f"step_{self.counters.step:08d}.png")
        tb = self.tensorboard()
        if tb is not None:
            tb.add_image("samples", to_unit_tensor(grid), self.counters.images_seen)

    def tensorboard(self):
        """The SummaryWriter, or None (another tracker, --log_with none, or not rank 0: accelerate then
        hands out a blank tracker without add_image)."""
        if "tensorboard" not in self.cfg.log_with or not self.acc.is_main_process:
            return None
        try:
            return self.acc.get_tracker("tensorboard", unwrap=True)
        except (ValueError, AttributeError, KeyError):
            return None

    def should_stop(self) -> bool:
        if self.world == 1:
            return bool(self.stop_signals)
        if self.counters.step % SIGNAL_CHECK_EVERY:  # agree on stopping without a sync every step
            return False
        flag = torch.tensor([float(bool(self.stop_signals))], device=self.acc.device)
        return self.acc.reduce(flag, "max").item() > 0

    def save(self) -> Path:
        c = self.counters
        path = checkpoint.save(self.run_dir, self.state_dict(), step=c.step, rank=self.rank,
                               barrier=self.acc.wait_for_everyone, keep_last=self.cfg.keep_last)
        if self.acc.is_main_process:
            self.trainer.export(self.run_dir, {"kind": self.trainer.kind, "step": c.step, "checkpoint": str(path),
                                               "arch": self.trainer.arch, "name": self.name})
        self.note(f"checkpoint: {path} (step {c.step}; export/ refreshed)")
        return path


# ---------------------------------------------------------------------------------------------
# A training run, start to end: what every train/*.py script does around its own trainer


def launch(cfg, domains: tuple[str, ...], roots: dict[str, tuple[str, ...]] | None = None):
    """(accelerator, cfg with the effective precision/compile and data): accelerate's settings unless a flag says
    otherwise; ``--data`` checked for the ``domains`` the trainer reads (or each of ``roots``, {root: domains},
    when it reads several datasets), or (a raw image folder) sharded into the run's cache by the main process while
    the others wait."""
    from brushwork.data import shard_build
    from brushwork.training import accel

    raw = not roots and shard_build.is_raw(cfg.data)
    if raw:
        checkpoint.claim_run_dir(cfg.run_dir, cfg.resume)  # another run's dir is refused before its cache is touched
    else:
        for root, wanted in (roots or {cfg.data: domains}).items():
            shard_build.check_domains(root, wanted)  # a missing dataset is one line before anything is created
    settings = accel.resolve(cfg.mixed_precision, cfg.compile, torch.cuda.is_available())
    cfg = cfg.replace(mixed_precision=settings.mixed_precision, compile=settings.compile)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    accelerator = accel.build_accelerator(settings, cfg.log_with, cfg.run_dir)
    for note in settings.notes:
        accelerator.print(note)
    if raw:
        if accelerator.is_main_process:
            resuming = bool(cfg.resume) and checkpoint.resolve(cfg.run_dir, cfg.resume) is not None
            shard_build.build_cache(cfg.data, cfg.run_dir, domains, workers=max(1, cfg.num_workers),
                                    rebuild=not resuming)
        accelerator.wait_for_everyone()
        cfg = cfg.replace(data=shard_build.cache_path(cfg.run_dir))
    return accelerator, cfg


def launch_record(accelerator) -> dict:
    """What accelerate decided for this run, for config.toml's [launch] table."""
    import os

    machines = os.environ.get("GROUP_WORLD_SIZE", "1")  # torchrun's count of node groups
    return {"processes": accelerator.num_processes, "machines": int(machines) if machines.isdigit() else 1,
            "mixed_precision": accelerator.mixed_precision,
            "dynamo_backend": str(accelerator.state.dynamo_plugin.backend.value).lower(),
            "distributed_type": str(accelerator.distributed_type.value).lower(), "device": str(accelerator.device)}


def start_trackers(accelerator, cfg, resumed_images: int | None) -> None:
    """One tracker run per run dir: TensorBoard appends to tb/ (its axis: images seen), dropping the points a
    resume repeats."""
    from brushwork.core.presets import to_toml

    kwargs = {"tensorboard": {"purge_step": resumed_images + 1}} if resumed_images is not None else {}
    accelerator.init_trackers("tb", init_kwargs=kwargs)  # no hparams: TensorBoard would add a run per start
    if "tensorboard" in cfg.log_with and accelerator.is_main_process and resumed_images is None:
        tb = accelerator.get_tracker("tensorboard", unwrap=True)
        tb.add_text("config", "    " + to_toml(cfg).replace("\n", "\n    "), 0)


def train(cfg, accelerator, trainer: Trainer, *, name: str, aug, pin_memory: bool | None = None) -> bool:
    """Resume, build the loader at the data position, record the config, start trackers, run the loop, close.

    Returns True if a signal stopped the run (it then exits 0 after its checkpoint).
    """
    from brushwork.data import stream as data

    run_dir = Path(cfg.run_dir)
    loop = TrainingLoop(trainer, cfg, accelerator, run_dir, name=name, config_dict=cfg.as_dict())
    resumed = loop.resume()
    c = loop.counters
    loader, steps_per_epoch = data.train_loader(
        cfg.data, batch_size=cfg.batch_size, rank=accelerator.process_index, world=accelerator.num_processes,
        num_workers=cfg.num_workers, seed=c.data_seed, aug=aug, buffer=cfg.shuffle_buffer, start_batch=c.data_batches,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory, sources=trainer.data_sources)
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        presets.write_resolved(cfg, run_dir, launch=launch_record(accelerator))
    start_trackers(accelerator, cfg, c.images_seen if resumed else None)
    describe = f"precision {cfg.mixed_precision}" + (", compiled" if cfg.compile else "")
    stopped = loop.run(loader, steps_per_epoch, describe=describe)
    accelerator.end_training()
    distributed.end_process_group()
    return stopped
