"""Small linear algebra shared by FID and Gatys's colour matching."""

from __future__ import annotations

import torch


def sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (eigen-decomposition; negative rounding clamped)."""
    vals, vecs = torch.linalg.eigh(a)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T
