"""Apply a generator to images of any size: reflect-pad to a multiple of 4, translate, crop back."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from .images import from_tensor, to_tensor

MULTIPLE = 4  # two stride-2 downsamplings


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"  # reflect needs pad < size
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


@torch.no_grad()
def translate_batch(net: torch.nn.Module, images: list[Image.Image], device="cpu") -> list[Image.Image]:
    """Translate images of one size together at full resolution."""
    x = torch.stack([to_tensor(img) for img in images]).to(device)
    padded, (h, w) = pad_to_multiple(x)
    y = net(padded)[..., :h, :w]
    return [from_tensor(t) for t in y]


def size_batches(items: list, size_of, batch_size: int) -> list[list]:
    """Group items of equal size into batches of at most ``batch_size`` (order kept within a size)."""
    groups: dict = {}
    for item in items:
        groups.setdefault(size_of(item), []).append(item)
    return [g[i:i + batch_size] for g in groups.values() for i in range(0, len(g), batch_size)]
