"""The sample grids of eval/grids.py: each CycleGAN run's test images through both generators, several
runs side by side (Fig. 7), and the methods compared on the same photos."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image

from brushwork.core import presets, records
from brushwork.core.errors import BrushworkError, ImageError
from brushwork.core.log import say
from brushwork.data.images import fit, save_image, to_tensor
from brushwork.data.stream import SourceImage, image_source
from brushwork.evaluation import translate
from brushwork.evaluation.grids import labelled_grid
from brushwork.models import registry
from brushwork.schemas.eval import GridsConfig


def square(img: Image.Image, size: int) -> torch.Tensor:
    return to_tensor(fit(img, (size, size)))


def choose(items: list[SourceImage], rows: int, seed: int) -> list[SourceImage]:
    return [items[i] for i in sorted(random.Random(seed).sample(range(len(items)), min(rows, len(items))))]


def run_kind(run: str) -> str:
    """gatys (a render folder), or the registry's kind of a run (what it recorded; for a run made before kinds
    were recorded, what its config says)."""
    path = Path(run)
    if (path / "gatys_config.toml").is_file():
        return "gatys"
    recorded = registry.recorded_kind(path)
    if recorded:
        return recorded
    values = presets.read_resolved(path / "config.toml", records.RunConfig)
    if "style" in values and "width" in values:
        return "fast_style"
    if values or (path / "checkpoints").is_dir() or (path / "export" / "G_A.pth").is_file():
        return "cyclegan"
    raise BrushworkError(f"{run}: not a run dir (no config.toml) nor a Gatys render folder (no gatys_config.toml)")


def run_data(run: str, data: str) -> tuple[str, str]:
    values = presets.read_resolved(Path(run) / "config.toml", records.RunConfig)
    source = data or values.get("data", "")
    if not source:
        raise BrushworkError(f"{run}: no config.toml naming its data; pass --data")
    return source, values.get("dataset") or values.get("domain") or Path(run).name


def test_tensors(source: str, domain: str, rows: int, seed: int, size: int) -> torch.Tensor:
    if Path(source, f"test{domain}").is_dir():
        source = str(Path(source, f"test{domain}"))
    items = choose(image_source(source, "test", domain), rows, seed)
    return torch.stack([square(it.load(), size) for it in items])


def column_labels(runs: list[str], domains: list[str]) -> list[str]:
    """The domain, plus the run's folder name where two runs share a domain (its path where names repeat too)."""
    names = [Path(r).name for r in runs]
    return [d if domains.count(d) == 1 else f"{d} ({n if names.count(n) == 1 else r})"
            for r, n, d in zip(runs, names, domains)]


@torch.no_grad()
def run_grids(cfg: GridsConfig, out: Path) -> None:
    photos, translations, names, domains = None, [], [], []
    for run in cfg.runs:
        if run_kind(run) != "cyclegan":
            raise BrushworkError(f"{run}: not a CycleGAN run; use --compare to put other methods beside it")
        source, domain = run_data(run, cfg.data)
        G_A, used_a = translate.load_generator(run, "AtoB", cfg.step)
        G_B, used_b = translate.load_generator(run, "BtoA", cfg.step)
        say(f"{run}: {used_a}; {used_b}")
        real_A = test_tensors(source, "A", cfg.rows, cfg.seed, cfg.cell_size)
        real_B = test_tensors(source, "B", cfg.rows, cfg.seed, cfg.cell_size)
        fake_B, fake_A = G_A(real_A), G_B(real_B)
        name = Path(run).name
        save_image(labelled_grid([real_A, fake_B, G_B(fake_B)], ["real A", "fake B", "reconstructed A"]),
                   out / f"{name}_A.png")
        save_image(labelled_grid([real_B, fake_A, G_A(fake_A)], ["real B", "fake A", "reconstructed B"]),
                   out / f"{name}_B.png")
        say(f"{name}: {out / (name + '_A.png')}, {out / (name + '_B.png')}")
        photos = real_B if photos is None else photos
        translations.append(G_B(photos))
        names.append(run)
        domains.append(domain)
    if len(cfg.runs) > 1:
        path = out / "fig7_photo_to_artists.png"
        save_image(labelled_grid([photos, *translations], ["photo", *column_labels(names, domains)]), path)
        say(f"photo -> {', '.join(domains)}: {path}")


@torch.no_grad()
def compare_grid(cfg: GridsConfig, out: Path) -> None:
    cyclegan_runs = [r for r in cfg.runs if run_kind(r) == "cyclegan"]
    content = cfg.content
    if not content:
        if not cyclegan_runs:
            raise BrushworkError("--compare needs --content PHOTOS (or a CycleGAN run whose test photos to use)")
        source, _ = run_data(cyclegan_runs[0], cfg.data)
        content = str(Path(source, "testB")) if Path(source, "testB").is_dir() else source
    items = choose(image_source(content, "test", "B"), cfg.rows, cfg.seed)
    photos = [it.load() for it in items]
    photo_cells = torch.stack([square(p, cfg.cell_size) for p in photos])  # [-1, 1]
    columns, labels = [photo_cells], ["photo"]
    for run in cfg.runs:
        kind = run_kind(run)
        if kind == "gatys":
            for style, cells in gatys_columns(run, items, cfg.cell_size).items():
                columns.append(cells)
                labels.append(f"Gatys: {style}")
        elif kind == "fast_style":
            from brushwork.training.fast_style import load_stylizer

            net, used, styles = load_stylizer(run, cfg.step)
            say(f"{run}: {used}")
            for index, style in enumerate(styles):
                columns.append(net((photo_cells + 1) / 2, index).clamp(0, 1) * 2 - 1)  # the network works in [0, 1]
                labels.append(f"fast style: {style}")
        elif kind == "adain":
            from brushwork.training.adain import load_model, load_styles

            model, used = load_model(run, cfg.step)
            say(f"{run}: {used}")
            paths = compare_styles(cfg)
            if not paths:
                raise BrushworkError(f"{run}: an AdaIN run paints any style: give --style IMAGE[,IMAGE...] (or put a "
                                     "Gatys render folder or a fast-style run in the grid: their styles are used)")
            style_images, _ = load_styles(tuple(paths), cfg.cell_size)
            for style_path, style_image in zip(paths, style_images):
                columns.append(model.stylize((photo_cells + 1) / 2, [style_image]) * 2 - 1)
                labels.append(f"AdaIN: {Path(style_path).stem}")
        else:
            G_B, used = translate.load_generator(run, "BtoA", cfg.step)
            say(f"{run}: {used}")
            columns.append(G_B(columns[0]))
            labels.append(f"CycleGAN: {run_data(run, cfg.data)[1]}")
    path = out / "compare_methods.png"
    save_image(labelled_grid(columns, labels), path)
    say(f"methods side by side ({', '.join(labels[1:])}): {path}")


def compare_styles(cfg: GridsConfig) -> list[str]:
    """The style images AdaIN columns paint with: --style, else those of the grid's fast-style runs and Gatys
    render folders (so every method shows the same paintings)."""
    if cfg.style:
        return list(cfg.style)
    from brushwork.data.images import find_images
    from brushwork.training.fast_style import style_paths_of

    found: list[str] = []
    for run in cfg.runs:
        kind = run_kind(run)
        if kind == "fast_style":
            found += style_paths_of(run)
        elif kind == "gatys":
            style = presets.read_resolved(Path(run) / "gatys_config.toml").get("style", "")
            for named in (style if isinstance(style, list) else [style]):
                found += [str(p) for p in find_images(named)] if Path(named).is_dir() else [named]
    return list(dict.fromkeys(p for p in found if Path(p).is_file()))


def gatys_columns(folder: str, items: list[SourceImage], size: int) -> dict[str, torch.Tensor]:
    """Per style: the renders of these photos (content stem matched), grey where one is missing."""
    renders: dict[str, dict[str, Path]] = {}
    for png in sorted(Path(folder).glob("*__*.png")):
        stem, style = png.stem.split("__", 1)
        renders.setdefault(style, {})[stem] = png
    if not renders:
        raise BrushworkError(f"{folder}: no {{content}}__{{style}}.png renders")
    grey = torch.zeros(3, size, size)
    out = {}
    for style, by_content in renders.items():
        cells = []
        for it in items:
            png = by_content.get(Path(it.name).stem)
            try:
                cells.append(square(Image.open(png).convert("RGB"), size) if png else grey)
            except (OSError, ImageError):
                cells.append(grey)
        if any(Path(it.name).stem in by_content for it in items):
            out[style] = torch.stack(cells)
    if not out:
        raise BrushworkError(f"{folder}: no render of the chosen photos; render them with train/gatys.py --content "
                             "with the same photos")
    return out
