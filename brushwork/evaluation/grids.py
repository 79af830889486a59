"""Labelled image grids: columns of images with a caption above each column, readable at any cell size."""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw, ImageFont

from brushwork.data.images import to_uint8

MIN_FONT, MAX_FONT = 8, 28


def caption_font(size: int) -> ImageFont.ImageFont:
    """Pillow's bundled scalable font at ``size`` px (its bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def text_width(text: str, font) -> int:
    left, _, right, _ = font.getbbox(text)
    return right - left


def fit_text(text: str, font, width: int) -> str:
    """``text``, shortened with an ellipsis from the left-over end until it fits ``width`` pixels."""
    if text_width(text, font) <= width:
        return text
    while len(text) > 1 and text_width(text + "…", font) > width:
        text = text[:-1]
    return text + "…"


def fitted_font(labels: list[str], width: int):
    """The largest font (within limits) at which every label fits ``width``, or the smallest."""
    size = max(MIN_FONT, min(MAX_FONT, width // 10))
    while size > MIN_FONT and any(text_width(l, caption_font(size)) > width for l in labels):
        size -= 1
    return caption_font(size)


def tensor_grid(columns: list[torch.Tensor], rows: int | None = None) -> torch.Tensor:
    """(3, rows·H, cols·W) uint8 from columns of (N, 3, H, W) images in [-1, 1] (all one size)."""
    rows = rows or columns[0].shape[0]
    cols = [to_uint8(c[:rows]) for c in columns]
    return torch.cat([torch.cat(list(c), dim=1) for c in cols], dim=2)


def labelled_grid(columns: list[torch.Tensor], labels: list[str], rows: int | None = None) -> Image.Image:
    """The tensor grid as an RGB image with a caption strip above each column.

    The font is sized to the cells and long captions are shortened with an ellipsis, so every
    caption stays inside its column at any size.
    """
    grid = tensor_grid(columns, rows)
    body = Image.fromarray(grid.permute(1, 2, 0).numpy(), "RGB")
    width = body.width // len(columns)
    font = fitted_font(labels, width - 4)
    strip = font.size + 6 if hasattr(font, "size") else 16
    canvas = Image.new("RGB", (body.width, body.height + strip), (255, 255, 255))
    canvas.paste(body, (0, strip))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        draw.text((i * width + 2, 2), fit_text(label, font, width - 4), fill=(0, 0, 0), font=font)
    return canvas
