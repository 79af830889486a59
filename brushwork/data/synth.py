"""A synthetic unpaired dataset with a known A → B mapping, for checking that a translator learns.

Domain A: procedurally drawn scenes (sky gradient, discs, boxes, rings, bands) in a warm palette.
Domain B: *other* scenes of the same kind passed through ``true_map``, a fixed colour mapping
(channel rotation and inversion). The two domains are unpaired, like monet2photo, but for any A
image the right translation is known exactly, so PSNR(G(a), true_map(a)) measures learning.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from brushwork.core.fileio import atomic_write_bytes
from brushwork.data.images import encode_png

# warm, daylight colours; scene colours are drawn near these
PALETTE_A = np.array([
    [235, 200, 120], [210, 120, 60], [250, 230, 180], [170, 90, 50], [120, 160, 70],
    [90, 130, 170], [240, 160, 90], [200, 180, 140], [60, 90, 50], [250, 245, 220],
], dtype=np.float64)
CHANNEL_ROTATION = [1, 2, 0]
SPLITS = {"trainA": ("A", "train"), "trainB": ("B", "train"), "testA": ("A", "test"), "testB": ("B", "test")}


def true_map(a: np.ndarray) -> np.ndarray:
    """The ground-truth A → B translation of uint8 (..., H, W, 3) pixels."""
    return (255 - a[..., CHANNEL_ROTATION]).astype(np.uint8)


def true_map_tensor(x):
    """``true_map`` for tensors (N, 3, H, W) in [-1, 1]; exact counterpart of the uint8 version."""
    return -x[:, CHANNEL_ROTATION]


def inverse_map(b: np.ndarray) -> np.ndarray:
    """The ground-truth B → A translation (inverse of ``true_map``)."""
    inv = np.argsort(CHANNEL_ROTATION)
    return (255 - b[..., inv]).astype(np.uint8)


def _colour(rng: np.random.Generator) -> np.ndarray:
    base = PALETTE_A[rng.integers(len(PALETTE_A))]
    return np.clip(base + rng.normal(0, 12, size=3), 0, 255)


def render_scene(seed: int, size: int = 64) -> np.ndarray:
    """A deterministic domain-A scene, uint8 (size, size, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    top, bottom = _colour(rng), _colour(rng)
    img = top * (1 - yy[..., None]) + bottom * yy[..., None]
    for _ in range(int(rng.integers(3, 7))):
        colour = _colour(rng)
        kind = rng.integers(4)
        cx, cy = rng.uniform(0.1, 0.9, size=2)
        r = rng.uniform(0.08, 0.3)
        if kind == 0:    # disc
            dist = r - np.hypot(xx - cx, yy - cy)
        elif kind == 1:  # box
            w, h = rng.uniform(0.08, 0.35, size=2)
            dist = np.minimum(w - np.abs(xx - cx), h - np.abs(yy - cy))
        elif kind == 2:  # ring
            dist = 0.04 - np.abs(np.hypot(xx - cx, yy - cy) - r)
        else:            # horizontal band (a horizon)
            dist = 0.5 * r - np.abs(yy - cy)
        alpha = np.clip(dist * size + 0.5, 0, 1)[..., None]  # one-pixel soft edge
        img = img * (1 - alpha) + colour * alpha
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def sample(domain: str, split: str, index: int, seed: int, size: int) -> np.ndarray:
    """Image ``index`` of a split; A and B, train and test draw from disjoint scene seeds."""
    offset = {("A", "train"): 0, ("B", "train"): 1, ("A", "test"): 2, ("B", "test"): 3}[(domain, split)]
    scene_seed = (seed * 4 + offset) * 1_000_003 + index
    a = render_scene(scene_seed, size)
    return a if domain == "A" else true_map(a)


def write_dataset(out: str | os.PathLike, n_train: int = 32, n_test: int = 8, size: int = 64,
                  seed: int = 0, progress=None) -> dict[str, int]:
    """Write ``trainA trainB testA testB`` folders of PNGs (the original CycleGAN layout)."""
    out = Path(out)
    counts = {}
    for folder, (domain, split) in SPLITS.items():
        n = n_train if split == "train" else n_test
        for i in range(n):
            img = Image.fromarray(sample(domain, split, i, seed, size), "RGB")
            atomic_write_bytes(out / folder / f"{i:06d}.png", encode_png(img))
            if progress is not None:
                progress(1)
        counts[folder] = n
    return counts
