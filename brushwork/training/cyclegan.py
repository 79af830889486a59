"""One rank's CycleGAN training state and its step, as the original ``CycleGANModel.optimize_parameters``.

Naming as in the original: G_A (G: A → B), G_B (F: B → A), D_A (D_Y: judges domain B, real B
against G_A's fakes), D_B (D_X: judges domain A).

A step updates G_A+G_B first (translations, reconstructions, identities; the discriminators frozen
and called without their DDP wrapper, since they are not updated there), then both discriminators
on real images and pooled fakes with the loss halved. Passes that share a network can run as one
batch (``join_passes``, the default on GPUs): instance norm works per sample, so G(cat[x, y])
equals cat[G(x), G(y)] and the maths is unchanged; on a CPU separate passes keep the working set
in cache and are faster.
"""

from __future__ import annotations

from pathlib import Path

import torch

from brushwork.models import losses
from brushwork.models.networks import NLayerDiscriminator, ResnetGenerator, init_weights
from brushwork.models.pool import ImagePool
from brushwork.training import checkpoint
from brushwork.training.base import TrainerBase, rank_seed
from brushwork.training.trainer import fingerprint

NETWORKS = ("G_A", "G_B", "D_A", "D_B")
ARCH_FIELDS = ("ngf", "ndf", "n_blocks", "n_layers_d")
SAMPLE_LABELS = ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B")


def build_networks(cfg) -> dict[str, torch.nn.Module]:
    """The four networks, initialised as the original (the same on every rank: seeded)."""
    torch.manual_seed(cfg.seed)
    make_G = lambda: ResnetGenerator(ngf=cfg.ngf, n_blocks=cfg.n_blocks, winograd=cfg.winograd)
    make_D = lambda: NLayerDiscriminator(ndf=cfg.ndf, n_layers=cfg.n_layers_d)
    nets = {"G_A": make_G(), "G_B": make_G(), "D_A": make_D(), "D_B": make_D()}
    for net in nets.values():
        init_weights(net, cfg.init_type, cfg.init_gain)
    return nets


class CycleGANTrainer(TrainerBase):
    """Networks, optimisers, grad scaler, image pools and RNG of one rank.

    ``accelerator``: wraps the networks for DDP / autocast / compile; None runs them plain (benchmarks,
    tests). ``join_passes`` / ``fused_adam``: None picks the faster choice for the device (on on GPUs).
    """

    kind = "cyclegan"
    data_domains = ("A", "B")

    def __init__(self, cfg, accelerator=None, *, rank: int = 0, device: str | torch.device = "cpu",
                 join_passes: bool | None = None, fused_adam: bool | None = None):
        super().__init__(cfg, accelerator, device=device, fused_adam=fused_adam)
        self.join_passes = self.device.type == "cuda" if join_passes is None else join_passes
        self.arch = {k: getattr(cfg, k) for k in ARCH_FIELDS}
        nets = build_networks(cfg)
        optimizers = {"G": self.adam(list(nets["G_A"].parameters()) + list(nets["G_B"].parameters())),
                      "D": self.adam(list(nets["D_A"].parameters()) + list(nets["D_B"].parameters()))}
        self.pools = {d: ImagePool(cfg.pool_size, seed=rank_seed(cfg.seed, rank, stream))
                      for stream, d in enumerate("AB")}
        # the frozen-D pass and checkpoints use the plain modules (no DDP, no compile wrapper)
        self.nets, self.plain = self.prepare({n: nets[n] for n in NETWORKS}, optimizers)
        self.opt_G, self.opt_D = self.optimizers["G"], self.optimizers["D"]
        self.features = self._perceptual_features()

    def _perceptual_features(self):
        if self.cfg.lambda_perceptual <= 0:
            return None
        from brushwork.models import vgg

        state = vgg.load_state(self.cfg.vgg_weights or None, random_init=self.cfg.random_vgg, seed=self.cfg.seed)
        return vgg.VGGFeatures(["relu1_2", "relu2_2", "relu3_3"], state).to(self.device).eval()

    # -- training --------------------------------------------------------------------------------

    def _both(self, net, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(net(x), net(y)): one batched pass where joining pays and the shapes allow it."""
        if self.join_passes and x.shape[1:] == y.shape[1:]:
            return net(torch.cat([x, y])).split([x.shape[0], y.shape[0]])
        return net(x), net(y)

    def step(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Update G_A+G_B, then D_A+D_B. Returns (detached losses, images for sample grids)."""
        cfg, G_A, G_B, D_A, D_B = self.cfg, *(self.nets[n] for n in NETWORKS)
        real_A, real_B = batch["A"], batch["B"]
        frozen_D_A, frozen_D_B = self.plain["D_A"], self.plain["D_B"]
        with self.autocast():
            fake_B, fake_A = G_A(real_A), G_B(real_B)
            if cfg.lambda_identity > 0:
                rec_B, idt_A = self._both(G_A, fake_A, real_B)
                rec_A, idt_B = self._both(G_B, fake_B, real_A)
            else:
                rec_B, rec_A = G_A(fake_A), G_B(fake_B)
            frozen_D_A.requires_grad_(False)
            frozen_D_B.requires_grad_(False)
            loss = {"G_A": losses.gan_loss(frozen_D_A(fake_B), True, cfg.gan_mode),
                    "G_B": losses.gan_loss(frozen_D_B(fake_A), True, cfg.gan_mode),
                    "cycle_A": losses.cycle_loss(rec_A, real_A, cfg.lambda_a),
                    "cycle_B": losses.cycle_loss(rec_B, real_B, cfg.lambda_b)}
            if cfg.lambda_identity > 0:
                loss["idt_A"] = losses.identity_loss(idt_A, real_B, cfg.lambda_b, cfg.lambda_identity)
                loss["idt_B"] = losses.identity_loss(idt_B, real_A, cfg.lambda_a, cfg.lambda_identity)
            if self.features is not None:
                loss["perc_A"] = losses.perceptual_cycle_loss(rec_A, real_A, cfg.lambda_perceptual, self.features)
                loss["perc_B"] = losses.perceptual_cycle_loss(rec_B, real_B, cfg.lambda_perceptual, self.features)
            loss_G = sum(loss.values())
        self.opt_G.zero_grad(set_to_none=True)
        self.backward(loss_G)
        self.opt_G.step()

        frozen_D_A.requires_grad_(True)
        frozen_D_B.requires_grad_(True)
        pooled_B, pooled_A = self.pools["B"].query(fake_B.detach()), self.pools["A"].query(fake_A.detach())
        with self.autocast():
            d_real_B, d_fake_B = self._both(D_A, real_B, pooled_B)
            d_real_A, d_fake_A = self._both(D_B, real_A, pooled_A)
            loss["D_A"] = losses.discriminator_loss(d_real_B, d_fake_B, cfg.gan_mode)
            loss["D_B"] = losses.discriminator_loss(d_real_A, d_fake_A, cfg.gan_mode)
        self.opt_D.zero_grad(set_to_none=True)
        self.backward(loss["D_A"] + loss["D_B"])
        self.opt_D.step()
        images = {"real_A": real_A, "fake_B": fake_B, "rec_A": rec_A, "real_B": real_B, "fake_A": fake_A,
                  "rec_B": rec_B}
        return {k: v.detach() for k, v in loss.items()}, images

    # -- what the loop asks ----------------------------------------------------------------------

    def summary(self, mean: dict[str, float]) -> str:
        g = sum(v for k, v in mean.items() if not k.startswith("D"))
        return f"G {g:.3f} D {mean['D_A'] + mean['D_B']:.3f}"

    def sample(self, images: dict) -> tuple[list[torch.Tensor], list[str]]:
        return [images[k].float() for k in SAMPLE_LABELS], list(SAMPLE_LABELS)

    def state_dict(self) -> dict:
        """{"models", "optim", "rank"}: the checkpoint parts this trainer owns (``load_state_dict`` takes them back)."""
        return {"models": {n: self.plain[n].state_dict() for n in NETWORKS},
                "optim": self.optim_state(),
                "rank": {"pool_A": self.pools["A"].state_dict(), "pool_B": self.pools["B"].state_dict(),
                         "rng_cpu": torch.get_rng_state(),
                         "weights_fingerprint": {n: fingerprint(self.plain[n]) for n in NETWORKS}}}

    def load_state_dict(self, state: dict) -> None:
        models, optim, rank = state["models"], state["optim"], state["rank"]
        for n in NETWORKS:
            checkpoint.load_state_dict_strict(self.plain[n], models.get(n), f"models.pt[{n!r}]")
        self.load_optim_state(optim)
        if rank:  # absent when this rank did not exist in the checkpoint's run
            self.pools["A"].load_state_dict(rank["pool_A"], self.device)
            self.pools["B"].load_state_dict(rank["pool_B"], self.device)
            torch.set_rng_state(rank["rng_cpu"])

    def export(self, run_dir: Path, info: dict) -> Path:
        """export/G_A.pth, G_B.pth: the generators alone, in the original code's format."""
        return checkpoint.export(run_dir, {"G_A": self.plain["G_A"], "G_B": self.plain["G_B"]},
                                 {**info, "ngf": self.cfg.ngf, "n_blocks": self.cfg.n_blocks,
                                  "dataset": self.cfg.dataset})
