"""Frozen dataclass configs, TOML presets with inheritance, typed overrides, resolved TOML.

A tool's config is a frozen dataclass whose fields carry a help text (``setting``). A preset is a
TOML file of field values; ``inherit = "base.toml"`` (relative to the file) layers it on another.
Overrides from the command line are checked against the field types: an unknown name or a value of
the wrong type raises ``ConfigError`` naming the flag and what it accepts. ``to_toml`` writes the
resolved config so that ``load_config(cls, that_file)`` gives back an equal config.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError
from .fileio import atomic_write_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"
INHERIT_KEY = "inherit"


def setting(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A dataclass field with its help text (and allowed values, if fixed)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


# ---------------------------------------------------------------------------------------------
# Presets


def preset_path(tool: str, name_or_path: str | os.PathLike) -> Path:
    """``configs/{tool}/{name}.toml`` for a bare name, else the path as given."""
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text or "/" in text:
        path = Path(text)
    else:
        path = CONFIG_ROOT / tool / f"{text}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONFIG_ROOT / tool).glob("*.toml"))
        hint = f"; known presets: {', '.join(known)}" if known else ""
        raise ConfigError(f"preset {text!r} not found (looked for {path}){hint}")
    return path


def load_preset(path: str | os.PathLike, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The values of a preset file, with its ``inherit`` chain applied (child wins)."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"preset inheritance loops: {chain}")
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"preset file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the file") from None
    parent = values.pop(INHERIT_KEY, None)
    if parent is None:
        return values
    merged = load_preset(path.parent / parent, (*_seen, path))
    merged.update(values)
    return merged


# ---------------------------------------------------------------------------------------------
# Typed values


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def type_name(tp: Any) -> str:
    inner, optional = _unwrap_optional(tp)
    if typing.get_origin(inner) is tuple:
        item = typing.get_args(inner)[0]
        name = f"a list of {type_name(item).removeprefix('a ').removeprefix('an ')}s"
    else:
        name = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
            inner, getattr(inner, "__name__", str(inner))
        )
    return f"{name} or none" if optional else name


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce_scalar(value: Any, tp: Any) -> Any:
    """``value`` as ``tp``, or raise ValueError."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError
    if tp is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip().replace("_", ""))
        raise ValueError
    if tp is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            result = float(value)
        elif isinstance(value, str):
            result = float(value)
        else:
            raise ValueError
        if not math.isfinite(result):
            raise ValueError
        return result
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError
        return str(value)
    raise TypeError(f"config fields of type {tp!r} are not supported")


def coerce(value: Any, tp: Any) -> Any:
    """``value`` converted to the field type ``tp``; ValueError when it does not fit."""
    inner, optional = _unwrap_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "")):
        if optional:
            return None
        raise ValueError
    if typing.get_origin(inner) is tuple:
        item_type = typing.get_args(inner)[0]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce_scalar(v, item_type) for v in value)
    return _coerce_scalar(value, inner)


def _flag(name: str) -> str:
    return "--" + name


def _check_choice(cls: type, name: str, value: Any, label: str) -> None:
    choices = next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("choices")
    if not choices:
        return
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if v not in choices:
            allowed = ", ".join(str(c) for c in choices)
            raise ConfigError(f"{label} must be one of {allowed}; got {v!r}")


def build(cls: type, values: Mapping[str, Any], source: str = "flag", base: Any = None) -> Any:
    """A ``cls`` from ``values`` (on top of ``base`` or the defaults), every value type-checked.

    ``source`` says how names are shown in errors: "flag" for ``--name``, else a file name.
    """
    types_ = _field_types(cls)
    valid = list(types_)
    checked: dict[str, Any] = {}
    for raw_name, value in values.items():
        name = raw_name.replace("-", "_")
        label = _flag(name) if source == "flag" else f"{source}: {name}"
        if name not in types_:
            shown = ", ".join(_flag(v) if source == "flag" else v for v in valid)
            what = f"unknown flag {_flag(raw_name)}" if source == "flag" else f"{source}: unknown key {raw_name!r}"
            raise ConfigError(f"{what}; valid {'flags' if source == 'flag' else 'keys'}: {shown}")
        try:
            checked[name] = coerce(value, types_[name])
        except ValueError:
            raise ConfigError(f"{label} expects {type_name(types_[name])}, got {value!r}") from None
        _check_choice(cls, name, checked[name], label)
    if base is None:
        try:
            return cls(**checked)
        except TypeError as e:  # a field without default left unset
            raise ConfigError(f"{cls.__name__}: {e}") from None
    return dataclasses.replace(base, **checked)


def load_config(cls: type, preset: str | os.PathLike | None, overrides: Mapping[str, Any] = (),
                tool: str = "") -> Any:
    """Defaults ← preset (with inheritance) ← overrides, all type-checked."""
    cfg = cls()
    if preset:
        path = preset_path(tool, preset)
        cfg = build(cls, load_preset(path), source=str(path), base=cfg)
    return build(cls, dict(overrides), source="flag", base=cfg)


# ---------------------------------------------------------------------------------------------
# Writing and describing


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(cfg: Any) -> str:
    """The config as flat TOML; fields that are None are left out (None is their default)."""
    lines = [f"# resolved {type(cfg).__name__}"]
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None:
            continue
        lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_resolved(cfg: Any, out_dir: str | os.PathLike, name: str = "config.toml") -> Path:
    """Write the resolved config into ``out_dir`` atomically; returns the path."""
    path = Path(out_dir) / name
    atomic_write_text(path, to_toml(cfg))
    return path


def help_text(doc: str, cls: type, tool: str, preset: str, extra: str = "") -> str:
    """A CLI's --help: its docstring, then every flag with the preset's default."""
    flags = describe(cls, load_config(cls, preset, tool=tool))
    return f"{doc}\nflags (defaults of configs/{tool}/{preset}.toml):\n{flags}" + (f"\n{extra}" if extra else "")


def describe(cls: type, defaults: Any = None) -> str:
    """One line per flag: name, type, default (from ``defaults`` if given), help."""
    defaults = defaults if defaults is not None else cls()
    types_ = _field_types(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = getattr(defaults, f.name)
        shown = "none" if default is None else _toml_value(default)
        choices = f.metadata.get("choices")
        extra = f" (one of: {', '.join(map(str, choices))})" if choices else ""
        rows.append(f"  --{f.name:<20} {type_name(types_[f.name]):<16} default {shown}\n"
                    f"      {f.metadata.get('help', '')}{extra}")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# The tools' configs


@dataclasses.dataclass(frozen=True)
class CycleGANConfig:
    """Everything ``train/cyclegan.py`` needs; defaults are the paper's / original code's."""

    domain: str = setting("monet", "dataset name: monet, cezanne, ukiyoe, vangogh or your own")
    data: str = setting("", "shard root of the dataset (default: data/shards/{domain}2photo)")
    run_dir: str = setting("", "run folder (default: runs/cyclegan-{domain})")
    resume: str = setting("", "'auto' resumes from run_dir's latest checkpoint; or a checkpoint path")
    max_steps: int = setting(0, "stop after this many global steps (0: train the whole schedule)")
    epochs: int = setting(100, "epochs at the initial learning rate")
    epochs_decay: int = setting(100, "epochs of linear decay to zero after that")
    batch_size: int = setting(1, "images per domain per process per step (original code: 1)")
    load_size: int = setting(286, "resize to this before cropping")
    crop_size: int = setting(256, "random crop size (training resolution)")
    no_flip: bool = setting(False, "turn off random horizontal flips")
    ngf: int = setting(64, "generator width (filters in the first conv)")
    ndf: int = setting(64, "discriminator width")
    n_blocks: int = setting(9, "ResNet blocks in each generator (6, 9 or more)")
    n_layers_d: int = setting(3, "PatchGAN layers (3 gives the 70x70 receptive field)")
    init_type: str = setting("normal", "weight init", choices=("normal", "xavier", "kaiming", "orthogonal"))
    init_gain: float = setting(0.02, "std (normal) or gain of the weight init")
    gan_mode: str = setting("lsgan", "adversarial loss", choices=("lsgan", "vanilla"))
    lambda_a: float = setting(10.0, "weight of the cycle loss A -> B -> A")
    lambda_b: float = setting(10.0, "weight of the cycle loss B -> A -> B")
    lambda_identity: float = setting(0.5, "identity loss weight, as a fraction of lambda_a / lambda_b")
    lambda_perceptual: float = setting(0.0, "weight of a VGG perceptual cycle loss (0: off, as in the paper)")
    pool_size: int = setting(50, "image pool of past fakes per discriminator (0: none)")
    lr: float = setting(2e-4, "Adam learning rate")
    beta1: float = setting(0.5, "Adam beta1")
    beta2: float = setting(0.999, "Adam beta2")
    checkpoint_every: int = setting(1000, "save a checkpoint every N global steps (and at each epoch end)")
    keep_last: int = setting(3, "checkpoints to keep")
    sample_every: int = setting(500, "write an image grid to TensorBoard and samples/ every N steps")
    log_every: int = setting(50, "log losses every N steps")
    num_workers: int = setting(2, "data loader worker processes per rank")
    shuffle_buffer: int = setting(256, "sample shuffle buffer per stream")
    mixed_precision: str = setting("no", "autocast dtype; bf16/fp16 pay off on GPUs only",
                                   choices=("no", "bf16", "fp16"))
    seed: int = setting(0, "seed for init, data order and augmentation")
    deterministic: bool = setting(False, "deterministic kernels (exact resume on GPU; slower)")
    compile: bool = setting(False, "torch.compile the networks (inductor); pays on GPUs, not on this kind of CPU")
    winograd: bool = setting(True, "ResNet-block convs as Winograd F(4x4,3x3) on CPU in fp32: ~1.4x faster steps, "
                             "same weights, same maths up to float rounding; no effect on GPUs")
    vgg_weights: str = setting("", "VGG-19 weights for the perceptual loss (default: torch hub cache)")
    random_vgg: bool = setting(False, "random VGG-19 for the perceptual loss (tests only)")


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """``data_prep/synth.py``: a synthetic unpaired dataset with a known mapping."""

    out: str = setting("data/raw/synth", "output folder (trainA trainB testA testB inside)")
    n_train: int = setting(32, "training images per domain")
    n_test: int = setting(8, "test images per domain")
    size: int = setting(64, "image side in pixels")
    seed: int = setting(0, "dataset seed (same seed, same bytes)")


@dataclasses.dataclass(frozen=True)
class ShardConfig:
    """``data_prep/shard.py``: images → validated WebDataset shards."""

    input: str = setting("", "dataset folder or .zip in the original layout (trainA trainB testA testB)")
    out: str = setting("", "output folder or fsspec URL, e.g. data/shards/monet2photo or s3://bucket/x")
    a: str = setting("", "your own domain-A training folder (instead of INPUT)")
    b: str = setting("", "your own domain-B training folder (instead of INPUT)")
    test_a: str = setting("", "optional domain-A test folder (with --a/--b)")
    test_b: str = setting("", "optional domain-B test folder (with --a/--b)")
    samples_per_shard: int = setting(64, "images per shard (need at least ranks x workers shards per domain)")
    max_shard_bytes: int = setting(0, "also start a new shard past this many source bytes (0: no limit)")
    max_side: int = setting(0, "downscale so the longer side is at most this many pixels (0: keep)")
    max_pixels: int = setting(80_000_000, "refuse images with more pixels than this (decompression bombs)")
    workers: int = setting(1, "processes writing shards in parallel")
    job_index: int = setting(0, "this job's index in an array of num_jobs (SLURM_ARRAY_TASK_ID)")
    num_jobs: int = setting(1, "jobs sharing the work; the manifest is written by a final run with 1 job")
    manifest_only: bool = setting(False, "write nothing but check all shards and write the manifest")


@dataclasses.dataclass(frozen=True)
class DownloadConfig:
    """``data_prep/download.py``: fetch and extract an original CycleGAN dataset."""

    name: str = setting("monet2photo", "dataset: monet2photo, cezanne2photo, ukiyoe2photo, vangogh2photo, ...")
    dest: str = setting("data/raw", "folder to put {name}.zip and the extracted {name}/ in")
    url: str = setting("", "download from this URL instead of the official one (a mirror)")
    from_path: str = setting("", "use this local zip or folder instead of downloading (alias: --from)")
    retries: int = setting(3, "retries after a failed transfer (with backoff), resuming each time")
    keep_zip: bool = setting(True, "keep the zip after extracting it")


@dataclasses.dataclass(frozen=True)
class GatysConfig:
    """``train/gatys.py``: batched Gatys style transfer over many content/style pairs."""

    content: str = setting("", "content image or folder (cross product with --style)")
    style: str = setting("", "style image or folder")
    pairs: str = setting("", "JSONL or CSV of pairs: content, style (+ optional per-pair overrides)")
    out: str = setting("renders", "output folder: {content}__{style}.png + .json per pair")
    size: int = setting(512, "longer side of the output in pixels")
    multiscale: tuple[int, ...] = setting((), "coarse-to-fine sizes, e.g. 256,512 (last one is the output)")
    iterations: int = setting(300, "optimiser iterations per pair (per scale)")
    batch: int = setting(4, "pairs optimised together on one device")
    optimizer: str = setting("lbfgs", "per-sample optimiser", choices=("lbfgs", "adam"))
    lr: float = setting(1.0, "L-BFGS step scale, or Adam learning rate (try 0.02)")
    history_size: int = setting(100, "L-BFGS history")
    line_search: str = setting("strong_wolfe", "L-BFGS line search", choices=("strong_wolfe", "none"))
    content_weight: float = setting(1.0, "alpha")
    style_weight: float = setting(1e6, "beta")
    tv_weight: float = setting(0.0, "total-variation weight (smoothness)")
    content_layers: tuple[str, ...] = setting(("conv4_2",), "content layers (conv4_2 or the paper's conv_5 style)")
    style_layers: tuple[str, ...] = setting(("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"), "style layers")
    style_layer_weights: tuple[float, ...] = setting((), "weight per style layer (empty: 1/number of layers)")
    style_blend: tuple[float, ...] = setting((), "weights when a pair has several style images (empty: equal)")
    normalization: str = setting("mean", "loss normalisation", choices=("paper", "mean"))
    pooling: str = setting("avg", "VGG pooling (the paper uses avg)", choices=("avg", "max"))
    init: str = setting("content", "starting image", choices=("content", "style", "noise"))
    color: str = setting("none", "colour preservation", choices=("none", "luminance", "histogram"))
    save_every: int = setting(0, "also save intermediate images every N evaluations (0: off)")
    vgg_weights: str = setting("", "torchvision VGG-19 state dict (default: the torch hub cache)")
    random_vgg: bool = setting(False, "random VGG-19 weights: for tests and demos only, not artistic")
    seed: int = setting(0, "seed for noise init")
    max_pixels: int = setting(80_000_000, "refuse input images with more pixels than this")
    part: int = setting(0, "with --parts N: render only pairs i with i % N == part (a job array task)")
    parts: int = setting(1, "split the pairs into this many parts (SLURM_ARRAY_TASK_COUNT)")


PAIR_OVERRIDES = ("content_weight", "style_weight", "tv_weight", "content_layers", "style_layers",
                  "style_layer_weights", "style_blend", "init", "iterations", "size", "seed", "color")
