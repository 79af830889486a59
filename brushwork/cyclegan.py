"""One CycleGAN optimisation step, as the original ``optimize_parameters`` computes it.

Generators first (translations, reconstructions, identities; discriminators frozen and called
without their DDP wrapper, since they are not updated there), then both discriminators on real
images and pooled fakes with the loss halved. Passes that share a network are batched together:
instance norm works per sample, so G(cat[x, y]) equals cat[G(x), G(y)] and the maths is unchanged.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import torch

from . import losses
from .pool import ImagePool


@dataclass(frozen=True)
class StepWeights:
    gan_mode: str = "lsgan"
    lambda_a: float = 10.0
    lambda_b: float = 10.0
    lambda_identity: float = 0.5
    lambda_perceptual: float = 0.0


def train_step(real_A: torch.Tensor, real_B: torch.Tensor, *, G_A, G_B, D_A, D_B, raw_D_A, raw_D_B,
               opt_G, opt_D, pools: dict[str, ImagePool], w: StepWeights,
               backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
               autocast=nullcontext, features=None, join_passes: bool = True
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Update G_A+G_B, then D_A+D_B. Returns (detached losses, images for sample grids).

    ``join_passes`` runs passes through the same network as one batch (GPU: fewer, fuller kernels);
    off, they run one after another as in the original (CPU: smaller working set).
    """
    n = real_A.shape[0]
    both = (lambda net, x, y: net(torch.cat([x, y])).split(n)) if join_passes else (lambda net, x, y: (net(x), net(y)))
    with autocast():
        fake_B, fake_A = G_A(real_A), G_B(real_B)
        if w.lambda_identity > 0:
            rec_B, idt_A = both(G_A, fake_A, real_B)
            rec_A, idt_B = both(G_B, fake_B, real_A)
        else:
            rec_B, rec_A = G_A(fake_A), G_B(fake_B)
        raw_D_A.requires_grad_(False)
        raw_D_B.requires_grad_(False)
        loss = {"G_A": losses.gan_loss(raw_D_A(fake_B), True, w.gan_mode),
                "G_B": losses.gan_loss(raw_D_B(fake_A), True, w.gan_mode),
                "cycle_A": losses.cycle_loss(rec_A, real_A, w.lambda_a),
                "cycle_B": losses.cycle_loss(rec_B, real_B, w.lambda_b)}
        if w.lambda_identity > 0:
            loss["idt_A"] = losses.identity_loss(idt_A, real_B, w.lambda_b, w.lambda_identity)
            loss["idt_B"] = losses.identity_loss(idt_B, real_A, w.lambda_a, w.lambda_identity)
        if features is not None and w.lambda_perceptual > 0:
            loss["perc_A"] = losses.perceptual_cycle_loss(rec_A, real_A, w.lambda_perceptual, features)
            loss["perc_B"] = losses.perceptual_cycle_loss(rec_B, real_B, w.lambda_perceptual, features)
        loss_G = sum(loss.values())
    opt_G.zero_grad(set_to_none=True)
    backward(loss_G)
    opt_G.step()

    raw_D_A.requires_grad_(True)
    raw_D_B.requires_grad_(True)
    pooled_B, pooled_A = pools["B"].query(fake_B.detach()), pools["A"].query(fake_A.detach())
    with autocast():
        d_real_B, d_fake_B = both(D_A, real_B, pooled_B)
        d_real_A, d_fake_A = both(D_B, real_A, pooled_A)
        loss["D_A"] = losses.discriminator_loss(d_real_B, d_fake_B, w.gan_mode)
        loss["D_B"] = losses.discriminator_loss(d_real_A, d_fake_A, w.gan_mode)
    opt_D.zero_grad(set_to_none=True)
    backward(loss["D_A"] + loss["D_B"])
    opt_D.step()
    images = {"real_A": real_A, "fake_B": fake_B, "rec_A": rec_A, "real_B": real_B, "fake_A": fake_A, "rec_B": rec_B}
    return {k: v.detach() for k, v in loss.items()}, images
