"""The batched Gatys runner's parts: pairs, per-pair overrides, size buckets, rendering one batch.

A pair is one content image and one or more style images (blended), with the run's settings plus
its own overrides. Pairs of equal output size and optimiser settings form batches; each batch is
one ``batched_lbfgs`` (or Adam) run whose samples are independent, so its results equal rendering
the pairs one at a time (exactly in float64; in float32 rounding can part the two after a few
evaluations, by a few grey levels).

A pairs file is input from someone else: a pair's ``name`` becomes a file name only through
``fileio.safe_name``, so an unsafe one fails that pair alone and nothing is written outside
``--out``. Each render's JSON records the settings that shaped it (``RENDER_KEYS``); a rerun
renders only pairs without a result, and refuses (unless ``--overwrite``) when a finished pair was
made with other settings or from other input files (their paths, sizes and mtimes are recorded
too), so the folder never holds images its config does not describe.
"""

from __future__ import annotations

import csv
import json
import os
import time
import zlib
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from brushwork.core import config
from brushwork.core.errors import BrushworkError, ConfigError, ImageError
from brushwork.core.fileio import MAX_NAME_BYTES, atomic_write_text, distinct_stems, fit_name, safe_name
from brushwork.data.images import (
    cover_crop,
    find_images,
    from_unit_tensor,
    image_size,
    load_image,
    resized_unit_tensor,
    save_image,
)
from brushwork.gatys import objective as gatys
from brushwork.gatys import optim
from brushwork.models.vgg import VGGFeatures, layer_index, layer_names
from brushwork.schemas.fields import spellings_of
from brushwork.schemas.gatys import PAIR_KEYS, RENDER_KEYS, GatysConfig


@dataclass(frozen=True)
class Pair:
    content: str
    styles: tuple[str, ...]
    name: str
    cfg: GatysConfig


@dataclass(frozen=True)
class Failed:
    """A pair that cannot be rendered, and why (one line)."""

    name: str
    reason: str
    order: int = -1  # its place among all pairs (a job array task reports only its own)


def _stem(path: str) -> str:
    return Path(path).stem


def _pair(content: str, styles: tuple[str, ...], cfg: GatysConfig, name: str = "") -> Pair:
    return Pair(content, styles, name or f"{_stem(content)}__{'+'.join(_stem(s) for s in styles)}", cfg)


def _cross_pairs(cfg: GatysConfig) -> list[Pair]:
    """Every content with every style, or with the blend of ``--style a.jpg,b.jpg`` (one render per content).

    Names come from stems; files whose stems collide (a.jpg, a.png) are told apart as the eval tools do,
    and two long stems together are cut to one file name.
    """
    contents = [str(p) for p in find_images(cfg.content, unreadable=True)]
    blend = blended_styles(cfg.style)
    if blend:
        groups = {tuple(blend): "+".join(_stem(s) for s in blend)}
    else:
        styles = [str(p) for p in find_images(cfg.style, unreadable=True)]
        groups = {(s,): name for s, name in zip(styles, distinct_stems([Path(s).name for s in styles], ids=styles))}
    if not contents or not groups:
        raise BrushworkError(f"no images in {cfg.content if not contents else cfg.style}")
    check_weights(cfg, len(next(iter(groups))), "--style" if blend else "flags")
    label = dict(zip(contents, distinct_stems([Path(c).name for c in contents], ids=contents)))
    room = MAX_NAME_BYTES - len(".png")
    return [_pair(c, styles, cfg, fit_name(f"{label[c]}__{name}", room, "\n".join((c, *styles))))
            for c in contents for styles, name in groups.items()]


def read_pairs(cfg: GatysConfig) -> tuple[list[Pair], list[Failed]]:
    """(pairs, pairs refused for their name) from --pairs (JSONL/CSV, with overrides) or --content x --style."""
    if cfg.pairs:
        pairs = _pairs_file(Path(cfg.pairs), cfg)
    elif cfg.content and cfg.style:
        pairs = _cross_pairs(cfg)
    else:
        raise BrushworkError("give --content and --style (files or folders), or --pairs FILE")
    counts = Counter(p.name for p in pairs)
    dupes = sorted(n for n, k in counts.items() if k > 1)
    if dupes:
        raise BrushworkError(f"several pairs would write {dupes[0]}.png; give them distinct 'name' fields")
    good, failed = [], []
    for order, pair in enumerate(pairs):
        try:
            safe_name(pair.name, "pair name")
            good.append(pair)
        except BrushworkError as e:
            failed.append(Failed(pair.name, str(e), order))
    return good, failed


def part_of(pairs: list[Pair], refused: list[Failed], part: int, parts: int) -> tuple[list[Pair], list[Failed]]:
    """Job array task ``part``'s pairs: every ``parts``-th of all pairs by their place in the list, refused
    ones included, so each pair (and each refusal line) belongs to exactly one task."""
    if parts == 1:
        return pairs, refused
    refused_at, rest = {f.order: f for f in refused}, iter(pairs)  # good pairs keep their order between them
    merged = [refused_at[i] if i in refused_at else next(rest) for i in range(len(pairs) + len(refused))]
    mine = merged[part::parts]
    return [p for p in mine if isinstance(p, Pair)], [f for f in mine if isinstance(f, Failed)]


def _rows(path: Path):
    """(line number, row) of a JSONL or CSV pairs file, read line by line (a million pairs stream)."""
    def lines(f):
        for line in f:
            if "\x00" in line:
                raise BrushworkError(f"--pairs {path}: not a text file (JSONL or CSV expected)")
            yield line

    try:
        with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: Excel's "CSV UTF-8" starts with a BOM
            if path.suffix.lower() == ".csv":
                try:
                    for i, row in enumerate(csv.DictReader(lines(f))):
                        yield i + 2, row
                except csv.Error as e:
                    raise BrushworkError(f"--pairs {path}: not valid CSV ({e})") from None
                return
            for i, line in enumerate(lines(f), 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    try:
                        yield i, json.loads(line)
                    except json.JSONDecodeError as e:
                        raise BrushworkError(f"{path}:{i}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise BrushworkError(f"--pairs {path}: not a text file (JSONL or CSV expected)") from None
    except OSError as e:
        raise BrushworkError(f"--pairs {path}: cannot read ({e.strerror})") from None


def _pairs_file(path: Path, cfg: GatysConfig) -> list[Pair]:
    """The pairs of a file; rows with equal overrides share one config, paths are resolved once each."""
    configs: dict[str, GatysConfig] = {}
    resolved: dict[str, str] = {}
    # a pairs file written for an earlier version ("size") still reads
    renamed = spellings_of(GatysConfig, renamed_only=True)

    def resolve(p: str) -> str:
        if p not in resolved:
            resolved[p] = str(p if Path(p).is_absolute() or Path(p).exists() else path.parent / p)
        return resolved[p]

    pairs = []
    for line, row in _rows(path):
        where = f"{path}:{line}"
        if not isinstance(row, dict) or not row.get("content") or not row.get("style"):
            raise BrushworkError(f"{where}: each pair needs 'content' and 'style'")
        text = str(row["style"])
        # "a.jpg+b.jpg" blends two styles, unless the whole text is one file (a name with a "+" in it)
        styles = row["style"] if isinstance(row["style"], list) else \
            [text] if Path(resolve(text)).is_file() else text.split("+")
        overrides = {renamed.get(k, k): v for k, v in row.items()
                     if k not in ("content", "style", "name") and v not in ("", None)}
        if "init_image" in overrides:
            overrides["init_image"] = resolve(str(overrides["init_image"]))
        unknown = sorted(set(overrides) - set(PAIR_KEYS))
        if unknown:
            raise ConfigError(f"{where}: {unknown[0]!r} cannot be set per pair; per-pair keys: {', '.join(PAIR_KEYS)}")
        if "style_layers" in overrides and "style_layer_weights" not in overrides:
            overrides["style_layer_weights"] = ()  # new layers, inherited weights would not fit: equal
        key = json.dumps(overrides, sort_keys=True, default=str)
        if key not in configs:
            configs[key] = config.build(GatysConfig, overrides, source=where, base=cfg)
        check_weights(configs[key], len(styles), where)
        pairs.append(_pair(resolve(str(row["content"])), tuple(resolve(str(s)) for s in styles), configs[key],
                           str(row.get("name", ""))))
    if not pairs:
        raise BrushworkError(f"{path}: no pairs in the file")
    return pairs


def blended_styles(style: str) -> list[str]:
    """The style files of ``--style a.jpg,b.jpg`` (several, blended in one render), or [] when ``style`` is one
    file or folder (a path that exists is never split, commas in its name included)."""
    if "," not in style or Path(style).exists():
        return []
    parts = [p.strip() for p in style.split(",") if p.strip()]
    missing = [p for p in parts if not Path(p).is_file()]
    if missing:
        raise ConfigError(f"--style {style}: {missing[0]} is not a file (several styles to blend are files, "
                          "separated by commas)")
    return parts


def check_weights(cfg: GatysConfig, n_styles: int, where: str) -> None:
    """A pair's blend weights must match its style images (the config checks the layer weights itself)."""
    if cfg.style_blend and len(cfg.style_blend) != n_styles:
        raise ConfigError(f"{where}: {n_styles} style image(s) but {len(cfg.style_blend)} style_blend weights")


def output_paths(out: str | Path, pair: Pair) -> tuple[Path, Path]:
    name = safe_name(pair.name, "pair name")
    return Path(out) / f"{name}.png", Path(out) / f"{name}.json"


def render_params(cfg: GatysConfig) -> dict:
    """The settings that shape a render's pixels, as its JSON records them."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in ((k, getattr(cfg, k)) for k in RENDER_KEYS)}


def finished_record(out: str | Path, pair: Pair) -> dict | None:
    """The JSON of a finished render of ``pair`` (with its ``params``); None if it is not finished (or unreadable)."""
    png, meta = output_paths(out, pair)
    if not png.exists():
        return None
    try:
        record = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None  # no JSON (killed between image and record) or a damaged one: render again
    return record if isinstance(record, dict) and isinstance(record.get("params"), dict) else None


def is_done(out: str | Path, pair: Pair) -> bool:
    return finished_record(out, pair) is not None


def pairs_to_render(out: str | Path, pairs: list[Pair], overwrite: bool) -> list[Pair]:
    """The pairs without a result, plus (with ``overwrite``) those made with other settings.

    Without ``overwrite``, finished pairs with other settings are one BrushworkError: the folder
    must not end up holding images its config does not describe.
    """
    changed = changed_settings(out, pairs)
    if changed and not overwrite:
        pair, diff = changed[0]
        raise BrushworkError(f"{out} holds {len(changed)} render(s) made with other settings or inputs "
                             f"(e.g. {pair.name}: "
                             f"{diff}); --overwrite re-renders them, or choose another --out")
    redo = {p.name for p, _ in changed}
    return [p for p in pairs if p.name in redo or not is_done(out, p)]


class DoneCounter:
    """How many of ``pairs`` have a finished render in ``out``: one folder listing per call.

    Rank 0 counts every rank's finished pairs for the job's one progress stream; a listing costs
    the same whatever the number of pairs, where opening each pair's JSON would not.
    """

    def __init__(self, out: str | Path, pairs: list[Pair]):
        self.out = Path(out)
        self.wanted = {output_paths(out, p)[1].name for p in pairs}

    def __call__(self) -> int:
        try:
            with os.scandir(self.out) as entries:
                return sum(1 for e in entries if e.name in self.wanted)
        except FileNotFoundError:
            return 0


def input_record(pair: Pair) -> list[list[str]]:
    """[real path, size:mtime] of the content and each style: what says an input is another or changed."""
    record = []
    for path in (pair.content, *pair.styles, *((pair.cfg.init_image,) if pair.cfg.init_image else ())):
        try:
            st = os.stat(path)
            record.append([os.path.realpath(path), f"{st.st_size}:{st.st_mtime_ns}"])
        except OSError:
            record.append([os.path.realpath(path), "unreadable"])
    return record


def changed_settings(out: str | Path, pairs: list[Pair]) -> list[tuple[Pair, str]]:
    """Finished pairs whose recorded settings or inputs differ from this run's, with the first difference."""
    changed = []
    for pair in pairs:
        record = finished_record(out, pair)
        if record is None:
            continue
        old, new = record["params"], render_params(pair.cfg)
        diffs = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in new.items() if old.get(k) != v]
        then, now = record.get("inputs"), input_record(pair)
        if isinstance(then, list):  # renders of an earlier version recorded no inputs: trusted as they are
            was = [w if isinstance(w, list) and len(w) == 2 else [None, None] for w in then]
            if len(was) != len(now):  # a style added or dropped under the same pair name
                diffs.append(f"inputs {', '.join(map(str, (w[0] for w in was)))} -> {', '.join(p for p, _ in now)}")
            for (old_path, old_stamp), (path, stamp) in zip(was, now):
                if old_path != path:
                    diffs.append(f"input {old_path} -> {path}")
                elif old_stamp != stamp:
                    diffs.append(f"input {path} changed since")
        if diffs:
            changed.append((pair, diffs[0]))
    return changed


def scale_sizes(cfg: GatysConfig) -> tuple[int, ...]:
    return tuple(cfg.multiscale) if cfg.multiscale else (cfg.image_size,)


def fit(width: int, height: int, longer: int) -> tuple[int, int]:
    """(H, W) with the longer side = ``longer``, aspect kept."""
    scale = longer / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass(frozen=True)
class Planned:
    """A pair with its content's size (from the image header): all a plan holds per pair."""

    pair: Pair
    width: int
    height: int

    def output_hw(self, longer: int) -> tuple[int, int]:
        return fit(self.width, self.height, longer)


def min_side(layers) -> int:
    """Smallest image side that still leaves at least one pixel at the deepest layer."""
    deepest = max(layer_index(l) for l in layers)
    pools = sum(1 for i, names in enumerate(layer_names()) if i < deepest and names[0].startswith("pool"))
    return 2 ** pools


class Headers:
    """Image sizes from headers, read once per path (thousands of pairs share a few hundred images)."""

    def __init__(self, max_pixels: int):
        self.max_pixels = max_pixels
        self.sizes: dict[str, tuple[int, int] | str] = {}

    def size(self, path: str) -> tuple[int, int]:
        if path not in self.sizes:
            try:
                self.sizes[path] = image_size(path, self.max_pixels)
            except ImageError as e:
                self.sizes[path] = str(e)
        found = self.sizes[path]
        if isinstance(found, str):
            raise ImageError(found)
        return found


def plan_pair(pair: Pair, headers: Headers) -> Planned:
    """A pair's plan from its images' headers; the error names the file or the size that is wrong.

    Nothing is decoded here: pixels are read right before the pair's batch renders.
    """
    width, height = headers.size(pair.content)
    for path in (*pair.styles, *((pair.cfg.init_image,) if pair.cfg.init_image else ())):
        headers.size(path)
    planned = Planned(pair, width, height)
    layers = (*pair.cfg.content_layers, *pair.cfg.style_layers)
    need = min_side(layers)
    for longer in scale_sizes(pair.cfg):
        h, w = planned.output_hw(longer)
        if min(h, w) < need:
            raise BrushworkError(f"{pair.content}: output {w}x{h} is too small for layers {', '.join(layers)} "
                                 f"(each side needs at least {need} px); use a larger --image_size")
        sh, sw = style_hw((h, w), pair.cfg.style_scale)
        if min(sh, sw) < min_side(pair.cfg.style_layers):
            raise BrushworkError(f"{pair.content}: style images at {sw}x{sh} (--style_scale {pair.cfg.style_scale:g})"
                                 f" are too small for layers {', '.join(pair.cfg.style_layers)}; raise --style_scale")
    return planned


def style_hw(hw: tuple[int, int], style_scale: float) -> tuple[int, int]:
    """The size style images are cut to: the output's, times --style_scale."""
    return max(1, round(hw[0] * style_scale)), max(1, round(hw[1] * style_scale))


class ImageCache:
    """Decoded inputs at the sizes they are used, least recently used out past ``budget`` bytes.

    Keyed by (path, how, H, W): ``how`` is "fit" (a content, resized to the output) or "cover" (a
    style, resized to cover it and centre-cropped). A full-resolution image lives only while its
    sizes are cut from it, so a rank holds one decoded photo at a time however many pairs it has,
    and an image shared by many pairs is decoded once per size. A file that cannot be decoded is
    remembered as its error line.
    """

    def __init__(self, max_pixels: int, budget: int = 256 << 20):
        self.max_pixels, self.budget = max_pixels, budget
        self.entries: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.errors: dict[str, str] = {}
        self.bytes = self.decodes = 0

    def get(self, path: str, how: str, sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        """(1, 3, H, W) tensors in [0, 1] of ``path`` at each size; decodes at most once per call."""
        keys = [(path, how, *hw) for hw in sizes]
        found = {}
        for key in keys:
            if key in self.entries:
                self.entries.move_to_end(key)
                found[key] = self.entries[key]
        missing = [k for k in keys if k not in found]
        if missing:
            if path in self.errors:
                raise ImageError(self.errors[path])
            try:
                img = load_image(path, self.max_pixels)
            except ImageError as e:
                self.errors[path] = str(e)
                raise
            self.decodes += 1
            for key in missing:  # kept for this call even if the budget evicts them from the cache at once
                hw = key[2:]
                found[key] = resized_unit_tensor(img, hw) if how == "fit" else cover_crop(img, hw)
                self._put(key, found[key])
            del img
        return [found[k] for k in keys]

    def _put(self, key: tuple, tensor: torch.Tensor) -> None:
        self.entries[key] = tensor
        self.bytes += tensor.numel() * tensor.element_size()
        while self.bytes > self.budget and len(self.entries) > 1:
            _, old = self.entries.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()


@dataclass
class Prepared:
    """A pair of the batch about to render, with its images at every scale's output size."""

    pair: Pair
    hws: list[tuple[int, int]]
    contents: list[torch.Tensor]            # per scale: (1, 3, H, W)
    styles: list[list[torch.Tensor]]        # per scale: one (1, 3, h, w) per style image (the output x style_scale)
    inits: list[torch.Tensor] | None = None  # per scale: the --init_image at the output size


def prepare(planned: Planned, images: ImageCache) -> Prepared:
    """Decode (or take from the cache) a planned pair's images; ImageError names the file."""
    pair = planned.pair
    hws = [planned.output_hw(longer) for longer in scale_sizes(pair.cfg)]
    contents = images.get(pair.content, "fit", hws)
    per_style = [images.get(s, "cover", [style_hw(hw, pair.cfg.style_scale) for hw in hws]) for s in pair.styles]
    inits = images.get(pair.cfg.init_image, "fit", hws) if pair.cfg.init_image else None
    return Prepared(pair, hws, contents, [[st[i] for st in per_style] for i in range(len(hws))], inits)


def bucket_key(item: Planned) -> tuple:
    return (item.output_hw(scale_sizes(item.pair.cfg)[-1]), item.pair.cfg.iterations)


def buckets(items: list[Planned], batch: int) -> list[list[Planned]]:
    """Equal output size and iteration count in each batch, at most ``batch`` pairs."""
    groups: dict = {}
    for item in items:
        groups.setdefault(bucket_key(item), []).append(item)
    return [g[i:i + batch] for g in groups.values() for i in range(0, len(g), batch)]


def layer_union(items) -> tuple[list[str], list[str]]:
    """(content layers, style layers) used by any pair of ``items``, each in first-use order."""
    content = list(dict.fromkeys(l for it in items for l in it.pair.cfg.content_layers))
    style = list(dict.fromkeys(l for it in items for l in it.pair.cfg.style_layers))
    return content, style


def build_targets(vgg: VGGFeatures, items: list[Prepared], scale: int, content_layers: list[str],
                  style_layers: list[str], device, dtype) -> tuple[gatys.Targets, torch.Tensor]:
    """Per-pair targets and weights at scale ``scale``; also returns the content images (B, 3, H, W)."""
    contents, content_feats, style_grams = [], [], []
    cw, sw = [], []
    for it in items:
        c = it.pair.cfg
        content = it.contents[scale].to(device, dtype)
        styles = [s.to(device, dtype) for s in it.styles[scale]]
        if c.color == "histogram":
            styles = [gatys.match_histogram(s, content) for s in styles]
        blend = list(c.style_blend) if c.style_blend else [1.0 / len(styles)] * len(styles)
        contents.append(content)
        content_feats.append(gatys.content_targets(vgg, content, content_layers))
        style_grams.append(gatys.style_targets(vgg, styles, blend, style_layers, c.normalization))
        cw.append([1.0 if l in c.content_layers else 0.0 for l in content_layers])
        layer_w = list(c.style_layer_weights) or [1.0 / len(c.style_layers)] * len(c.style_layers)
        sw.append([layer_w[c.style_layers.index(l)] if l in c.style_layers else 0.0 for l in style_layers])
    t = lambda rows: torch.tensor(rows, device=device, dtype=dtype)
    targets = gatys.Targets(
        content={l: torch.cat([f[l] for f in content_feats]) for l in content_layers},
        style={l: torch.stack([g[l] for g in style_grams]) for l in style_layers},
        content_layer_weights=t(cw), style_layer_weights=t(sw),
        content_weight=t([it.pair.cfg.content_weight for it in items]),
        style_weight=t([it.pair.cfg.style_weight for it in items]),
        tv_weight=t([it.pair.cfg.tv_weight for it in items]))
    return targets, torch.cat(contents)


def initial_images(items: list[Prepared], scale: int, contents: torch.Tensor,
                   previous: torch.Tensor | None) -> torch.Tensor:
    hw = items[0].hws[scale]
    if previous is not None:  # coarse-to-fine: start from the previous scale's result
        return F.interpolate(previous, size=hw, mode="bicubic", align_corners=False).clamp(0, 1)
    out = []
    for i, it in enumerate(items):
        c = it.pair.cfg
        if it.inits is not None:
            out.append(it.inits[scale][0].to(contents))
        elif c.init == "content":
            out.append(contents[i])
        elif c.init == "style":  # cut to the output size even when --style_scale made the style another size
            style = it.styles[scale][0]
            out.append(F.interpolate(style, size=hw, mode="bicubic", align_corners=False).clamp(0, 1)[0].to(contents)
                       if style.shape[-2:] != hw else style[0].to(contents))
        else:
            g = torch.Generator().manual_seed(c.seed + zlib.crc32(it.pair.name.encode()))
            out.append(torch.rand(3, *hw, generator=g).to(contents))
    return torch.stack(out)


def render_batch(items: list[Prepared], vgg: VGGFeatures, cfg: GatysConfig, device, dtype=torch.float32,
                 progress=None, snapshot=None) -> list[dict]:
    """Optimise a batch of pairs (every scale); returns per pair {image, losses, parts, evaluations}.

    ``vgg`` must provide every layer the pairs use; the normalisation is the run's (not per pair).
    """
    content_layers, style_layers = layer_union(items)
    norm = cfg.normalization
    x, histories = None, [[] for _ in items]
    iterations = items[0].pair.cfg.iterations
    for scale, hw in enumerate(items[0].hws):
        longer = max(hw)
        targets, contents = build_targets(vgg, items, scale, content_layers, style_layers, device, dtype)
        objective = gatys.GatysObjective(vgg, targets, content_layers, style_layers, norm, cfg.normalize_gradients)
        x0 = initial_images(items, scale, contents, x)
        evals = [0]

        def on_eval(indices, losses, points=None):
            evals[0] += 1
            if progress:
                progress(evals[0], float(losses.detach().mean()))
            if snapshot and points is not None:
                snapshot(indices, points, evals[0], longer)

        if cfg.optimizer == "lbfgs":
            x, hist = optim.batched_lbfgs(
                x0, objective, on_eval=on_eval, lr=cfg.lr, max_iter=iterations, history_size=cfg.history_size,
                line_search_fn=None if cfg.line_search == "none" else cfg.line_search)
        else:
            x, hist = optim.batched_adam(x0, objective, iterations, lr=cfg.lr, on_eval=on_eval)
        for h, new in zip(histories, hist):
            h.extend(new)
    with torch.no_grad():
        parts = objective.parts(x, list(range(len(items))))
    results = []
    for i, it in enumerate(items):
        image = x[i].clamp(0, 1)
        if it.pair.cfg.color == "luminance":
            image = gatys.luminance_transfer(image, contents[i])
        results.append({"image": image, "losses": histories[i], "evaluations": len(histories[i]),
                        "parts": {k: float(v[i]) for k, v in parts.items()}, "size": list(hw)})
    return results


def write_result(out: str | Path, pair: Pair, result: dict, seconds: float, batch_size: int, device: str,
                 rank: int = 0) -> Path:
    """Image first, then its JSON (whose presence marks the pair done), both atomically."""
    png, meta = output_paths(out, pair)
    save_image(from_unit_tensor(result["image"]), png)
    record = {"content": pair.content, "styles": list(pair.styles), "name": pair.name,
              "params": render_params(pair.cfg), "inputs": input_record(pair), "size_hw": result["size"],
              "losses": result["losses"], "final": result["parts"], "evaluations": result["evaluations"],
              "seconds": round(seconds, 4), "batch_size": batch_size, "device": device, "rank": rank,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_text(meta, json.dumps(record, indent=1) + "\n")
    return png


def render_all(planned: list[Planned], cfg: GatysConfig, out: Path, device, rank: int = 0,
               report=print, on_batch=None, on_eval=None, images: ImageCache | None = None
               ) -> tuple[int, list[Failed]]:
    """Render every planned pair in size buckets, decoding each batch right before it renders.

    Returns (rendered, failed pairs). ``on_batch(n)`` after each finished batch of n pairs;
    ``on_eval(evaluations, mean loss)`` during one. Memory: the network, one batch's tensors and
    ``images`` (a bounded cache), whatever the number of pairs.
    """
    import warnings

    from brushwork.models.vgg import load_state

    if not planned:
        return 0, []
    images = images or ImageCache(cfg.max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if cfg.random_vgg else "default")
        vgg_state = load_state(cfg.vgg_weights or None, random_init=cfg.random_vgg, seed=0)
    content_layers, style_layers = layer_union(planned)
    vgg = VGGFeatures(content_layers + style_layers, vgg_state, pooling=cfg.pooling).to(device).eval()
    del vgg_state
    rendered, failed = 0, []

    def fail(name: str, reason: str) -> None:
        failed.append(Failed(name, reason))
        report(f"failed: {name}: {reason}")

    for bucket in buckets(planned, cfg.batch_size):
        batch = []
        for item in bucket:  # decoded now, not before: the job's memory is one batch
            try:
                batch.append(prepare(item, images))
            except BrushworkError as e:  # an image damaged past its header: this pair only
                fail(item.pair.name, str(e))
        if not batch:
            continue
        start = time.perf_counter()
        snapshot = None
        if cfg.save_every:
            def snapshot(indices, points, n, scale, batch=batch):
                if n % cfg.save_every == 0:
                    for j, i in enumerate(indices):
                        name = f"{batch[i].pair.name}_{scale}px_{n:05d}.png"
                        save_image(from_unit_tensor(points[j]), Path(out) / "progress" / name)
        try:
            results = render_batch(batch, vgg, cfg, device, snapshot=snapshot, progress=on_eval)
        except BrushworkError as e:
            for it in batch:
                fail(it.pair.name, str(e))
            continue
        seconds = time.perf_counter() - start
        for it, result in zip(batch, results):
            write_result(out, it.pair, result, seconds, len(batch), str(device), rank)
        rendered += len(batch)
        del batch, results
        if on_batch:
            on_batch(len(bucket))
    return rendered, failed
