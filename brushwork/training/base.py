"""The wiring every trainer shares: the device, accelerate's wrapping (or plain modules), Adam and its fused
rule, the learning rate, the optimiser and grad-scaler state with one error line, and per-rank seeds.

A trainer (``CycleGANTrainer``, ``FastStyleTrainer``, ``AdaINTrainer``) subclasses ``TrainerBase``, builds its
networks and optimisers, hands them to ``prepare`` and implements ``step``, ``sample``, ``summary``, ``export`` and
the model and per-rank parts of its state; it may change where its data comes from (``data_sources``) and its
learning-rate rule (``learning_rate``).
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from brushwork.core.errors import BrushworkError
from brushwork.training import checkpoint, schedule


def rank_seed(seed: int, rank: int, stream: int) -> int:
    """The seed of one random stream (``stream``) of one rank: distinct for every (seed, rank, stream)."""
    return int(np.random.SeedSequence([seed, rank, stream]).generate_state(1)[0])


class TrainerBase:
    kind: str  # its entry in models.registry.KINDS
    data_domains: tuple[str, ...]  # the batch keys its step reads

    def __init__(self, cfg, accelerator=None, *, device: str | torch.device = "cpu", fused_adam: bool | None = None):
        self.cfg, self.acc = cfg, accelerator
        self.device = accelerator.device if accelerator is not None else torch.device(device)
        self.fused_adam = self.device.type == "cuda" if fused_adam is None else fused_adam  # one kernel on GPUs
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.backward, self.autocast, self.scaler = torch.Tensor.backward, nullcontext, None

    def adam(self, params) -> torch.optim.Adam:
        """Adam with the run's lr and betas (fused where that is faster: on GPUs)."""
        return torch.optim.Adam(params, lr=self.cfg.lr, betas=(self.cfg.beta1, self.cfg.beta2),
                                **({"fused": True} if self.fused_adam else {}))

    def prepare(self, nets: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]
                ) -> tuple[dict[str, torch.nn.Module], dict[str, torch.nn.Module]]:
        """(the networks as the step calls them: DDP / compile wrapped by accelerate, or moved to the device;
        the plain modules: what checkpoints save and frozen passes use). Keeps the optimisers, and accelerate's
        backward, autocast and grad scaler."""
        if self.acc is not None:
            prepared = self.acc.prepare(*nets.values(), *optimizers.values())
            wrapped = dict(zip(nets, prepared[:len(nets)]))
            self.optimizers = dict(zip(optimizers, prepared[len(nets):]))
            self.backward, self.autocast, self.scaler = self.acc.backward, self.acc.autocast, self.acc.scaler
            plain = {n: self.acc.unwrap_model(m, keep_torch_compile=False) for n, m in wrapped.items()}
        else:
            wrapped = plain = {n: net.to(self.device) for n, net in nets.items()}
            self.optimizers = dict(optimizers)
        return wrapped, plain

    @property
    def data_sources(self) -> tuple[tuple[str, str, str], ...]:
        """(batch key, shard root, domain) of each stream the trainer reads: by default its domains of --data."""
        return tuple((d, self.cfg.data, d) for d in self.data_domains)

    def learning_rate(self, images_seen: int, epoch_images: int) -> float:
        """The LR after ``images_seen`` images (every rank agrees): by default the original CycleGAN schedule,
        constant for --epochs, then linear decay over --epochs_decay."""
        cfg = self.cfg
        return schedule.learning_rate(cfg.lr, images_seen, epoch_images, cfg.epochs, cfg.epochs_decay)

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def optim_state(self) -> dict:
        """The ``optim`` part of a checkpoint: each optimiser by name, and the grad scaler (None without one)."""
        return {**{name: opt.state_dict() for name, opt in self.optimizers.items()},
                "scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load_optim_state(self, optim: dict) -> None:
        try:
            for name, opt in self.optimizers.items():
                opt.load_state_dict(optim[name])
            if optim.get("scaler") and self.scaler is not None:
                self.scaler.load_state_dict(optim["scaler"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise BrushworkError(f"optim.pt does not fit this run's optimisers ({checkpoint.first_line(e)}); resume "
                                 "from another step folder or start a new --run_dir") from None
