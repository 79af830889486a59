"""The paper's Gatys figures behind eval/gatys_figures.py: Fig. 3 (a batched sweep, assembled) and Fig. 4."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from brushwork.core import presets
from brushwork.core.errors import BrushworkError
from brushwork.core.fileio import atomic_write_text, out_file, save_figure
from brushwork.core.log import say
from brushwork.data.images import load_image, save_image
from brushwork.evaluation.grids import caption_font, fit_text
from brushwork.gatys import gatys_run
from brushwork.schemas.gatys import Fig3Config, Fig4Config, GatysConfig, GatysSettings


def fig3(cfg: Fig3Config) -> int:
    if not cfg.content or not cfg.style:
        raise BrushworkError("fig3 needs --content IMAGE and --style IMAGE")
    out = Path(cfg.out)
    cells_dir = out / "cells"
    lines, cells = [], {}
    for depth in cfg.depths:
        layers = [f"conv_{i}" for i in range(1, depth + 1)]
        for ratio in cfg.ratios:
            name = f"depth{depth}_ratio{ratio:g}"
            cells[(depth, ratio)] = name
            lines.append(json.dumps({"content": str(Path(cfg.content).resolve()),
                                     "style": str(Path(cfg.style).resolve()), "name": name,
                                     "content_weight": 1.0, "style_weight": 1.0 / ratio,
                                     "style_layers": layers, "style_layer_weights": [1.0 / depth] * depth}))
    pairs_file = out / "fig3_pairs.jsonl"
    atomic_write_text(pairs_file, "\n".join(lines) + "\n")
    shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(GatysSettings)}
    run = GatysConfig(**{**shared, "batch_size": max(cfg.batch_size, len(lines))}, pairs=str(pairs_file),
                      out=str(cells_dir), overwrite=cfg.overwrite)
    pairs, _ = gatys_run.read_pairs(run)  # the cells' names are ours: none is refused
    todo = gatys_run.pairs_to_render(cells_dir, pairs, cfg.overwrite)
    if todo:
        headers = gatys_run.Headers(cfg.max_pixels)
        planned = [gatys_run.plan_pair(p, headers) for p in todo]
        device = "cuda" if torch.cuda.is_available() else "cpu"
        _, failed = gatys_run.render_all(planned, run, cells_dir, device)
        if failed:
            raise BrushworkError(f"{len(failed)} cell(s) failed: {failed[0].reason}")
    presets.write_resolved(cfg, out, "fig3_config.toml")
    grid = assemble(cells_dir, cells, cfg.ratios, cfg.depths, load_image(cfg.content), load_image(cfg.style))
    save_image(grid, out / "fig3.png")
    say(f"fig3: {out / 'fig3.png'} ({len(cfg.depths)} layer sets x {len(cfg.ratios)} ratios, "
          f"{len(todo)} rendered in one batch, cells in {cells_dir})")
    return 0


def assemble(cells_dir: Path, cells: dict, ratios, depths, content: Image.Image, style: Image.Image) -> Image.Image:
    """Header row (content, style), then one row per layer set, one column per ratio, all labelled."""
    images = {k: Image.open(cells_dir / f"{v}.png").convert("RGB") for k, v in cells.items()}
    w, h = next(iter(images.values())).size
    font = caption_font(max(10, min(w, h) // 12))
    pad, label_h = 4, font.size + 8
    left = max(font.getbbox(f"conv_1..conv_{max(depths)}")[2] + 12, 90)
    header = label_h + h + pad  # the inputs, then the ratio labels
    canvas = Image.new("RGB", (left + len(ratios) * (w + pad), header + label_h + len(depths) * (h + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, (img, label) in enumerate(((content, "content"), (style, "style"))):
        thumb = img.copy()
        thumb.thumbnail((w, h), Image.Resampling.LANCZOS)
        x = left + j * (w + pad)
        draw.text((x + 2, 2), fit_text(label, font, w), fill="black", font=font)
        canvas.paste(thumb, (x + (w - thumb.width) // 2, label_h + (h - thumb.height) // 2))
    draw.text((4, header + 2), "alpha/beta", fill="black", font=font)
    for j, ratio in enumerate(ratios):
        draw.text((left + j * (w + pad) + 2, header + 2), f"{ratio:g}", fill="black", font=font)
    top = header + label_h
    for i, depth in enumerate(depths):
        draw.text((4, top + i * (h + pad) + h // 2 - font.size // 2), f"conv_1..conv_{depth}", fill="black", font=font)
        for j, ratio in enumerate(ratios):
            canvas.paste(images[(depth, ratio)], (left + j * (w + pad), top + i * (h + pad)))
    return canvas


def fig4(cfg: Fig4Config) -> int:
    if not cfg.results:
        raise BrushworkError("fig4 needs one or more per-pair .json files written by train/gatys.py")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for path in cfg.results:
        try:
            record = json.loads(Path(path).read_text())
            losses = [float(v) for v in record["losses"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise BrushworkError(f"{path}: not a Gatys result JSON ({type(e).__name__}: {e})") from None
        ax.plot(range(1, len(losses) + 1), losses, label=record.get("name", Path(path).stem))
    ax.set_xlabel("evaluation (L-BFGS function evaluations)")
    ax.set_ylabel("total loss")
    if cfg.log:
        ax.set_yscale("log")
    ax.set_title("Total loss while rendering")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_file(cfg.out, "fig4.png")
    save_figure(fig, path)
    plt.close(fig)
    presets.write_resolved(cfg, path.parent, f"{path.stem}_config.toml")
    say(f"fig4: {path}")
    return 0
