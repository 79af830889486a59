#!/usr/bin/env python3
"""Translate a folder (or shard split) of images with a trained generator, at full resolution.

  python eval/translate.py runs/cyclegan-monet --input photos/ --out monet_photos/ --direction BtoA
  accelerate launch eval/translate.py runs/cyclegan-monet --input data/shards/monet2photo --split test \\
      --domain B --out out/ --direction BtoA          # ranks split the images

RUN_OR_FILE is a run dir (uses export/G_A|G_B.pth, else the latest checkpoint) or a generator .pth
(brushwork's or the original code's). AtoB uses G_A (painting -> photo for monet2photo), BtoA uses
G_B. Each image is reflect-padded to a multiple of 4, translated and cropped back; output names keep
the input's relative path (as .png). Existing outputs are skipped, so a rerun finishes the rest.
"""

import sys
from pathlib import Path

import torch

from brushwork import checkpoint, cli
from brushwork.errors import BrushworkError, ImageError
from brushwork.images import find_images, load_image, save_image
from brushwork.translate import size_batches, translate_batch


def list_inputs(source: str, split: str, domain: str):
    """[(relative output name, loader)] from a folder or a shard root."""
    path = Path(source)
    if (path / "manifest.json").is_file():
        from brushwork.data import iter_split

        return [(f"{key}.png", img) for key, img in iter_split(str(path), split, domain)]
    files = find_images(path)
    if not files:
        raise BrushworkError(f"{source}: no images found")
    base = path if path.is_dir() else path.parent
    return [(f.relative_to(base).with_suffix(".png").as_posix(), f) for f in files]


def main(run_or_file: str, input: str = "", out: str = "", direction: str = "AtoB", batch_size: int = 4,
         split: str = "test", domain: str = "", device: str = ""):
    if not input or not out:
        raise BrushworkError("--input and --out are required")
    net = checkpoint.load_generator(run_or_file, direction)
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    dev = device or state.device
    net = net.to(dev)
    domain = domain or ("A" if direction == "AtoB" else "B")
    items = list_inputs(input, split, domain)[state.process_index::state.num_processes]
    out_dir = Path(out)
    todo = [(name, src) for name, src in items if not (out_dir / name).exists()]
    images, failed = [], 0
    for name, src in todo:
        try:
            images.append((name, src if not isinstance(src, Path) else load_image(src)))
        except ImageError as e:
            print(f"skipped: {e}", file=sys.stderr)
            failed += 1
    from tqdm import tqdm

    with tqdm(total=len(images), unit="img", desc=f"translate {direction}", disable=not state.is_main_process or None) as bar:
        for group in size_batches(images, lambda it: it[1].size, int(batch_size)):
            for (name, _), result in zip(group, translate_batch(net, [img for _, img in group], dev)):
                save_image(result, out_dir / name)
            bar.update(len(group))
    print(f"rank {state.process_index}: translated {len(images)} image(s) into {out_dir}"
          + (f", {len(items) - len(todo)} already there" if len(items) > len(todo) else "")
          + (f", {failed} unreadable" if failed else ""))
    cli.end_distributed()
    return 1 if failed and not images else 0


if __name__ == "__main__":
    sys.exit(cli.run(main, help_text=__doc__))
