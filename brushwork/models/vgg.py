"""VGG-16 / VGG-19 feature extractors: named layers, max or average pooling, weight resolution.

VGG-19 is Gatys's network (and the perceptual cycle loss's), VGG-16 Johnson et al.'s loss network
for fast style. Layers answer to two naming schemes: the usual block names (``conv4_2``,
``relu3_1``, ``pool2``) and the paper's conv-index names (``conv_5`` is the 5th conv = ``conv3_1``;
``relu_5`` likewise). The network is cut after the deepest requested layer, and its ReLUs are not
in-place, so a pre-ReLU feature is never overwritten.
"""

from __future__ import annotations

import os
import re
import warnings

import torch
from torch import nn

from brushwork.core.errors import BrushworkError
from brushwork.data.images import IMAGENET_MEAN, IMAGENET_STD
from brushwork.data.weights import resolve as resolve_weights
from brushwork.models.winograd import apply_conv

# torchvision's vgg{16,19}.features: conv widths per block, 'M' = pool
CFG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def layer_names(arch: str = "vgg19") -> list[list[str]]:
    """Names of each position in vgg{16,19}.features (every position has a block name and an index name)."""
    names, block, within, conv_index = [], 1, 0, 0
    for item in CFG[arch]:
        if item == "M":
            names.append([f"pool{block}", f"pool_{block}"])
            block, within = block + 1, 0
        else:
            within += 1
            conv_index += 1
            names.append([f"conv{block}_{within}", f"conv_{conv_index}"])
            names.append([f"relu{block}_{within}", f"relu_{conv_index}"])
    return names


LAYER_INDEX = {arch: {name: i for i, pair in enumerate(layer_names(arch)) for name in pair} for arch in CFG}


def layer_index(name: str, arch: str = "vgg19") -> int:
    if name not in LAYER_INDEX[arch]:
        convs = sum(1 for c in CFG[arch] if c != "M")
        raise BrushworkError(f"unknown {arch.upper().replace('VGG', 'VGG-')} layer {name!r}; use names like "
                             f"conv4_2, relu3_1, pool2 or the paper's conv_1..conv_{convs}")
    return LAYER_INDEX[arch][name]


def build_features(depth: int, pooling: str = "max", arch: str = "vgg19") -> nn.Sequential:
    """vgg{16,19}.features[:depth] with non-inplace ReLUs and the chosen pooling."""
    if pooling not in ("max", "avg"):
        raise BrushworkError(f"pooling must be max or avg, got {pooling!r}")
    layers: list[nn.Module] = []
    in_ch = 3
    for item in CFG[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = item
    return nn.Sequential(*layers[:depth])


def load_state(weights: str | os.PathLike | None = None, random_init: bool = False, seed: int = 0,
               arch: str = "vgg19") -> dict:
    """A vgg{16,19}.features state dict ('0.weight', ...) from a file, the torch hub cache, or a seeded init."""
    name = arch.upper().replace("VGG", "VGG-")
    if random_init:
        warnings.warn(f"{name} is randomly initialised: fine for tests and demos, but results are not artistic",
                      stacklevel=2)
        import torchvision

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return getattr(torchvision.models, arch)(weights=None).features.state_dict()
    path = resolve_weights(weights, arch, "--vgg_weights", "--random_vgg")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise BrushworkError(f"{path}: cannot read {name} weights ({str(e).splitlines()[0][:120]}); delete it and "
                             f"fetch it again: python -m brushwork.pretrained {arch}") from None
    if not isinstance(state, dict):
        raise BrushworkError(f"{path}: holds a {type(state).__name__}, not a torchvision {name} state dict")
    state = {re.sub(r"^(module\.)?features\.", "", k): v for k, v in state.items()
             if not str(k).startswith(("classifier.", "module.classifier."))}
    convs = [k for k in state if k.endswith(".weight")]
    expected = sum(1 for c in CFG[arch] if c != "M")
    if "0.weight" not in state or state["0.weight"].shape != (64, 3, 3, 3) or len(convs) != expected:
        raise BrushworkError(f"{path}: not a torchvision {name} state dict ({expected} conv layers, the first "
                             "64x3x3x3)")
    return state


class VGGFeatures(nn.Module):
    """Maps images in [0, 1] (N, 3, H, W) to a dict of the requested layers' activations (VGG-16 or -19)."""

    def __init__(self, layers: list[str], state: dict, pooling: str = "max", normalize: bool = True,
                 winograd: bool = True, arch: str = "vgg19"):
        super().__init__()
        self.winograd = winograd  # 3x3 convs as Winograd F(4x4,3x3) where it pays off (CPU fp32, wide layers)
        self.layers = list(dict.fromkeys(layers))
        self.indices = {name: layer_index(name, arch) for name in self.layers}
        depth = max(self.indices.values()) + 1
        self.body = build_features(depth, pooling, arch)
        self.body.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) < depth})
        self.body.requires_grad_(False)
        self.normalize = normalize
        # float64 constants, cast to the input's dtype in forward: exact in float64 runs too
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1), persistent=False)

    def _apply(self, fn, recurse=True):
        # keep the normalisation constants in float64 whatever .float()/.half() does to the weights
        mean, std = self.mean, self.std
        out = super()._apply(fn, recurse)
        self.mean, self.std = mean.to(self.mean.device), std.to(self.std.device)
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalize:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        wanted = {i: name for name, i in self.indices.items()}
        out = {}
        for i, module in enumerate(self.body):
            x = apply_conv(module, x) if self.winograd and isinstance(module, nn.Conv2d) else module(x)
            if i in wanted:
                out[wanted[i]] = x
        return {name: out[name] for name in self.layers}


def gram(features: torch.Tensor) -> torch.Tensor:
    """Per-sample Gram matrix F Fᵀ of (N, C, H, W) features: (N, C, C), unnormalised."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2))



