#!/usr/bin/env python3
"""Render many Gatys style-transfer pairs: batched per GPU (per-sample L-BFGS), split across processes.

  python train/gatys.py --content photos/ --style paintings/ --out renders/ --preset paper
  accelerate launch train/gatys.py --pairs pairs.jsonl --out renders/ --batch_size 8
  # no VGG weights at hand: a smoke run, not art
  python train/gatys.py --content data_prep/samples/gatys/content --style data_prep/samples/gatys/style --random_vgg --image_size 128 --iterations 50

Pairs: the cross product of --content and --style (files or folders), or --pairs FILE (JSONL: one
{"content": ..., "style": ... or [...], "name": ..., per-pair overrides} per line; or CSV with a
header). Per-pair overrides: content_weight, style_weight, tv_weight, content_layers, style_layers,
style_layer_weights, style_blend, init, iterations, size, seed, color. A pair's name must be a
plain file name: one with a path in it fails that pair alone, nothing is written outside --out.

Each pair writes OUT/{name}.png and a .json (the settings that made it, the loss at every
evaluation, timing). A rerun renders only the missing pairs; if finished pairs were made with other
settings it stops with a line saying which (--overwrite re-renders them), so OUT never holds images
its gatys_config.toml does not describe. Pairs of equal output size are optimised together; each
keeps its own L-BFGS history and line search, so results equal rendering pairs one at a time.
Processes (accelerate launch) split the pairs; one progress stream per job. A pair whose image is
unreadable fails alone; the exit status is non-zero only if every pair failed.

Presets: the defaults (conv4_2 content, beta 1e6, mean losses) and brushwork/presets/gatys/paper.toml (the
paper: avg pool, content conv_5, style conv_1..conv_5 at 1/5, alpha/beta 1e-7, paper losses).
VGG-19 weights come from the torch hub cache (python -m brushwork.pretrained vgg19) or --vgg_weights PATH.
"""

import sys
from pathlib import Path

from brushwork import cli
from brushwork.core import distributed, presets
from brushwork.core.errors import BrushworkError
from brushwork.core.progress import Progress, print_line
from brushwork.schemas.gatys import GatysConfig


def fail_line(name: str, reason: str) -> None:
    print_line(f"failed: {name}: {reason}")


def main(cfg: GatysConfig) -> int:
    # the library (torch) is imported here, not at the top: --help and flag errors answer at once
    import torch
    from accelerate import PartialState
    from accelerate.utils import reduce

    from brushwork.gatys import gatys_run

    pairs, refused = gatys_run.read_pairs(cfg)
    state = PartialState(cpu=not torch.cuda.is_available())
    rank, world, device = state.process_index, state.num_processes, state.device
    out = Path(cfg.out)
    pairs, refused = gatys_run.part_of(pairs, refused, cfg.part, cfg.parts)  # this array task's share, then each
    # rank's share of it; a refused pair is reported by the one task it belongs to
    todo_all = gatys_run.pairs_to_render(out, pairs, cfg.overwrite)
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        presets.write_resolved(cfg, out, "gatys_config.toml")
        for f in refused:
            fail_line(f.name, f.reason)
    todo_names = {p.name for p in todo_all}
    mine = pairs[rank::world]
    todo = [p for p in mine if p.name in todo_names]
    failed = list(refused) if state.is_main_process else []  # rank 0 reports the pairs refused for their name
    planned, headers = [], gatys_run.Headers(cfg.max_pixels)
    for pair in todo:  # sizes from image headers: pixels are decoded batch by batch while rendering
        try:
            planned.append(gatys_run.plan_pair(pair, headers))
        except BrushworkError as e:  # unreadable image or unusable size: this pair only
            failed.append(gatys_run.Failed(pair.name, str(e)))
            fail_line(pair.name, str(e))
    del headers

    distributed.work_started()
    rendered = 0
    if cfg.random_vgg and state.is_main_process and planned:
        print("warning: random VGG-19 weights (--random_vgg): fine for tests, results are not artistic",
              file=sys.stderr, flush=True)
    # one stream per job: rank 0 counts every rank's finished pairs (their JSON files in OUT)
    progress = Progress(len(todo_all), desc="gatys", unit="pair", enabled=state.is_main_process)
    finished = gatys_run.DoneCounter(out, todo_all) if state.is_main_process else (lambda: 0)
    with progress:
        rendered, batch_failed = gatys_run.render_all(
            planned, cfg, out, device, rank, report=print_line,
            on_batch=lambda n: progress.update(finished() - progress.done),
            on_eval=lambda n, loss: progress.update(0, f"evaluation {n}, loss {loss:.4g}"))
        failed += batch_failed
        state.wait_for_everyone()
        progress.update(finished() - progress.done)  # the job's last line counts the other ranks' pairs too
    # the ranks' summary lines wait in this reduce until rank 0 has closed its bar, so none lands on it
    done_before = len(mine) - len(todo)
    counts = torch.tensor([rendered, done_before, len(failed)], device=device)
    total = reduce(counts, "sum").tolist() if world > 1 else counts.tolist()
    share = len(mine) + (len(refused) if state.is_main_process else 0)
    who = f"rank {rank}: " if world > 1 else ""  # one process: no rank to name
    print_line(f"{who}rendered {rendered}, already done {done_before}, failed {len(failed)} "
               f"(of {share} pairs) -> {out}", sys.stdout)
    if state.is_main_process and world > 1:
        print_line(f"all ranks: rendered {total[0]}, already done {total[1]}, failed {total[2]} of "
                   f"{len(pairs) + len(refused)} pairs", sys.stdout)
    distributed.end_process_group()
    if total[2] and total[0] + total[1] == 0:
        raise BrushworkError(f"every pair failed ({total[2]}); see the lines above")
    return 0


COMMAND = cli.Command(GatysConfig, main, __doc__, presets="gatys", default_preset="default")

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
