#!/usr/bin/env python3
"""Render many Gatys style-transfer pairs: batched per GPU (per-sample L-BFGS), split across processes.

  python train/gatys.py --content photos/ --style paintings/ --out renders/ --preset paper
  accelerate launch train/gatys.py --pairs pairs.jsonl --out renders/ --batch 8
  python train/gatys.py --content data_prep/samples/gatys/content --style data_prep/samples/gatys/style \\
      --random_vgg --size 128 --iterations 50        # no VGG weights at hand: a smoke run, not art

Pairs: the cross product of --content and --style (files or folders), or --pairs FILE (JSONL: one
{"content": ..., "style": ... or [...], "name": ..., per-pair overrides} per line; or CSV with a
header). Per pair overrides: content_weight, style_weight, tv_weight, content_layers, style_layers,
style_layer_weights, style_blend, init, iterations, size, seed, color.

Each pair writes OUT/{content}__{style}.png and a .json (parameters, loss at every evaluation,
timing). A rerun skips finished pairs. Pairs of equal output size are optimised together; each
keeps its own L-BFGS history and line search, so results equal rendering pairs one at a time.
Processes (accelerate launch) split the pairs. A pair whose image is unreadable fails alone; the
exit status is non-zero only if every pair failed.

Presets: configs/gatys/default.toml (conv4_2 content, beta 1e6, mean losses) and paper.toml (the
paper: avg pool, content conv_5, style conv_1..conv_5 at 1/5, alpha/beta 1e-7, paper losses).
VGG-19 weights come from the torch hub cache (vgg19-dcbb9e9d.pth) or --vgg_weights PATH.
"""

import sys
from pathlib import Path

import torch

from brushwork import cli, config, gatys_run
from brushwork.config import GatysConfig
from brushwork.errors import BrushworkError


def main(**flags):
    preset = flags.pop("preset", "default")
    cfg = config.load_config(GatysConfig, preset, flags, tool="gatys")
    pairs = gatys_run.read_pairs(cfg)
    from accelerate import PartialState
    from accelerate.utils import reduce
    from tqdm import tqdm

    state = PartialState(cpu=not torch.cuda.is_available())
    rank, world, device = state.process_index, state.num_processes, state.device
    out = Path(cfg.out)
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        config.write_resolved(cfg, out, "gatys_config.toml")
    if not 0 <= cfg.part < cfg.parts:
        raise BrushworkError(f"--part must be in 0..{cfg.parts - 1}, got {cfg.part}")
    pairs = pairs[cfg.part::cfg.parts]  # this array task's share, then each rank's share of it
    mine = pairs[rank::world]
    todo = [p for p in mine if not gatys_run.is_done(out, p)]
    failed, loaded = [], []
    for pair in todo:
        try:
            loaded.append(gatys_run.load_pair(pair, cfg.max_pixels))
        except BrushworkError as e:  # unreadable image or unusable size: this pair only
            failed.append((pair.name, str(e)))
            print(f"failed: {pair.name}: {e}", file=sys.stderr, flush=True)

    rendered = 0
    if loaded:
        if cfg.random_vgg and state.is_main_process:
            print("warning: random VGG-19 weights (--random_vgg): fine for tests, results are not artistic",
                  file=sys.stderr)
        with tqdm(total=len(loaded), unit="pair", desc=f"gatys rank {rank}", disable=None) as bar:
            rendered, batch_failed = gatys_run.render_all(
                loaded, cfg, out, device, rank, report=lambda line: print(line, file=sys.stderr, flush=True),
                progress_bar=bar)
        failed += batch_failed

    done_before = len(mine) - len(todo)
    counts = torch.tensor([rendered, done_before, len(failed)], device=device)
    total = reduce(counts, "sum").tolist() if world > 1 else counts.tolist()
    print(f"rank {rank}: rendered {rendered}, already done {done_before}, failed {len(failed)} "
          f"(of {len(mine)} pairs) -> {out}")
    if state.is_main_process and world > 1:
        print(f"all ranks: rendered {total[0]}, already done {total[1]}, failed {total[2]} of {len(pairs)} pairs")
    cli.end_distributed()
    if total[2] and total[0] + total[1] == 0:
        raise BrushworkError(f"every pair failed ({total[2]}); see the lines above")
    return 0


def help_text():
    return config.help_text(__doc__, GatysConfig, "gatys", "default",
                            "  --preset             default or paper (or a TOML path)")


if __name__ == "__main__":
    sys.exit(cli.run(main, help_text=help_text))
