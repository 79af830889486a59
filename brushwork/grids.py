"""Labelled image grids: columns of images with a caption above each column."""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw, ImageFont

from .images import to_uint8

LABEL_HEIGHT = 16


def tensor_grid(columns: list[torch.Tensor], rows: int | None = None) -> torch.Tensor:
    """(3, rows·H, cols·W) uint8 from columns of (N, 3, H, W) images in [-1, 1] (all one size)."""
    rows = rows or columns[0].shape[0]
    cols = [to_uint8(c[:rows]) for c in columns]
    return torch.cat([torch.cat(list(c), dim=1) for c in cols], dim=2)


def labelled_grid(columns: list[torch.Tensor], labels: list[str], rows: int | None = None) -> Image.Image:
    """The tensor grid as an RGB image with a caption strip above each column."""
    grid = tensor_grid(columns, rows)
    body = Image.fromarray(grid.permute(1, 2, 0).numpy(), "RGB")
    width = body.width // len(columns)
    canvas = Image.new("RGB", (body.width, body.height + LABEL_HEIGHT), (255, 255, 255))
    canvas.paste(body, (0, LABEL_HEIGHT))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, label in enumerate(labels):
        draw.text((i * width + 3, 2), label, fill=(0, 0, 0), font=font)
    return canvas
