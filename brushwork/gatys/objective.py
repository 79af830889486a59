"""Gatys et al.'s content and style losses, per sample, and a batched objective for the optimisers.

Two normalisations:

* ``paper``: L_content = ½ Σ (F − P)², E_l = Σ (G − A)² / (4 N² M²) with G = F Fᵀ (N channels,
  M = H·W positions), as in the paper's equations (1) and (4).
* ``mean``: L_content = mean (F − P)², G = F Fᵀ / (N·M), E_l = mean (G − A)² (the PyTorch tutorial's).

Every loss has shape (B,): sample b depends only on image b and its own targets and weights, so a
batch of pairs (each with its own content, style, α, β and layer weights) is optimised exactly as
the pairs would be one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from brushwork.core.linalg import sqrtm_psd
from brushwork.models.vgg import VGGFeatures, gram


def content_loss(features: torch.Tensor, target: torch.Tensor, normalization: str = "paper") -> torch.Tensor:
    diff = (features - target).flatten(1)
    if normalization == "paper":
        return 0.5 * diff.square().sum(1)
    return diff.square().mean(1)


def gram_matrix(features: torch.Tensor, normalization: str = "paper") -> torch.Tensor:
    g = gram(features)
    if normalization == "paper":
        return g
    n, c, h, w = features.shape
    return g / (c * h * w)


def style_layer_loss(features: torch.Tensor, target_gram: torch.Tensor, normalization: str = "paper") -> torch.Tensor:
    g = gram_matrix(features, normalization)
    diff = (g - target_gram).flatten(1)
    if normalization == "paper":
        n, c, h, w = features.shape
        return diff.square().sum(1) / (4.0 * c ** 2 * (h * w) ** 2)
    return diff.square().mean(1)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Σ of squared neighbour differences per sample (smoothness prior)."""
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return dx.square().flatten(1).sum(1) + dy.square().flatten(1).sum(1)


@dataclass
class Targets:
    """Per-sample targets and weights of a batch (row b belongs to pair b)."""

    content: dict[str, torch.Tensor]          # layer -> (B, C, H, W) features of the content images
    style: dict[str, torch.Tensor]            # layer -> (B, C, C) Gram targets (blended if several styles)
    content_layer_weights: torch.Tensor       # (B, Lc)
    style_layer_weights: torch.Tensor         # (B, Ls): 0 where a pair does not use that layer
    content_weight: torch.Tensor              # (B,) α
    style_weight: torch.Tensor                # (B,) β
    tv_weight: torch.Tensor                   # (B,)


class NormalizedGradient(torch.autograd.Function):
    """Identity forward; backward divides each sample's gradient of one weighted layer loss by the L1 norm of its
    unweighted gradient (neural-style's -normalize_gradients: every layer pulls with the strength of its weight,
    however large its raw gradient)."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(weight)
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weight,) = ctx.saved_tensors
        w = weight.reshape(-1, *([1] * (grad.dim() - 1)))
        raw = torch.where(w != 0, grad / torch.where(w != 0, w, torch.ones_like(w)), torch.zeros_like(grad))
        norm = raw.abs().flatten(1).sum(1).reshape_as(w)
        return w * raw / (norm + 1e-8), None


class GatysObjective:
    """Callable (images (b, 3, H, W) in [0, 1], sample indices) → per-sample total loss (b,).

    ``normalize_gradients``: each layer's gradient is L1-normalised before its weight applies (the loss value
    is unchanged, so an optimiser that searches along the loss needs --line_search none, as in neural-style).
    """

    def __init__(self, vgg: VGGFeatures, targets: Targets, content_layers: list[str], style_layers: list[str],
                 normalization: str = "paper", normalize_gradients: bool = False):
        self.vgg, self.t = vgg, targets
        self.content_layers, self.style_layers = content_layers, style_layers
        self.normalization = normalization
        self.normalize_gradients = normalize_gradients
        self.last_parts: dict[str, torch.Tensor] = {}

    def parts(self, x: torch.Tensor, idx: list[int]) -> dict[str, torch.Tensor]:
        feats = self.vgg(x)
        t, norm = self.t, self.normalization

        def use(layer: str, weight: torch.Tensor) -> torch.Tensor:
            return NormalizedGradient.apply(feats[layer], weight) if self.normalize_gradients else feats[layer]

        content = sum(t.content_layer_weights[idx, i] * content_loss(
            use(l, t.content_weight[idx] * t.content_layer_weights[idx, i]), t.content[l][idx], norm)
            for i, l in enumerate(self.content_layers))
        style = sum(t.style_layer_weights[idx, i] * style_layer_loss(
            use(l, t.style_weight[idx] * t.style_layer_weights[idx, i]), t.style[l][idx], norm)
            for i, l in enumerate(self.style_layers))
        tv = total_variation(x) if bool((t.tv_weight[idx] != 0).any()) else torch.zeros_like(content)
        return {"content": content, "style": style, "tv": tv}

    def __call__(self, x: torch.Tensor, idx: list[int]) -> torch.Tensor:
        p = self.parts(x, idx)
        self.last_parts = {k: v.detach() for k, v in p.items()}
        t = self.t
        return t.content_weight[idx] * p["content"] + t.style_weight[idx] * p["style"] + t.tv_weight[idx] * p["tv"]


@torch.no_grad()
def content_targets(vgg: VGGFeatures, content: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    feats = vgg(content)
    return {l: feats[l].detach() for l in layers}


@torch.no_grad()
def style_targets(vgg: VGGFeatures, styles: list[torch.Tensor], blend: list[float], layers: list[str],
                  normalization: str = "paper") -> dict[str, torch.Tensor]:
    """Gram targets of one pair: Σ_i w_i · Gram(style_i) (several styles blended)."""
    out: dict[str, torch.Tensor] = {}
    for image, w in zip(styles, blend):
        feats = vgg(image)
        for l in layers:
            g = w * gram_matrix(feats[l], normalization)[0]
            out[l] = g if l not in out else out[l] + g
    return out


# ---------------------------------------------------------------------------------------------
# Colour preservation (Gatys et al. 2016, "Preserving color in neural artistic style transfer")

_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def luminance_transfer(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The result's luminance (Y) with the content's chrominance (IQ); images (…, 3, H, W) in [0, 1]."""
    m = _RGB2YIQ.to(result)
    yiq_r = torch.einsum("ij,...jhw->...ihw", m, result)
    yiq_c = torch.einsum("ij,...jhw->...ihw", m, content)
    mixed = torch.cat([yiq_r[..., :1, :, :], yiq_c[..., 1:, :, :]], dim=-3)
    return torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(m), mixed).clamp(0, 1)


def match_histogram(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Style colours moved to the content's colour mean and covariance (linear, per image)."""
    def stats(img):
        flat = img.reshape(3, -1)
        mu = flat.mean(1, keepdim=True)
        cov = torch.cov(flat) + 1e-5 * torch.eye(3, dtype=img.dtype)
        return flat, mu, cov

    s_flat, s_mu, s_cov = stats(style[0])
    _, c_mu, c_cov = stats(content[0])
    transform = sqrtm_psd(c_cov) @ torch.linalg.inv(sqrtm_psd(s_cov))
    out = transform @ (s_flat - s_mu) + c_mu
    return out.reshape(style.shape).clamp(0, 1)

