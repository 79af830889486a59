#!/usr/bin/env python3
"""Sample grids of trained CycleGANs on test images.

  python eval/grids.py runs/cyclegan-monet --out grids/ [--rows 4] [--seed 0] [--size 256]
  python eval/grids.py runs/cyclegan-monet runs/cyclegan-cezanne runs/cyclegan-ukiyoe runs/cyclegan-vangogh --out grids/

For each run: RUN_A.png (real A | fake B | reconstructed A) and RUN_B.png (real B | fake A |
reconstructed B), ROWS test images chosen with --seed, centre-cropped to --size. With several runs
it also writes fig7_photo_to_artists.png (the paper's Fig. 7 layout): the same photos, then each
run's translation of them side by side. Test images come from the run's shards (config.toml 'data'),
or --data (a shard root or a folder with testA/ testB/).
"""

import random
import sys
import tomllib
from pathlib import Path

import torch

from brushwork import checkpoint, cli
from brushwork.errors import BrushworkError
from brushwork.grids import labelled_grid
from brushwork.images import find_images, load_image, save_image, to_tensor


def test_images(data: str, domain: str, rows: int, seed: int, size: int):
    root = Path(data)
    if (root / "manifest.json").is_file():
        from brushwork.data import iter_split

        items = list(iter_split(str(root), "test", domain))
    else:
        items = [(p.stem, p) for p in find_images(root / f"test{domain}")]
    if not items:
        raise BrushworkError(f"{data}: no test{domain} images")
    chosen = sorted(random.Random(seed).sample(range(len(items)), min(rows, len(items))))
    out = []
    for i in chosen:
        img = items[i][1] if not isinstance(items[i][1], Path) else load_image(items[i][1])
        side = min(img.size)
        img = img.crop(((img.width - side) // 2, (img.height - side) // 2,
                        (img.width - side) // 2 + side, (img.height - side) // 2 + side)).resize((size, size))
        out.append(to_tensor(img))
    return torch.stack(out)


def run_data(run: str, data: str) -> tuple[str, str]:
    cfg_path = Path(run) / "config.toml"
    cfg = tomllib.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    source = data or cfg.get("data", "")
    if not source:
        raise BrushworkError(f"{run}: no config.toml naming its data; pass --data")
    return source, cfg.get("domain", Path(run).name)


@torch.no_grad()
def main(*runs, out: str = "grids", rows: int = 4, seed: int = 0, size: int = 256, data: str = ""):
    if not runs:
        raise BrushworkError("name at least one run dir (or exported generator folder)")
    out_dir = Path(out)
    photos, columns, labels = None, [], []
    for run in runs:
        source, domain = run_data(run, data)
        G_A, G_B = checkpoint.load_generator(run, "AtoB"), checkpoint.load_generator(run, "BtoA")
        real_A = test_images(source, "A", rows, seed, size)
        real_B = test_images(source, "B", rows, seed, size)
        fake_B, fake_A = G_A(real_A), G_B(real_B)
        name = Path(run).name
        save_image(labelled_grid([real_A, fake_B, G_B(fake_B)], ["real A", "fake B", "reconstructed A"]),
                   out_dir / f"{name}_A.png")
        save_image(labelled_grid([real_B, fake_A, G_A(fake_A)], ["real B", "fake A", "reconstructed B"]),
                   out_dir / f"{name}_B.png")
        print(f"{name}: {out_dir / (name + '_A.png')}, {out_dir / (name + '_B.png')}")
        if photos is None:
            photos = real_B
            columns, labels = [real_B], ["photo"]
        columns.append(G_B(photos))
        labels.append(domain)
    if len(runs) > 1:
        path = out_dir / "fig7_photo_to_artists.png"
        save_image(labelled_grid(columns, labels), path)
        print(f"photo -> {', '.join(labels[1:])}: {path}")


if __name__ == "__main__":
    sys.exit(cli.run(main, help_text=__doc__))
