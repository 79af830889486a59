"""Arbitrary style transfer by adaptive instance normalisation (Huang & Belongie 2017), as published.

The encoder is VGG-19 up to relu4_1, frozen; ``adain(x, y) = σ(y)·(x − μ(x))/σ(x) + μ(y)`` per channel; the
decoder mirrors the encoder (reflection padding, 3×3 convs, ReLU, nearest-neighbour ×2 upsampling, no
normalisation layers). The loss is content + λ·style with content = MSE(f(g(t)), t) at relu4_1 (t: the AdaIN
target) and style = Σ over relu1_1..relu4_1 of MSE of the means + MSE of the standard deviations. Statistics
follow the paper's code (per-channel variance over H·W, unbiased, + 1e-5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYER = "relu4_1"
EPS = 1e-5
MULTIPLE = 8  # relu4_1 is three poolings down: sides that are multiples of 8 come back to their size


def mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation over H·W, each (N, C, 1, 1)."""
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    return flat.mean(2).view(n, c, 1, 1), (flat.var(2) + eps).sqrt().view(n, c, 1, 1)


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The content features with the style features' per-channel mean and standard deviation."""
    c_mean, c_std = mean_std(content)
    s_mean, s_std = mean_std(style)
    return s_std * (content - c_mean) / c_std + s_mean


def decoder() -> nn.Sequential:
    """relu4_1 features (512 channels) back to an image: the encoder mirrored."""
    def conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
        return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), *([nn.ReLU()] if relu else [])]

    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(*conv(512, 256), up(), *conv(256, 256), *conv(256, 256), *conv(256, 256), *conv(256, 128),
                         up(), *conv(128, 128), *conv(128, 64), up(), *conv(64, 64), *conv(64, 3, relu=False))


class AdaINNet(nn.Module):
    """Encoder (frozen VGG-19 to relu4_1, a ``VGGFeatures``) + AdaIN + decoder. Images in [0, 1]."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.decoder = decoder()

    def target(self, content: torch.Tensor, styles: list[torch.Tensor], weights: list[float] | None = None,
               alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, the content's relu4_1 features): t = α·Σ w_i AdaIN(f(c), f(s_i)) + (1 − α)·f(c) (eq. 13; several
        styles interpolated with weights summing to 1)."""
        fc = self.encoder(content)[CONTENT_LAYER]
        weights = weights or [1.0 / len(styles)] * len(styles)
        t = sum(w * adain(fc, self.encoder(s)[CONTENT_LAYER]) for w, s in zip(weights, styles))
        return alpha * t + (1 - alpha) * fc, fc

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        t, _ = self.target(content, [style], alpha=alpha)
        return self.decoder(t)

    @torch.no_grad()
    def stylize(self, content: torch.Tensor, styles: list[torch.Tensor], weights: list[float] | None = None,
                alpha: float = 1.0) -> torch.Tensor:
        """Any content size: padded (reflect) to a multiple of 8 and cropped back; output clamped to [0, 1]."""
        h, w = content.shape[-2:]
        ph, pw = -h % MULTIPLE, -w % MULTIPLE
        padded = F.pad(content, (0, pw, 0, ph), mode="reflect") if ph or pw else content
        t, _ = self.target(padded, styles, weights, alpha)
        return self.decoder(t)[..., :h, :w].clamp(0, 1)

    def losses(self, content: torch.Tensor, style: torch.Tensor, style_weight: float) -> dict[str, torch.Tensor]:
        """{"content", "style"} of one training batch (the style term already times λ)."""
        return losses(self.encoder, self.decoder, content, style, style_weight)[0]


def losses(encoder: nn.Module, decoder: nn.Module, content: torch.Tensor, style: torch.Tensor, style_weight: float
           ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({"content", "style" (already times λ)}, the decoded batch): content = MSE(f(g(t)), t) at relu4_1, style =
    Σ over relu1_1..relu4_1 of MSE of the means + MSE of the standard deviations. ``decoder`` may be DDP-wrapped."""
    feats_content, feats_style = encoder(content), encoder(style)
    t = adain(feats_content[CONTENT_LAYER], feats_style[CONTENT_LAYER])
    out = decoder(t)
    feats_out = encoder(out)
    content_loss = F.mse_loss(feats_out[CONTENT_LAYER], t)
    style_loss = sum(F.mse_loss(a, b) for layer in STYLE_LAYERS
                     for a, b in zip(mean_std(feats_out[layer]), mean_std(feats_style[layer])))
    return {"content": content_loss, "style": style_weight * style_loss}, out
