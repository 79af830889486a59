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
made with other settings, so the folder never holds images its config does not describe.
"""

from __future__ import annotations

import csv
import io
import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from . import config, gatys, optim
from .errors import BrushworkError, ConfigError
from .fileio import atomic_write_text, safe_name
from .images import find_images, from_unit_tensor, load_image, save_image, to_unit_tensor
from .schemas.gatys import PAIR_KEYS, RENDER_KEYS, GatysConfig
from .vgg import VGGFeatures, layer_index, layer_names


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


def _stem(path: str) -> str:
    return Path(path).stem


def _pair(content: str, styles: tuple[str, ...], cfg: GatysConfig, name: str = "") -> Pair:
    return Pair(content, styles, name or f"{_stem(content)}__{'+'.join(_stem(s) for s in styles)}", cfg)


def read_pairs(cfg: GatysConfig) -> tuple[list[Pair], list[Failed]]:
    """(pairs, pairs refused for their name) from --pairs (JSONL/CSV, with overrides) or --content x --style."""
    if cfg.pairs:
        pairs = _pairs_file(Path(cfg.pairs), cfg)
    elif cfg.content and cfg.style:
        contents = [str(p) for p in find_images(cfg.content)]
        styles = [str(p) for p in find_images(cfg.style)]
        if not contents or not styles:
            raise BrushworkError(f"no images in {cfg.content if not contents else cfg.style}")
        check_weights(cfg, 1, "flags")
        pairs = [_pair(c, (s,), cfg) for c in contents for s in styles]
    else:
        raise BrushworkError("give --content and --style (files or folders), or --pairs FILE")
    names = [p.name for p in pairs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BrushworkError(f"several pairs would write {dupes[0]}.png; give them distinct 'name' fields")
    good, failed = [], []
    for pair in pairs:
        try:
            safe_name(pair.name, "pair name")
            good.append(pair)
        except BrushworkError as e:
            failed.append(Failed(pair.name, str(e)))
    return good, failed


def _pairs_file(path: Path, cfg: GatysConfig) -> list[Pair]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BrushworkError(f"--pairs {path}: not a text file (JSONL or CSV expected)") from None
    except OSError as e:
        raise BrushworkError(f"--pairs {path}: cannot read ({e.strerror})") from None
    if "\x00" in text:
        raise BrushworkError(f"--pairs {path}: not a text file (JSONL or CSV expected)")
    if path.suffix.lower() == ".csv":
        try:
            rows = [(i + 2, row) for i, row in enumerate(csv.DictReader(io.StringIO(text)))]
        except csv.Error as e:
            raise BrushworkError(f"--pairs {path}: not valid CSV ({e})") from None
    else:
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    rows.append((i, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise BrushworkError(f"{path}:{i}: not valid JSON ({e.msg})") from None
    pairs = []
    for line, row in rows:
        where = f"{path}:{line}"
        if not isinstance(row, dict) or not row.get("content") or not row.get("style"):
            raise BrushworkError(f"{where}: each pair needs 'content' and 'style'")
        styles = row["style"] if isinstance(row["style"], list) else [s for s in str(row["style"]).split("+")]
        base = path.parent
        resolve = lambda p: str(p if Path(p).is_absolute() or Path(p).exists() else base / p)
        overrides = {k: v for k, v in row.items() if k not in ("content", "style", "name") and v not in ("", None)}
        unknown = sorted(set(overrides) - set(PAIR_KEYS))
        if unknown:
            raise ConfigError(f"{where}: {unknown[0]!r} cannot be set per pair; per-pair keys: {', '.join(PAIR_KEYS)}")
        if "style_layers" in overrides and "style_layer_weights" not in overrides:
            overrides["style_layer_weights"] = ()  # new layers, inherited weights would not fit: equal
        pair_cfg = config.build(GatysConfig, overrides, source=where, base=cfg)
        check_weights(pair_cfg, len(styles), where)
        pairs.append(_pair(resolve(row["content"]), tuple(resolve(str(s)) for s in styles), pair_cfg,
                           str(row.get("name", ""))))
    if not pairs:
        raise BrushworkError(f"{path}: no pairs in the file")
    return pairs


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


def recorded_params(out: str | Path, pair: Pair) -> dict | None:
    """The settings a finished render of ``pair`` was made with; None if it is not finished (or unreadable)."""
    png, meta = output_paths(out, pair)
    if not png.exists():
        return None
    try:
        record = json.loads(meta.read_text())
        return record["params"] if isinstance(record.get("params"), dict) else None
    except (OSError, ValueError, KeyError, AttributeError):
        return None  # no JSON (killed between image and record) or a damaged one: render again


def is_done(out: str | Path, pair: Pair) -> bool:
    return recorded_params(out, pair) is not None


def pairs_to_render(out: str | Path, pairs: list[Pair], overwrite: bool) -> list[Pair]:
    """The pairs without a result, plus (with ``overwrite``) those made with other settings.

    Without ``overwrite``, finished pairs with other settings are one BrushworkError: the folder
    must not end up holding images its config does not describe.
    """
    changed = changed_settings(out, pairs)
    if changed and not overwrite:
        pair, diff = changed[0]
        raise BrushworkError(f"{out} holds {len(changed)} render(s) made with other settings (e.g. {pair.name}: "
                             f"{diff}); --overwrite re-renders them, or choose another --out")
    redo = {p.name for p, _ in changed}
    return [p for p in pairs if p.name in redo or not is_done(out, p)]


def changed_settings(out: str | Path, pairs: list[Pair]) -> list[tuple[Pair, str]]:
    """Finished pairs whose recorded settings differ from this run's, with the first difference."""
    changed = []
    for pair in pairs:
        old, new = recorded_params(out, pair), render_params(pair.cfg)
        if old is None:
            continue
        diffs = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in new.items() if old.get(k) != v]
        if diffs:
            changed.append((pair, diffs[0]))
    return changed


def scale_sizes(cfg: GatysConfig) -> tuple[int, ...]:
    return tuple(cfg.multiscale) if cfg.multiscale else (cfg.size,)


def fit(width: int, height: int, longer: int) -> tuple[int, int]:
    """(H, W) with the longer side = ``longer``, aspect kept."""
    scale = longer / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resized_unit_tensor(img: Image.Image, hw: tuple[int, int]) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1], resized (bicubic) to ``hw``."""
    return to_unit_tensor(img.resize((hw[1], hw[0]), Image.Resampling.BICUBIC))[None]


def cover_crop(img: Image.Image, hw: tuple[int, int]) -> torch.Tensor:
    """Resize to cover (H, W), keep aspect, centre-crop: styles fill the output without distortion."""
    h, w = hw
    scale = max(h / img.height, w / img.width)
    rh, rw = max(h, round(img.height * scale)), max(w, round(img.width * scale))
    big = img.resize((rw, rh), Image.Resampling.BICUBIC)
    top, left = (rh - h) // 2, (rw - w) // 2
    return resized_unit_tensor(big.crop((left, top, left + w, top + h)), hw)


@dataclass
class Loaded:
    pair: Pair
    content: Image.Image
    styles: list[Image.Image]

    def output_hw(self, longer: int) -> tuple[int, int]:
        return fit(self.content.width, self.content.height, longer)


def min_side(layers) -> int:
    """Smallest image side that still leaves at least one pixel at the deepest layer."""
    deepest = max(layer_index(l) for l in layers)
    pools = sum(1 for i, names in enumerate(layer_names()) if i < deepest and names[0].startswith("pool"))
    return 2 ** pools


def load_pair(pair: Pair, max_pixels: int) -> Loaded:
    """Decode a pair's images and check its sizes; the error names the file or the size that is wrong."""
    loaded = Loaded(pair, load_image(pair.content, max_pixels), [load_image(s, max_pixels) for s in pair.styles])
    layers = (*pair.cfg.content_layers, *pair.cfg.style_layers)
    need = min_side(layers)
    for longer in scale_sizes(pair.cfg):
        h, w = loaded.output_hw(longer)
        if min(h, w) < need:
            raise BrushworkError(f"{pair.content}: output {w}x{h} is too small for layers {', '.join(layers)} "
                                 f"(each side needs at least {need} px); use a larger --size")
    return loaded


def bucket_key(item: Loaded, longer: int) -> tuple:
    c = item.pair.cfg
    return (item.output_hw(longer), c.iterations)


def buckets(items: list[Loaded], batch: int) -> list[list[Loaded]]:
    """Equal output size and iteration count in each batch, at most ``batch`` pairs."""
    groups: dict = {}
    for item in items:
        groups.setdefault(bucket_key(item, scale_sizes(item.pair.cfg)[-1]), []).append(item)
    return [g[i:i + batch] for g in groups.values() for i in range(0, len(g), batch)]


def layer_union(items: list[Loaded]) -> tuple[list[str], list[str]]:
    """(content layers, style layers) used by any pair of ``items``, each in first-use order."""
    content = list(dict.fromkeys(l for it in items for l in it.pair.cfg.content_layers))
    style = list(dict.fromkeys(l for it in items for l in it.pair.cfg.style_layers))
    return content, style


def build_targets(vgg: VGGFeatures, items: list[Loaded], hw: tuple[int, int], content_layers: list[str],
                  style_layers: list[str], device, dtype) -> tuple[gatys.Targets, torch.Tensor]:
    """Per-pair targets and weights at size ``hw``; also returns the content images (B, 3, H, W)."""
    contents, content_feats, style_grams = [], [], []
    cw, sw = [], []
    for it in items:
        c = it.pair.cfg
        content = resized_unit_tensor(it.content, hw).to(device, dtype)
        styles = [cover_crop(s, hw).to(device, dtype) for s in it.styles]
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


def initial_images(items: list[Loaded], contents: torch.Tensor, hw, previous: torch.Tensor | None) -> torch.Tensor:
    if previous is not None:  # coarse-to-fine: start from the previous scale's result
        return F.interpolate(previous, size=hw, mode="bicubic", align_corners=False).clamp(0, 1)
    out = []
    for i, it in enumerate(items):
        c = it.pair.cfg
        if c.init == "content":
            out.append(contents[i])
        elif c.init == "style":
            out.append(cover_crop(it.styles[0], hw)[0].to(contents))
        else:
            g = torch.Generator().manual_seed(c.seed + zlib.crc32(it.pair.name.encode()))
            out.append(torch.rand(3, *hw, generator=g).to(contents))
    return torch.stack(out)


def render_batch(items: list[Loaded], vgg: VGGFeatures, cfg: GatysConfig, device, dtype=torch.float32,
                 progress=None, snapshot=None) -> list[dict]:
    """Optimise a batch of pairs (every scale); returns per pair {image, losses, parts, evaluations}.

    ``vgg`` must provide every layer the pairs use; the normalisation is the run's (not per pair).
    """
    content_layers, style_layers = layer_union(items)
    norm = cfg.normalization
    x, histories = None, [[] for _ in items]
    iterations = items[0].pair.cfg.iterations
    for longer in scale_sizes(items[0].pair.cfg):
        hw = items[0].output_hw(longer)
        targets, contents = build_targets(vgg, items, hw, content_layers, style_layers, device, dtype)
        objective = gatys.GatysObjective(vgg, targets, content_layers, style_layers, norm)
        x0 = initial_images(items, contents, hw, x)
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
              "params": render_params(pair.cfg), "size_hw": result["size"],
              "losses": result["losses"], "final": result["parts"], "evaluations": result["evaluations"],
              "seconds": round(seconds, 4), "batch_size": batch_size, "device": device, "rank": rank,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_text(meta, json.dumps(record, indent=1) + "\n")
    return png


def render_all(loaded: list[Loaded], cfg: GatysConfig, out: Path, device, rank: int = 0,
               report=print, on_batch=None, on_eval=None) -> tuple[int, list[Failed]]:
    """Render every loaded pair in size buckets; returns (rendered, failed pairs).

    ``on_batch(n)`` after each finished batch of n pairs; ``on_eval(evaluations, mean loss)`` during one.
    """
    import warnings

    from .vgg import load_state

    if not loaded:
        return 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if cfg.random_vgg else "default")
        vgg_state = load_state(cfg.vgg_weights or None, random_init=cfg.random_vgg, seed=0)
    content_layers, style_layers = layer_union(loaded)
    vgg = VGGFeatures(content_layers + style_layers, vgg_state, pooling=cfg.pooling).to(device).eval()
    rendered, failed = 0, []
    for batch in buckets(loaded, cfg.batch):
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
                failed.append(Failed(it.pair.name, str(e)))
                report(f"failed: {it.pair.name}: {e}")
            continue
        seconds = time.perf_counter() - start
        for it, result in zip(batch, results):
            write_result(out, it.pair, result, seconds, len(batch), str(device), rank)
        rendered += len(batch)
        if on_batch:
            on_batch(len(batch))
    return rendered, failed
