"""CycleGAN's networks, layer for layer as the original code builds them (same state-dict keys).

ResNet generator: reflect-pad 7x7 conv → 2 stride-2 convs → n ResNet blocks → 2 transposed convs →
reflect-pad 7x7 conv → tanh. PatchGAN discriminator: 4x4 convs with LeakyReLU(0.2), 70x70 receptive
field at 3 layers. Instance norm without affine parameters, so every conv carries a bias.
Pure modules: no files, no devices, no distribution.
"""

from __future__ import annotations

import torch
from torch import nn

from brushwork.models.winograd import apply_conv


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """x + [pad, conv3x3, IN, ReLU, pad, conv3x3, IN](x); no ReLU after the sum.

    ``winograd`` runs the two convs as Winograd F(4x4, 3x3) on CPU in fp32 where that pays off
    (``winograd.pays_off``: 256+ channels, 32x32+ maps, i.e. the paper's model at 128 px and up):
    same maths and weights, ~1.5x faster convs; everywhere else the plain ``nn.Conv2d`` runs.
    """

    def __init__(self, dim: int, winograd: bool = False):
        super().__init__()
        self.winograd = winograd
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), _norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.winograd:
            return x + self.conv_block(x)
        h = x
        for layer in self.conv_block:
            h = apply_conv(layer, h) if isinstance(layer, nn.Conv2d) else layer(h)
        return x + h


class ResnetGenerator(nn.Module):
    """The original ``resnet_{n}blocks`` generator (dropout off), ``model.N`` keys included.

    ``winograd``: ResNet-block convs as Winograd on CPU (see ``ResnetBlock``); weights unchanged.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 winograd: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, padding=0, bias=True),
                                   _norm(ngf), nn.ReLU(True)]
        for i in range(2):  # downsample
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                       _norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, winograd) for _ in range(n_blocks)]
        for i in range(2):  # upsample
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=True),
                       _norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """The original PatchGAN (``basic`` at n_layers=3: 70x70 patches); raw scores, no sigmoid."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True), _norm(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True), _norm(ndf * mult),
                   nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """The original init: conv weights by ``init_type``, biases zero; same visiting order (``apply``)."""

    def init(m: nn.Module) -> None:
        name = m.__class__.__name__
        if hasattr(m, "weight") and m.weight is not None and ("Conv" in name or "Linear" in name):
            if init_type == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"unknown init_type {init_type!r}")
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias, 0.0)

    net.apply(init)
    return net


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def generator_arch(state_dict: dict) -> dict:
    """(in/out channels, ngf, n_blocks) read off a generator state dict, ours or the original code's."""
    try:
        first, last = state_dict["model.1.weight"], state_dict[max(
            (k for k in state_dict if k.endswith(".weight") and k.count(".") == 2),
            key=lambda k: int(k.split(".")[1]))]
    except (KeyError, ValueError):
        raise ValueError("not a ResNet generator state dict (no model.1.weight)") from None
    blocks = {k.split(".")[1] for k in state_dict if ".conv_block." in k}
    return {"in_channels": first.shape[1], "out_channels": last.shape[0], "ngf": first.shape[0],
            "n_blocks": len(blocks)}


def strip_wrappers(state_dict: dict) -> dict:
    """Remove DDP/DataParallel ``module.`` and torch.compile ``_orig_mod.`` prefixes."""
    out = {}
    for k, v in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out
