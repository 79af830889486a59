"""Applying a network to a folder (or shard split) of images: what translate and stylize share.

Ranks split the images (``accelerate launch``; contiguous shares, so a rank reads only its own shard
samples); images are decoded as they are needed and those of one size batched, so memory holds a
few batches, whatever the folder's size; outputs keep the
input's relative name (as .png) and are skipped on a rerun unless ``--overwrite``; unreadable
inputs are skipped with a line; the resolved config goes into the output folder; with
``--results_html`` an ``index.html`` shows input | output (| a second output) per image.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from brushwork.core import distributed, presets
from brushwork.core.errors import BrushworkError, ImageError
from brushwork.core.fileio import distinct_stems, inside
from brushwork.core.log import say
from brushwork.core.progress import Progress, print_line
from brushwork.data.images import load_image, save_image
from brushwork.data.stream import image_source, load_images, rank_share
from brushwork.evaluation import results_page
from brushwork.evaluation.ledger import Ledger, input_fingerprint, refuse_changes
from brushwork.evaluation.translate import stream_size_batches, test_scale
from brushwork.schemas.eval import RENDER
from brushwork.schemas.fields import fields_with_role

Forward = Callable[[list[Image.Image]], list[Image.Image]]
# The results page's own images (input copies, reconstructions) live in a hidden folder: every image
# reader skips hidden folders, so FID, the survey and a rerun never take them for outputs.
PAGE = ".page"
PAGE_INPUTS = f"{PAGE}/input"


def device_for(cfg) -> torch.device:
    """``--device``, checked against what this machine has; default: the process's accelerator device."""
    from accelerate import PartialState

    if not cfg.device:
        return PartialState(cpu=not torch.cuda.is_available()).device  # each rank its own GPU
    device = torch.device(cfg.device)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise BrushworkError(f"--device {cfg.device}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                             "leave --device out to use what there is")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise BrushworkError(f"--device {cfg.device}: no MPS device here; leave --device out")
    return device


def page_images(out: Path, column: str, paths: list[str], longer: int = 512) -> list[Path]:
    """Copies of ``paths`` (scaled to at most ``longer`` px) under ``out/.page/{column}/`` for the results page,
    so the page shows them wherever the originals are; an unreadable one is left out."""
    copies = []
    for path, stem in zip(paths, distinct_stems([Path(p).name for p in paths], ids=list(paths))):
        target = out / PAGE / column / f"{stem}.png"
        try:
            img = load_image(path)
        except ImageError as e:
            print_line(f"results page: {column} image left out ({e})")
            continue
        img.thumbnail((longer, longer))
        save_image(img, target)
        copies.append(target)
    return copies


def apply_folder(cfg, forward: Forward, used: str, *, domain: str, tool: str, title: str, weights: str,
                 second: tuple[str, Forward] | None = None, page_fixed: tuple[str, list[str]] | None = None) -> int:
    """Run ``forward`` (a batch of same-size images → results) over ``cfg.input`` into ``cfg.out``.

    ``weights``: the network's fingerprint (``ledger.network_fingerprint``), recorded with every output.
    ``second``: (name, function of the results) for an extra output saved under ``out/{name}/``
    (translate's reconstruction). ``page_fixed``: a results-page column that shows the same images in every
    row (stylize's style images), copied under ``out/.page/{name}/``. Returns the exit code; raises if no
    input could be read.
    """
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    everything = image_source(cfg.input, cfg.split, domain)  # names and where to read them: nothing decoded
    out = Path(cfg.out)
    items = rank_share(everything, state.process_index, state.num_processes)
    output = lambda it, sub=None: inside(out / sub if sub else out, it.name, "output name")
    settings = {"weights": weights, **{k: getattr(cfg, k) for k in fields_with_role(type(cfg), RENDER)}}
    ledger = Ledger(out, tool, settings, state.process_index)
    existing = [(it.name, input_fingerprint(it)) for it in everything if output(it).exists()]
    changed = ledger.changed(existing)  # the whole folder, the same on every rank: refused before any work
    if not cfg.overwrite:
        refuse_changes(out, changed)
    redo = {name for name, _ in changed}
    todo = [it for it in items if cfg.overwrite or it.name in redo or not output(it).exists()]
    if state.is_main_process:
        say(f"weights: {used}")
        out.mkdir(parents=True, exist_ok=True)
        presets.write_resolved(cfg, out, f"{tool}_config.toml")
        ledger.start()
    state.wait_for_everyone()  # the settings record exists before any rank records an output
    distributed.work_started()
    scale = cfg.test_scale()
    if cfg.results_html:  # outputs from an earlier run need their input on the page too
        todo_names = {it.name for it in todo}
        earlier = [it for it in items if it.name not in todo_names and not output(it, PAGE_INPUTS).exists()]
        for it, img in load_images(earlier, cfg.max_pixels):
            if not isinstance(img, ImageError):
                save_image(test_scale(img, scale, cfg.load_size), output(it, PAGE_INPUTS))
    done, failed = 0, 0

    def decoded():
        nonlocal failed
        for it, img in load_images(todo, cfg.max_pixels):
            if isinstance(img, ImageError):
                print_line(f"skipped: {img}")
                failed += 1
            else:
                yield it, test_scale(img, scale, cfg.load_size)

    with Progress(len(todo), desc=tool, unit="img", enabled=state.is_main_process) as progress:
        for group in stream_size_batches(decoded(), lambda pair: pair[1].size, cfg.batch_size):
            results = forward([img for _, img in group])
            extra = second[1](results) if second else [None] * len(group)
            for (it, img), result, more in zip(group, results, extra):
                save_image(result, output(it))
                ledger.add(it.name, input_fingerprint(it))
                if cfg.results_html:
                    save_image(img, output(it, PAGE_INPUTS))
                if more is not None:
                    save_image(more, output(it, f"{PAGE}/{second[0]}"))
            done += len(group)
            progress.update(len(group))
            del group, results, extra
    state.wait_for_everyone()  # rank 0's bar is closed before any rank prints its line
    who = f"rank {state.process_index}: " if state.num_processes > 1 else ""  # one process: no rank to name
    print_line(f"{who}{tool}: {done} image(s) into {out}"
               + (f", {len(items) - len(todo)} already there" if len(items) > len(todo) else "")
               + (f", {failed} unreadable" if failed else ""), sys.stdout)
    distributed.end_process_group()
    if cfg.results_html and state.is_main_process:
        columns = ("input", "output") + ((second[0],) if second else ()) + ((page_fixed[0],) if page_fixed else ())
        fixed = page_images(out, *page_fixed) if page_fixed else []
        rows = []
        for it in everything:
            if output(it).exists():
                row = {"name": it.name, "input": output(it, PAGE_INPUTS), "output": output(it)}
                if second:
                    row[second[0]] = output(it, f"{PAGE}/{second[0]}")
                if fixed:
                    row[page_fixed[0]] = fixed
                rows.append(row)
        page = results_page.write(out, rows, title, columns, note=f"weights: {used}")
        say(f"results page: {page} ({len(rows)} images)")
    if failed and not done and len(items) == len(todo):
        raise BrushworkError(f"none of the {failed} input image(s) could be read; see the lines above")
    return 0
