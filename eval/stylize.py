#!/usr/bin/env python3
"""Stylise images with a trained fast-style network, at full resolution; optionally export it to ONNX.

  python eval/stylize.py runs/fast-starry_night --input photos/ --out starry/
  python eval/stylize.py runs/fast-wave+scream --input photos/ --out mixed/ --style_mix 0.3,0.7
  accelerate launch eval/stylize.py runs/fast-starry_night --input data/shards/monet2photo --domain B --out out/
  python eval/stylize.py runs/fast-starry_night/export/net.pth --input photos/ --out starry/ --onnx starry.onnx

RUN is a run dir of train/fast_style.py (its newest checkpoint, or --step N) or its export/net.pth;
the weights used are printed. A multi-style network paints with --style_index K, or blends the
styles with --style_mix (one weight per style, e.g. 0.3,0.7: their instance-norm parameters are
mixed). Images of one size are stylised together; ranks (accelerate launch) split them; output
names keep the input's relative path (as .png); existing outputs are skipped unless --overwrite;
--load_size scales first; --results_html writes OUT/index.html. OUT receives stylize_config.toml.

--onnx FILE also exports the network with the chosen style fixed (input "image" in [0, 1], N x 3 x H
x W, H and W multiples of 4, dynamic) and checks onnxruntime's output against torch's (within 1e-4)
on the first input image and on a second size.
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


def main(cfg: StylizeConfig) -> int:
    # the library (torch) is imported here, not at the top: --help and flag errors answer at once
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
