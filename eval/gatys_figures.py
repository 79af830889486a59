#!/usr/bin/env python3
"""The paper's Gatys figures: Fig. 3 (α/β × style-layer sweep) and Fig. 4 (total loss vs iteration).

  python eval/gatys_figures.py fig3 --content photo.jpg --style scream.jpg --out figs/ [--preset paper]
        [--ratios 1e-5,1e-6,1e-7,1e-8] [--depths 3,4,5] [--size 256] [--iterations 300] [--random_vgg]
  python eval/gatys_figures.py fig4 renders/photo__scream.json [more.json ...] --out figs/fig4.png

fig3 renders the whole grid as ONE batched job (one pair per cell, with per-pair α/β and style
layers conv_1..conv_k), writes each cell under OUT/cells/ (reruns skip finished cells), then
assembles OUT/fig3.png with the ratios above the columns and the layer sets beside the rows.
fig4 plots the total loss at every evaluation from the runner's per-pair JSON files.
"""

import json
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from brushwork import cli, config, gatys_run
from brushwork.config import GatysConfig
from brushwork.errors import BrushworkError
from brushwork.fileio import atomic_write_text
from brushwork.images import save_image


def _floats(text) -> list[float]:
    return [float(v) for v in (text if isinstance(text, (list, tuple)) else str(text).split(","))]


def fig3(content: str = "", style: str = "", out: str = "figs", ratios="1e-5,1e-6,1e-7,1e-8", depths="3,4,5",
         preset: str = "paper", **flags):
    if not content or not style:
        raise BrushworkError("fig3 needs --content IMAGE and --style IMAGE")
    ratios, depths = _floats(ratios), [int(d) for d in _floats(depths)]
    cfg = config.load_config(GatysConfig, preset, {**flags, "out": str(Path(out) / "cells")}, tool="gatys")
    lines, cells = [], {}
    for depth in depths:
        layers = [f"conv_{i}" for i in range(1, depth + 1)]
        for ratio in ratios:
            name = f"depth{depth}_ratio{ratio:g}"
            cells[(depth, ratio)] = name
            lines.append(json.dumps({"content": str(Path(content).resolve()), "style": str(Path(style).resolve()),
                                     "name": name, "content_weight": 1.0, "style_weight": 1.0 / ratio,
                                     "style_layers": layers, "style_layer_weights": [1.0 / depth] * depth}))
    pairs_file = Path(out) / "fig3_pairs.jsonl"
    atomic_write_text(pairs_file, "\n".join(lines) + "\n")
    cfg = config.dataclasses.replace(cfg, pairs=str(pairs_file), batch=max(cfg.batch, len(lines)))
    pairs = [p for p in gatys_run.read_pairs(cfg) if not gatys_run.is_done(cfg.out, p)]
    if pairs:
        loaded = [gatys_run.load_pair(p, cfg.max_pixels) for p in pairs]
        device = "cuda" if torch.cuda.is_available() else "cpu"
        _, failed = gatys_run.render_all(loaded, cfg, Path(cfg.out), device)
        if failed:
            raise BrushworkError(f"{len(failed)} cell(s) failed: {failed[0][1]}")
    grid = assemble(Path(cfg.out), cells, ratios, depths)
    save_image(grid, Path(out) / "fig3.png")
    print(f"fig3: {Path(out) / 'fig3.png'} ({len(depths)} layer sets x {len(ratios)} ratios, "
          f"{len(pairs)} rendered in one batch, cells in {cfg.out})")


def assemble(cells_dir: Path, cells: dict, ratios: list[float], depths: list[int]) -> Image.Image:
    images = {k: Image.open(cells_dir / f"{v}.png").convert("RGB") for k, v in cells.items()}
    w, h = next(iter(images.values())).size
    left, top, pad = 110, 24, 4
    canvas = Image.new("RGB", (left + len(ratios) * (w + pad), top + len(depths) * (h + pad)), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    draw.text((6, 6), "alpha/beta:", fill="black", font=font)
    for j, ratio in enumerate(ratios):
        draw.text((left + j * (w + pad) + 4, 6), f"{ratio:g}", fill="black", font=font)
    for i, depth in enumerate(depths):
        draw.text((6, top + i * (h + pad) + h // 2 - 6), f"conv_1..conv_{depth}", fill="black", font=font)
        for j, ratio in enumerate(ratios):
            canvas.paste(images[(depth, ratio)], (left + j * (w + pad), top + i * (h + pad)))
    return canvas


def fig4(*results, out: str = "figs/fig4.png", log: bool = True):
    if not results:
        raise BrushworkError("fig4 needs one or more per-pair .json files written by train/gatys.py")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for path in results:
        try:
            record = json.loads(Path(path).read_text())
            losses = record["losses"]
        except (OSError, ValueError, KeyError) as e:
            raise BrushworkError(f"{path}: not a Gatys result JSON ({e})") from None
        ax.plot(range(1, len(losses) + 1), losses, label=record.get("name", Path(path).stem))
    ax.set_xlabel("evaluation (L-BFGS function evaluations)")
    ax.set_ylabel("total loss")
    if log:
        ax.set_yscale("log")
    ax.set_title("Total loss while rendering")
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(out).with_suffix(".tmp.png")
    fig.savefig(tmp)
    tmp.replace(out)
    plt.close(fig)
    print(f"fig4: {out}")


if __name__ == "__main__":
    sys.exit(cli.run({"fig3": fig3, "fig4": fig4}, help_text=__doc__))
