"""VGG-19 feature extractor: named layers, max or average pooling, weight resolution.

Layers answer to two naming schemes: the usual block names (``conv4_2``, ``relu3_1``, ``pool2``) and
the paper's conv-index names (``conv_5`` is the 5th conv = ``conv3_1``; ``relu_5`` likewise). The
network is cut after the deepest requested layer, and its ReLUs are not in-place, so a pre-ReLU
feature is never overwritten.
"""

from __future__ import annotations

import os
import re
import warnings

import torch
from torch import nn

from .errors import BrushworkError
from .weights import resolve as resolve_weights
from .winograd import apply_conv

# torchvision's vgg19.features: conv widths per block, 'M' = pool
VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"
WEIGHTS_URL = f"https://download.pytorch.org/models/{WEIGHTS_FILE}"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names() -> list[list[str]]:
    """Names of each position in vgg19.features (every position has a block name and an index name)."""
    names, block, within, conv_index = [], 1, 0, 0
    for item in VGG19_CFG:
        if item == "M":
            names.append([f"pool{block}", f"pool_{block}"])
            block, within = block + 1, 0
        else:
            within += 1
            conv_index += 1
            names.append([f"conv{block}_{within}", f"conv_{conv_index}"])
            names.append([f"relu{block}_{within}", f"relu_{conv_index}"])
    return names


LAYER_INDEX = {name: i for i, pair in enumerate(layer_names()) for name in pair}


def layer_index(name: str) -> int:
    if name not in LAYER_INDEX:
        raise BrushworkError(f"unknown VGG-19 layer {name!r}; use names like conv4_2, relu3_1, pool2 "
                             "or the paper's conv_1..conv_16")
    return LAYER_INDEX[name]


def build_features(depth: int, pooling: str = "max") -> nn.Sequential:
    """vgg19.features[:depth] with non-inplace ReLUs and the chosen pooling."""
    if pooling not in ("max", "avg"):
        raise BrushworkError(f"pooling must be max or avg, got {pooling!r}")
    layers: list[nn.Module] = []
    in_ch = 3
    for item in VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = item
    return nn.Sequential(*layers[:depth])


def load_state(weights: str | os.PathLike | None = None, random_init: bool = False, seed: int = 0) -> dict:
    """A vgg19.features state dict ('0.weight', ...) from a file, the torch hub cache, or a seeded init."""
    if random_init:
        warnings.warn("VGG-19 is randomly initialised: fine for tests and demos, but results are not artistic",
                      stacklevel=2)
        import torchvision

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torchvision.models.vgg19(weights=None).features.state_dict()
    path = resolve_weights(weights, WEIGHTS_FILE, WEIGHTS_URL, "--vgg_weights", "--random_vgg")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise BrushworkError(f"{path}: cannot read VGG-19 weights ({str(e).splitlines()[0]}); "
                             f"download {WEIGHTS_URL} again") from None
    state = {re.sub(r"^(module\.)?features\.", "", k): v for k, v in state.items()
             if not k.startswith(("classifier.", "module.classifier."))}
    if "0.weight" not in state or state["0.weight"].shape != (64, 3, 3, 3):
        raise BrushworkError(f"{path}: not a torchvision VGG-19 state dict (no features.0.weight of shape 64x3x3x3)")
    return state


class VGGFeatures(nn.Module):
    """Maps images in [0, 1] (N, 3, H, W) to a dict of the requested layers' activations."""

    def __init__(self, layers: list[str], state: dict, pooling: str = "max", normalize: bool = True,
                 winograd: bool = True):
        super().__init__()
        self.winograd = winograd  # 3x3 convs as Winograd F(4x4,3x3) where it pays off (CPU fp32, wide layers)
        self.layers = list(dict.fromkeys(layers))
        self.indices = {name: layer_index(name) for name in self.layers}
        depth = max(self.indices.values()) + 1
        self.body = build_features(depth, pooling)
        self.body.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) < depth})
        self.body.requires_grad_(False)
        self.normalize = normalize
        # float64 constants, cast to the input's dtype in forward: exact in float64 runs too
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1), persistent=False)
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



