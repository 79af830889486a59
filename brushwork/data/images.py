"""Decode any image file into RGB 8-bit, or say exactly why it cannot be.

The format is sniffed from the content, never the name. Handled: EXIF orientation, animated files
(first frame), L / LA / P / PA / CMYK / RGBA (alpha composited on white) / 16-bit and 32-bit
integer / float modes, a pixel cap against decompression bombs, and truncated or corrupt data.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from brushwork.core.errors import ImageError
from brushwork.core.fileio import atomic_open

DEFAULT_MAX_PIXELS = 80_000_000  # ~9000 x 9000: past this, decoding alone takes GBs of memory
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the normalisation of torchvision's VGG and Inception weights
IMAGENET_STD = (0.229, 0.224, 0.225)
# Our own pixel cap (max_pixels) is checked right after the header is read, before any decoding;
# Pillow's built-in cap would refuse large images the user allowed with --max_pixels.
Image.MAX_IMAGE_PIXELS = None
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
STORE_AS_IS_FORMATS = {"JPEG": "jpg", "PNG": "png"}
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    """What was found in the file, beside the decoded pixels."""

    format: str          # container format sniffed from the bytes: JPEG, PNG, GIF, ...
    mode: str            # the file's own pixel mode: RGB, L, CMYK, RGBA, I;16, ...
    width: int           # after EXIF orientation
    height: int
    frames: int
    converted: bool      # the stored bytes decode to something other than these RGB pixels

    @property
    def extension(self) -> str | None:
        """The extension to store the original bytes under, or None if they must be re-encoded."""
        return None if self.converted else STORE_AS_IS_FORMATS.get(self.format)


def is_image_name(name: str | os.PathLike) -> bool:
    """An image file name; macOS's AppleDouble companions (``._a.jpg``: metadata, not pixels) are not."""
    base = os.path.basename(str(name))
    return base.lower().endswith(IMAGE_EXTENSIONS) and not base.startswith("._")


def decode_image(data: bytes, name: str = "<bytes>",
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, ImageInfo]:
    """RGB image and what it came from; raises ImageError naming ``name`` and the reason."""
    if len(data) == 0:
        raise ImageError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(f"{name}: {width}x{height} is {width * height:,} pixels, over the cap of "
                                 f"{max_pixels:,}; if you trust this file, rerun with --max_pixels "
                                 f"{width * height} or more")
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                img.seek(0)
            img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (content is not a known image format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{name}: truncated or corrupt image data ({e})") from None

    fmt, mode = img.format or "unknown", img.mode
    orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    try:
        if orientation not in (1, None):
            img = ImageOps.exif_transpose(img)
        rgb = to_rgb(img)
    except (OSError, ValueError) as e:
        raise ImageError(f"{name}: cannot convert {mode} pixels to RGB ({e})") from None
    converted = mode != "RGB" or orientation not in (1, None) or frames > 1 or fmt not in STORE_AS_IS_FORMATS
    info = ImageInfo(format=fmt, mode=mode, width=rgb.width, height=rgb.height, frames=frames,
                     converted=converted)
    return rgb, info


def read_error(path: str | os.PathLike, err: OSError) -> ImageError:
    """The one line for a file that cannot be opened: missing, a folder, a symlink loop, unreadable."""
    if isinstance(err, FileNotFoundError):
        return ImageError(f"{path}: no such file (or a broken symlink)")
    if isinstance(err, IsADirectoryError):
        return ImageError(f"{path}: is a folder, not an image file")
    if err.errno == errno.ELOOP:
        return ImageError(f"{path}: symlink loop (the link points back at itself)")
    return ImageError(f"{path}: cannot read ({err.strerror or err})")


def check_regular(path: str | os.PathLike, name: str | None = None) -> None:
    """ImageError unless ``path`` is a regular file (reading a FIFO named ``x.jpg`` would block forever)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise read_error(name or path, e) from None
    if stat.S_ISDIR(mode):
        raise ImageError(f"{name or path}: is a folder, not an image file")
    if not stat.S_ISREG(mode):
        raise ImageError(f"{name or path}: not a regular file (a FIFO, socket or device); move it out of the folder")


def load_image_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of an image file; ImageError naming the file if it cannot be read."""
    check_regular(path)
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise read_error(path, e) from None


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The file at ``path`` as an RGB image; ImageError if it cannot be read or decoded."""
    return decode_image(load_image_bytes(path), str(path), max_pixels)[0]


def image_size(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) as ``load_image`` would return it (EXIF orientation applied), from the header alone.

    Nothing is decoded, so planning thousands of 12-MP photos costs a few KB each. Files that are
    missing, not images, or over the pixel cap give the same ImageError ``load_image`` would; damage
    past the header is found only when the pixels are decoded.
    """
    check_regular(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (content is not a known image format)") from None
    except OSError as e:  # with an errno: opening the file failed; without: Pillow's own parse error
        if e.errno is not None:
            raise read_error(path, e) from None
        raise ImageError(f"{path}: truncated or corrupt image data ({e})") from None
    except (SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: truncated or corrupt image data ({e})") from None
    if width * height > max_pixels:
        raise ImageError(f"{path}: {width}x{height} is {width * height:,} pixels, over the cap of {max_pixels:,}; "
                         f"if you trust this file, rerun with --max_pixels {width * height} or more")
    if width == 0 or height == 0:
        raise ImageError(f"{path}: truncated or corrupt image data (size {width}x{height})")
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB; transparency is composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit data (PNG/TIFF); "I" is how Pillow opens most 16-bit greyscale files
        arr = np.asarray(img, dtype=np.int64)
        arr8 = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.size and float(np.nanmax(arr)) <= 1.0 else 1.0
        arr8 = np.clip(np.rint(np.nan_to_num(arr) * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "1":
        return img.convert("L").convert("RGB")
    return img.convert("RGB")  # L, P, CMYK, YCbCr, LAB, HSV


def encode_png(img: Image.Image) -> bytes:
    """Lossless, metadata-free PNG bytes (deterministic for equal pixels)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def save_image(img: Image.Image, path: str | os.PathLike, **params) -> None:
    """Save atomically (temp + rename); the format follows the extension."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown image extension {path.suffix!r}; use .png or .jpg")
    with atomic_open(path, "wb") as f:
        img.save(f, format=fmt, **params)


def to_unit_tensor(img: Image.Image):
    """RGB image → float tensor (3, H, W) in [0, 1], the feature extractors' range."""
    import torch

    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)


def from_unit_tensor(x) -> Image.Image:
    """(3, H, W) tensor in [0, 1] → RGB image (rounded, clamped)."""
    import torch

    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def to_uint8(x):
    """(…, 3, H, W) tensor in [-1, 1] → uint8 tensor on the CPU."""
    import torch

    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def to_tensor(img: Image.Image):
    """RGB image → float tensor (3, H, W) in [-1, 1], the generators' range."""
    import torch

    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def from_tensor(x) -> Image.Image:
    """(3, H, W) tensor in [-1, 1] → RGB image."""
    return Image.fromarray(to_uint8(x).permute(1, 2, 0).numpy(), "RGB")


def find_images(root: str | os.PathLike, unreadable: bool = False) -> list[Path]:
    """Every file under ``root`` (recursive) with an image extension, any case, sorted; hidden folders
    (``.page/``, ``.brushwork/``, ``.parts/``: the tools' own) are not searched.

    ``unreadable``: also list image-named entries that cannot be read as files (broken or looping
    symlinks, FIFOs, sockets), so the caller can report them instead of skipping them silently.
    """
    root = Path(root)
    if not root.exists():
        raise ImageError(f"{root}: no such file or folder")
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if is_image_name(p.name)
                  and not any(part.startswith(".") for part in p.relative_to(root).parts[:-1])
                  and (p.is_file() or (unreadable and not p.is_dir())))


def resized_unit_tensor(img: Image.Image, hw: tuple[int, int]):
    """(1, 3, H, W) in [0, 1], resized (bicubic) to ``hw``."""
    return to_unit_tensor(img.resize((hw[1], hw[0]), Image.Resampling.BICUBIC))[None]


def fit(img: Image.Image, hw: tuple[int, int]) -> Image.Image:
    """The one centre-crop-and-resize: ``img`` resized (bicubic) to cover (H, W) with its aspect kept, then
    centre-cropped to it. Styles fill an output, grid cells and survey images are squares. (Resizing the whole
    image first, not a crop of it as ``ImageOps.fit`` does, keeps Gatys's style inputs as they always were.)"""
    h, w = hw
    scale = max(h / img.height, w / img.width)
    rh, rw = max(h, round(img.height * scale)), max(w, round(img.width * scale))
    top, left = (rh - h) // 2, (rw - w) // 2
    return img.resize((rw, rh), Image.Resampling.BICUBIC).crop((left, top, left + w, top + h))


def cover_crop(img: Image.Image, hw: tuple[int, int]):
    """(1, 3, H, W) in [0, 1] of ``fit(img, hw)``."""
    return to_unit_tensor(fit(img, hw))[None]
