#!/usr/bin/env python3
"""Check that every image under one or more folders decodes to RGB; list the ones that do not.

Each file goes through brushwork's image validator (content sniffing, truncation, pixel cap, EXIF
orientation, mode conversion). Prints a per-folder summary of counts, formats and modes, then one
line per rejected file with the reason. Exits 1 if any file was rejected.

usage: python data_prep/check_images.py DIR [DIR ...] [--max_pixels N]
"""

import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from brushwork import cli
from brushwork.errors import BrushworkError, ImageError
from brushwork.images import DEFAULT_MAX_PIXELS, decode_image, find_images


def main(*folders, max_pixels: int = DEFAULT_MAX_PIXELS):
    if not folders:
        raise BrushworkError("name at least one folder to check, e.g. data_prep/samples")
    rejected = []
    for folder in folders:
        paths = find_images(folder)
        if not paths:
            raise BrushworkError(f"{folder}: no image files found (looked for {', '.join(('.jpg', '.png', '...'))})")
        kinds = Counter()
        for path in tqdm(paths, desc=str(folder), unit="img", disable=None):
            try:
                _, info = decode_image(path.read_bytes(), str(path), int(max_pixels))
                kinds[f"{info.format}/{info.mode}"] += 1
            except ImageError as e:
                rejected.append(str(e))
        good = sum(kinds.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        print(f"{Path(folder)}: {good} of {len(paths)} images valid ({detail})")
    for line in rejected:
        print(f"  rejected: {line}")
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(cli.run(main, help_text=__doc__))
