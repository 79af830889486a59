"""Configs of the Gatys runner and its figures.

Fields tagged ``role="pair"`` may be set per pair in a pairs file; they and the ones tagged
``role="render"`` shape the pixels of a render, so each render's JSON records them all and a rerun
compares them (``PAIR_KEYS`` and ``RENDER_KEYS`` are derived from these tags, never listed by hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from brushwork.core.errors import ConfigError
from brushwork.core.fileio import refuse_output_inside
from brushwork.schemas.data import DEFAULT_MAX_PIXELS
from brushwork.schemas.fields import Config, fields_with_role, setting

PAIR, RENDER = "pair", "render"


@dataclass(frozen=True)
class GatysSettings(Config):
    """How a Gatys render is made: what ``train/gatys.py`` and ``gatys_figures.py fig3`` share."""

    image_size: int = setting(512, "longer side of the output in pixels (neural-style's -image_size)", min=16,
                              max=16384, role=PAIR, renamed="size")
    multiscale: tuple[int, ...] = setting((), "coarse-to-fine sizes, e.g. 256,512 (the last one is the output)",
                                          min=16, max=16384, role=RENDER)
    iterations: int = setting(300, "optimiser iterations per pair (per scale)", min=1, max=1_000_000, role=PAIR)
    batch_size: int = setting(4, "pairs optimised together on one device", min=1, max=4096, renamed="batch")
    optimizer: Literal["lbfgs", "adam"] = setting("lbfgs", "per-sample optimiser", role=RENDER)
    lr: float = setting(1.0, "L-BFGS step scale, or Adam learning rate (try 0.02)", min=1e-12, role=RENDER)
    history_size: int = setting(100, "L-BFGS history", min=1, max=10_000, role=RENDER)
    line_search: Literal["strong_wolfe", "none"] = setting("strong_wolfe", "L-BFGS line search", role=RENDER)
    content_weight: float = setting(1.0, "alpha", min=0, role=PAIR)
    style_weight: float = setting(1e6, "beta", min=0, role=PAIR)
    tv_weight: float = setting(0.0, "total-variation weight (smoothness)", min=0, role=PAIR)
    content_layers: tuple[str, ...] = setting(("conv4_2",), "content layers (conv4_2 or the paper's conv_5 style)",
                                              role=PAIR)
    style_layers: tuple[str, ...] = setting(("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
                                            "style layers", role=PAIR)
    style_layer_weights: tuple[float, ...] = setting((), "weight per style layer (empty: 1/number of layers)",
                                                     min=0, role=PAIR)
    style_blend: tuple[float, ...] = setting((), "weights when a pair has several style images (empty: equal)",
                                             min=0, role=PAIR)
    normalization: Literal["paper", "mean"] = setting("mean", "loss normalisation", role=RENDER)
    normalize_gradients: bool = setting(False, "L1-normalise each layer's gradient before its weight applies "
                                               "(neural-style's -normalize_gradients; needs --line_search none "
                                               "or --optimizer adam)", role=RENDER)
    pooling: Literal["avg", "max"] = setting("avg", "VGG pooling (the paper uses avg)", role=RENDER)
    style_scale: float = setting(1.0, "style images are scaled to cover the output size times this "
                                      "(neural-style's -style_scale: larger brush strokes above 1)", min=0.05,
                                 max=16, role=PAIR)
    init: Literal["content", "style", "noise"] = setting("content", "starting image", role=PAIR)
    init_image: str = setting("", "start from this image file, resized to the output (neural-style's "
                                  "-init_image; replaces --init)", role=PAIR)
    color: Literal["none", "luminance", "histogram"] = setting("none", "colour preservation", role=PAIR)
    save_every: int = setting(0, "also save intermediate images every N evaluations (0: off)", min=0)
    vgg_weights: str = setting("", "torchvision VGG-19 state dict (default: the torch hub cache)", role=RENDER)
    random_vgg: bool = setting(False, "random VGG-19 weights: for tests and demos only, not artistic", role=RENDER)
    seed: int = setting(0, "seed for noise init", min=0, role=PAIR)
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "refuse input images with more pixels than this", min=1)
    def check(self) -> None:
        for flag, layers in (("--content_layers", self.content_layers), ("--style_layers", self.style_layers)):
            if not layers or any(not name.strip() for name in layers):
                raise ConfigError(f"{flag} needs at least one layer name, e.g. conv4_2 (got "
                                  f"{','.join(layers)!r})")
        if self.multiscale and self.multiscale[-1] != self.image_size:
            raise ConfigError(f"--multiscale {','.join(map(str, self.multiscale))} ends at "
                              f"{self.multiscale[-1]} px but --image_size is {self.image_size}: the last scale is "
                              f"the output; end it at {self.image_size} or set --image_size {self.multiscale[-1]}")
        if self.normalize_gradients and self.optimizer == "lbfgs" and self.line_search != "none":
            raise ConfigError("--normalize_gradients changes the gradient but not the loss, which misleads the "
                              "line search; add --line_search none (as neural-style) or use --optimizer adam")
        if self.style_layer_weights and len(self.style_layer_weights) != len(self.style_layers):
            raise ConfigError(f"{len(self.style_layers)} style layers but {len(self.style_layer_weights)} "
                              "style_layer_weights; give one weight per layer")


@dataclass(frozen=True)
class GatysInputs(Config):
    """What ``train/gatys.py`` renders and where."""

    content: str = setting("", "content image or folder (cross product with --style)")
    style: str = setting("", "style image or folder (every content x every style), or several image files "
                             "separated by commas, blended into one render per content (weights: --style_blend)")
    pairs: str = setting("", "JSONL or CSV of pairs: content, style (+ optional name and per-pair overrides)")
    out: str = setting("", "output folder: {name}.png + {name}.json per pair", required=True)
    overwrite: bool = setting(False, "re-render pairs already in --out whose recorded settings differ from "
                                     "this run's (without it such a rerun is refused)")


@dataclass(frozen=True)
class GatysConfig(GatysSettings, GatysInputs):
    """``train/gatys.py``: batched Gatys style transfer over many content/style pairs."""

    part: int = setting(0, "with --parts N: render only pairs i with i % N == part (a job array task)", min=0)
    parts: int = setting(1, "split the pairs into this many parts (SLURM_ARRAY_TASK_COUNT)", min=1)

    def check(self) -> None:
        super().check()
        if self.part >= self.parts:
            raise ConfigError(f"--part must be below --parts ({self.parts}); got {self.part}")

    def check_inputs(self) -> None:
        refuse_output_inside(self.out, {"--content": self.content, "--style": self.style})


PAIR_KEYS = fields_with_role(GatysConfig, PAIR)
RENDER_KEYS = PAIR_KEYS + fields_with_role(GatysConfig, RENDER)


@dataclass(frozen=True)
class Fig3Inputs(Config):
    content: str = setting("", "the content image")
    style: str = setting("", "the style image")
    out: str = setting("", "output folder: fig3.png, cells/ (one render per cell), fig3_config.toml",
                       required=True)
    overwrite: bool = setting(False, "re-render cells made with other settings (without it such a rerun is "
                                     "refused)")


@dataclass(frozen=True)
class Fig3Config(GatysSettings, Fig3Inputs):
    """``eval/gatys_figures.py fig3``: the paper's Fig. 3, α/β ratios × style-layer depths, one batched job."""

    ratios: tuple[float, ...] = setting((1e-5, 1e-6, 1e-7, 1e-8), "alpha/beta ratios, one column each",
                                        min=1e-30)
    depths: tuple[int, ...] = setting((3, 4, 5), "style layers conv_1..conv_k, one row per k", min=1, max=16)


@dataclass(frozen=True)
class Fig4Config(Config):
    """``eval/gatys_figures.py fig4``: total loss against evaluations, from the runner's per-pair JSON files."""

    results: tuple[str, ...] = setting((), "per-pair .json files written by train/gatys.py", positional=True)
    out: str = setting("", "output folder for fig4.png and fig4_config.toml", required=True)
    log: bool = setting(True, "logarithmic loss axis")
