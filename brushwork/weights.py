"""Where pretrained weights come from: an explicit path, else torchvision's hub cache; never the network."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import BrushworkError


def hub_path(filename: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def resolve(given: str | os.PathLike | None, filename: str, url: str, flag: str, test_flag: str) -> Path:
    """The weights file to load, or one error line saying where to put it (nothing is downloaded)."""
    path = Path(given) if given else hub_path(filename)
    if not path.is_file():
        where = f"{flag} {path} does not exist" if given else f"no weights at {path}"
        raise BrushworkError(f"{where}; download {url} to {hub_path(filename)} or pass {flag} PATH "
                             f"({test_flag} for tests only)")
    return path
