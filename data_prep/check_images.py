#!/usr/bin/env python3
"""Check that every image under one or more folders decodes to RGB; list the ones that do not.

  python data_prep/check_images.py data/raw/monet2photo my/photos [--max_pixels N]

Each file goes through brushwork's image validator (content sniffing, truncation, pixel cap, EXIF
orientation, mode conversion). Prints a per-folder summary of counts, formats and modes, then one
line per rejected file with the reason. Exits 1 if any file was rejected.
"""

import sys
from collections import Counter
from pathlib import Path

from brushwork import cli
from brushwork.core.errors import BrushworkError, ImageError
from brushwork.core.progress import Progress
from brushwork.schemas.data import CheckImagesConfig


def run(cfg: CheckImagesConfig) -> int:
    from brushwork.data.images import decode_image, find_images, load_image_bytes  # PIL and numpy: once flags are good

    if not cfg.folders:
        raise BrushworkError("name at least one folder to check, e.g. data_prep/samples")
    rejected = []
    for folder in cfg.folders:
        paths = find_images(folder, unreadable=True)
        if not paths:
            raise BrushworkError(f"{folder}: no image files found (.jpg, .png, .webp, ... in any case)")
        kinds = Counter()
        with Progress(len(paths), desc=str(folder), unit="img", every_seconds=15) as progress:
            for path in paths:
                try:
                    _, info = decode_image(load_image_bytes(path), str(path), cfg.max_pixels)
                    kinds[f"{info.format}/{info.mode}"] += 1
                except ImageError as e:
                    rejected.append(str(e))
                progress.update()
        good = sum(kinds.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        print(f"{Path(folder)}: {good} of {len(paths)} images valid ({detail})")
    for line in rejected:
        print(f"  rejected: {line}")
    return 1 if rejected else 0


COMMAND = cli.Command(CheckImagesConfig, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
