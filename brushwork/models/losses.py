"""CycleGAN's objectives: LSGAN / vanilla adversarial loss, cycle and identity L1, perceptual cycle."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def gan_loss(prediction: torch.Tensor, target_is_real: bool, mode: str = "lsgan") -> torch.Tensor:
    """Adversarial loss of PatchGAN scores against an all-real or all-fake target."""
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    if mode == "lsgan":
        return F.mse_loss(prediction, target)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(prediction, target)
    raise ValueError(f"unknown gan_mode {mode!r}")


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """(real → 1, fake → 0) halved, which slows D relative to G as in the paper."""
    return 0.5 * (gan_loss(d_real, True, mode) + gan_loss(d_fake, False, mode))


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor, weight: float) -> torch.Tensor:
    return weight * F.l1_loss(reconstructed, real)


def identity_loss(same: torch.Tensor, real: torch.Tensor, weight: float, identity_fraction: float) -> torch.Tensor:
    """||G(y) - y||_1 scaled by λ_identity · λ of the *target* domain, as the original code does."""
    return weight * identity_fraction * F.l1_loss(same, real)


def perceptual_cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor, weight: float,
                          features: Callable[[torch.Tensor], dict[str, torch.Tensor]]) -> torch.Tensor:
    """Σ_layers mean |φ(rec) - φ(real)| on VGG features (Johnson et al.'s idea applied to the cycle)."""
    to_unit = lambda x: (x + 1) * 0.5  # generators work in [-1, 1], VGG in [0, 1]
    f_rec = features(to_unit(reconstructed))
    with torch.no_grad():
        f_real = features(to_unit(real))
    return weight * sum(F.l1_loss(f_rec[k], f_real[k]) for k in f_rec)
