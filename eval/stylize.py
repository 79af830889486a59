#!/usr/bin/env python3
"""Stylise images with a trained fast-style network or AdaIN model, at full resolution; optionally export to ONNX.

  python eval/stylize.py runs/fast-starry_night --input photos/ --out starry/
  python eval/stylize.py runs/fast-wave+scream --input photos/ --out mixed/ --style_mix 0.3,0.7
  python eval/stylize.py runs/adain --input photos/ --style any_painting.jpg --out out/        # any style
  python eval/stylize.py runs/adain --input photos/ --style a.jpg,b.jpg --style_weights 0.7,0.3 --alpha 0.8 --out o/
  accelerate launch eval/stylize.py runs/fast-starry_night --input data/shards/monet2photo --domain B --out out/
  python eval/stylize.py runs/fast-starry_night/export/net.pth --input photos/ --out starry/ --onnx starry.onnx

RUN is a run dir of train/fast_style.py or train/adain.py (its newest checkpoint, or --step N), a fast-style
export/net.pth or an AdaIN export/ folder; the model's kind comes from the registry, and the weights used are
printed. A multi-style fast-style network paints with --style_index K, or blends the styles with --style_mix
(one weight per style, e.g. 0.3,0.7: their instance-norm parameters are mixed). An AdaIN model paints with any
--style image (its shorter side scaled to --style_size first), interpolates several with --style_weights,
trades content for style with --alpha (0: the photo through the decoder, 1: full style) and keeps the photo's
colours with --preserve_color. Images of one size are stylised together; ranks (accelerate launch) split them;
output names keep the input's relative path (as .png); existing outputs are skipped unless --overwrite;
--load_size scales first; --results_html writes OUT/index.html (with the style column). OUT receives
stylize_config.toml.

--onnx FILE also exports the model and checks onnxruntime's output against torch's (within 1e-4) at two sizes:
a fast-style network with the chosen style fixed (input "image", H and W multiples of 4), or the AdaIN model with
--alpha fixed (inputs "content" and "style", any sizes). Both take float32 NCHW RGB in [0, 1] and give [0, 1].
"""

from __future__ import annotations

import sys
from functools import partial
from typing import TYPE_CHECKING

from brushwork import cli
from brushwork.core.errors import BrushworkError
from brushwork.schemas.eval import StylizeConfig

if TYPE_CHECKING:
    import torch


def style_weights(cfg: StylizeConfig, n_styles: int, names: list[str]) -> tuple[torch.Tensor, str]:
    import torch

    if cfg.style_mix:
        if len(cfg.style_mix) != n_styles:
            raise BrushworkError(f"--style_mix has {len(cfg.style_mix)} weights but the network has {n_styles} "
                                 f"style(s) ({', '.join(names)})")
        weights = torch.tensor(cfg.style_mix, dtype=torch.float32)
        return weights / weights.sum(), "mix " + ", ".join(f"{n} {w:g}" for n, w in zip(names, cfg.style_mix))
    if cfg.style_index >= n_styles:
        raise BrushworkError(f"--style_index {cfg.style_index}: the network has {n_styles} style(s) "
                             f"({', '.join(names)}): use 0..{n_styles - 1}")
    return torch.nn.functional.one_hot(torch.tensor(cfg.style_index), n_styles).float(), names[cfg.style_index]


def stylize(net, weights: torch.Tensor, images, device) -> list:
    import torch

    from brushwork.data.images import from_unit_tensor, to_unit_tensor
    from brushwork.evaluation.translate import pad_for_network

    with torch.no_grad():
        x = torch.stack([to_unit_tensor(img) for img in images]).to(device)
        padded, (h, w) = pad_for_network(x)
        y = net(padded, weights.to(device).expand(len(images), -1))[..., :h, :w]
    return [from_unit_tensor(t) for t in y]


def model_kind(run: str) -> str:
    """fast_style or adain: what the registry says of a run dir, else what the files are."""
    from pathlib import Path

    from brushwork.models import registry

    path = Path(run)
    folder = path.parent if path.is_file() else path
    if (folder / "encoder.pth").is_file() and (folder / "decoder.pth").is_file():
        return "adain"
    kind = registry.recorded_kind(path) if path.is_dir() else None
    if kind not in (None, "fast_style", "adain"):
        registry.expect(run, "fast_style", kind)  # a CycleGAN run: one line naming its tool
    return kind or "fast_style"


def stylize_adain(net, styles: list, weights: list[float], cfg: StylizeConfig, images, device) -> list:
    import torch

    from brushwork.data.images import from_unit_tensor, to_unit_tensor
    from brushwork.gatys.objective import match_histogram

    with torch.no_grad():
        x = torch.stack([to_unit_tensor(img) for img in images]).to(device)
        if cfg.preserve_color:  # each photo gets the styles recoloured to its own colours
            y = torch.cat([net.stylize(x[i:i + 1], [match_histogram(s, x[i:i + 1]) for s in styles], weights,
                                       cfg.alpha) for i in range(len(x))])
        else:
            y = net.stylize(x, styles, weights, cfg.alpha)
    return [from_unit_tensor(t) for t in y]


def main_adain(cfg: StylizeConfig) -> int:
    import torch
    from accelerate import PartialState

    from brushwork.evaluation.apply import apply_folder, device_for
    from brushwork.evaluation.ledger import network_fingerprint
    from brushwork.training.adain import export_onnx, load_model, load_styles

    if cfg.style_mix or cfg.style_index:
        raise BrushworkError(f"{cfg.run} is an AdaIN model: it paints any --style image (several with "
                             "--style_weights); --style_index and --style_mix are for fast-style networks")
    net, used = load_model(cfg.run, cfg.step)
    if cfg.onnx and PartialState(cpu=not torch.cuda.is_available()).is_main_process:
        worst = export_onnx(net, cfg.onnx, cfg.alpha)
        print(f"onnx: {cfg.onnx} (inputs content and style; onnxruntime matches torch within {worst:.1e} at two "
              "sizes)", flush=True)
    if not cfg.style:
        raise BrushworkError("an AdaIN model paints with any style image: give --style IMAGE[,IMAGE...]")
    device = device_for(cfg)
    net = net.to(device)
    styles, digest = load_styles(cfg.style, cfg.style_size)
    styles = [s.to(device) for s in styles]
    weights = [w / sum(cfg.style_weights) for w in cfg.style_weights] if cfg.style_weights else None
    shown = ", ".join(f"{p} {w:g}" for p, w in zip(cfg.style, weights)) if weights else ", ".join(cfg.style)
    used = f"{used}; style: {shown}; alpha {cfg.alpha:g}" + ("; colours kept" if cfg.preserve_color else "")
    page = [p for i, p in enumerate(cfg.style) if not weights or weights[i] > 0]
    return apply_folder(cfg, partial(stylize_adain, net, styles, weights, cfg, device=device), used,
                        domain=cfg.domain, tool="stylize", title=f"{cfg.run}: {shown}",
                        weights=f"{network_fingerprint(net)}:{digest}", page_fixed=("style", page))


def main(cfg: StylizeConfig) -> int:
    # the library (torch) is imported here, not at the top: --help and flag errors answer at once
    if model_kind(cfg.run) == "adain":
        return main_adain(cfg)
    if cfg.style or cfg.style_weights or cfg.preserve_color or cfg.alpha != 1.0:
        raise BrushworkError(f"{cfg.run} is a fast-style network: it paints the styles it was trained on "
                             "(--style_index, --style_mix); --style, --style_weights, --alpha and --preserve_color "
                             "are for AdaIN models (train/adain.py)")
    import torch
    from accelerate import PartialState

    from brushwork.evaluation.apply import apply_folder, device_for
    from brushwork.evaluation.ledger import network_fingerprint
    from brushwork.training.fast_style import export_onnx, load_stylizer, style_paths_of

    net, used, names = load_stylizer(cfg.run, cfg.step)
    weights, style = style_weights(cfg, net.n_styles, names)
    used = f"{used}; style: {style}"
    if cfg.onnx and PartialState(cpu=not torch.cuda.is_available()).is_main_process:
        # checked on a fixed image, not the first input: an odd or unreadable photo must not fail the export
        check = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
        worst = export_onnx(net, weights, cfg.onnx, check)
        print(f"onnx: {cfg.onnx} (onnxruntime matches torch within {worst:.1e} at two image sizes)", flush=True)
    device = device_for(cfg)
    net = net.to(device)
    paths = style_paths_of(cfg.run)  # the results page shows the style images used (those with weight)
    shown = [p for p, w in zip(paths, weights.tolist()) if w > 0] if len(paths) == net.n_styles else []
    return apply_folder(cfg, partial(stylize, net, weights, device=device), used, domain=cfg.domain, tool="stylize",
                        title=f"{cfg.run}: {style}", weights=network_fingerprint(net),
                        page_fixed=("style", shown) if shown else None)


COMMAND = cli.Command(StylizeConfig, main, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
