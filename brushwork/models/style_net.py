"""Johnson et al.'s image transformation network, with conditional instance norm for several styles.

Layout (Johnson, Alahi, Fei-Fei 2016, supplementary Table 1; as pytorch/examples fast_neural_style,
which replaced batch norm by instance norm and the fractionally strided convs by upsample + conv to
avoid checkerboard artefacts):

    9x9 conv (w) → 3x3 conv stride 2 (2w) → 3x3 conv stride 2 (4w) → 5 residual blocks (4w) →
    x2 nearest upsample + 3x3 conv (2w) → x2 upsample + 3x3 conv (w) → 9x9 conv to RGB

every conv reflection-padded, every conv but the last followed by instance norm and ReLU; a residual
block is x + [conv, IN, ReLU, conv, IN](x). Width w = 32 is the paper's network (1,679,235
parameters). Images go in and come out in [0, 1] (the output is unbounded and clamped when saved).

Conditional instance norm (Dumoulin, Shlens, Kudlur 2017): each norm keeps one (γ, β) per style,
everything else is shared; ``style`` picks a style per sample (an index) or mixes them (weights
over the styles, per sample), which mixes their (γ, β). Pure modules: no files, no devices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm with a (γ, β) pair per style: ``weight``/``bias`` are (n_styles, C)."""

    def __init__(self, channels: int, n_styles: int = 1, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_styles, channels))
        self.bias = nn.Parameter(torch.zeros(n_styles, channels))

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """``mix``: (N, n_styles) weights per sample (one-hot picks a style)."""
        gamma, beta = mix @ self.weight, mix @ self.bias
        return F.instance_norm(x, eps=self.eps) * gamma[:, :, None, None] + beta[:, :, None, None]


class ConvNorm(nn.Module):
    """Reflection pad, conv (optionally after a x2 nearest upsample), conditional IN, optional ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, upsample: bool = False,
                 n_styles: int = 1, relu: bool = True):
        super().__init__()
        self.upsample, self.relu = upsample, relu
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)
        self.norm = ConditionalInstanceNorm2d(c_out, n_styles)

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm(self.conv(self.pad(x)), mix)
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, n_styles: int = 1):
        super().__init__()
        self.a = ConvNorm(channels, channels, 3, n_styles=n_styles)
        self.b = ConvNorm(channels, channels, 3, n_styles=n_styles, relu=False)

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x, mix), mix)


class TransformerNet(nn.Module):
    """The fast-style network for ``n_styles`` styles; ``forward(x, style)`` with x in [0, 1].

    ``style``: None (style 0), an int, a (N,) tensor of indices, or (N, n_styles) / (n_styles,) mixing
    weights (normalised to sum 1).
    """

    def __init__(self, width: int = 32, n_styles: int = 1, n_blocks: int = 5):
        super().__init__()
        self.n_styles = n_styles
        w = width
        self.down = nn.ModuleList([ConvNorm(3, w, 9, n_styles=n_styles), ConvNorm(w, 2 * w, 3, 2, n_styles=n_styles),
                                   ConvNorm(2 * w, 4 * w, 3, 2, n_styles=n_styles)])
        self.blocks = nn.ModuleList([ResidualBlock(4 * w, n_styles) for _ in range(n_blocks)])
        self.up = nn.ModuleList([ConvNorm(4 * w, 2 * w, 3, upsample=True, n_styles=n_styles),
                                 ConvNorm(2 * w, w, 3, upsample=True, n_styles=n_styles)])
        self.out_pad = nn.ReflectionPad2d(4)
        self.out_conv = nn.Conv2d(w, 3, 9)

    def mixing(self, style, batch: int, like: torch.Tensor) -> torch.Tensor:
        """(batch, n_styles) style weights from any form of ``style``."""
        if style is None:
            style = 0
        if isinstance(style, int):
            style = torch.full((batch,), style, dtype=torch.long)
        style = torch.as_tensor(style, device=like.device)
        if style.dtype in (torch.int32, torch.int64):
            if bool(((style < 0) | (style >= self.n_styles)).any()):
                raise ValueError(f"style index out of range for a {self.n_styles}-style network")
            index = style.reshape(-1).expand(batch) if style.numel() == 1 else style
            return F.one_hot(index, self.n_styles).to(like.dtype)
        weights = style.to(like.dtype)
        weights = weights.expand(batch, -1) if weights.dim() == 1 else weights
        return weights / weights.sum(1, keepdim=True)

    def forward(self, x: torch.Tensor, style=None) -> torch.Tensor:
        mix = self.mixing(style, x.shape[0], x)
        for layer in self.down:
            x = layer(x, mix)
        for block in self.blocks:
            x = block(x, mix)
        for layer in self.up:
            x = layer(x, mix)
        return self.out_conv(self.out_pad(x))


class FixedStyle(nn.Module):
    """A TransformerNet with its style weights fixed: ``forward(x)`` alone (for ONNX export and eval), its output
    clamped to [0, 1] (the network's raw output overshoots: an image must not)."""

    def __init__(self, net: TransformerNet, weights: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("weights", (weights / weights.sum()).reshape(1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.weights.expand(x.shape[0], -1)).clamp(0, 1)
