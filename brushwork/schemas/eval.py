"""Configs of the eval stage: translate, stylize, grids, loss plots, FID/KID and the survey."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Literal

from brushwork.core.errors import ConfigError
from brushwork.core.fileio import refuse_output_file, refuse_output_inside
from brushwork.schemas.data import DEFAULT_MAX_PIXELS
from brushwork.schemas.fields import Config, setting

TestScale = Literal["none", "resize", "scale_width", "scale_shorter_side", "scale_longer_side"]


RENDER = "render"  # fields that shape an output's pixels: recorded per output, compared on a rerun


@dataclass(frozen=True)
class ApplyConfig(Config):
    """What applying a trained network to a folder shares: inputs, outputs, batching, test-time scale."""

    input: str = setting("", "folder (or file) of images, or a shard root (with --split/--domain)")
    out: str = setting("", "output folder (names keep the input's relative path, as .png)", required=True,
                       alias="results_dir")
    batch_size: int = setting(4, "images of one size translated together", min=1, max=4096)
    split: Literal["train", "test"] = setting("test", "with a shard root as --input: which split")
    preprocess: TestScale | None = setting(
        None, "test-time scale before the network: none (full resolution), resize (load_size x load_size, as "
              "the original test.py), scale_width, scale_shorter_side, scale_longer_side (aspect kept); default: "
              "none, or scale_width when --load_size is given", role=RENDER)
    load_size: int | None = setting(None, "the size --preprocess scales to", min=8, max=65536, role=RENDER)
    overwrite: bool = setting(False, "re-render outputs made with other settings, weights or inputs, or not by "
                                     "this tool (default: such a rerun is refused; finished outputs of the same "
                                     "settings are skipped, so a rerun finishes the rest)")
    results_html: bool = setting(False, "also write OUT/index.html: one row per image, input | output, like the "
                                        "original test.py page")
    device: str = setting("", "cpu, cuda or cuda:N (default: the process's accelerator device)")
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "skip input images with more pixels than this", min=1)

    def test_scale(self) -> str:
        """The effective --preprocess."""
        if self.preprocess is not None:
            return self.preprocess
        return "scale_width" if self.load_size else "none"

    def check_inputs(self) -> None:
        if not os.path.isfile(os.path.join(self.input, "manifest.json")):  # a shard root is read by its manifest
            refuse_output_inside(self.out, {"--input": self.input})

    def check(self) -> None:
        if self.device and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", self.device):
            raise ConfigError(f"--device {self.device}: give cpu, cuda, cuda:N or mps (or leave it out: the "
                              "process's own device)")
        if self.preprocess not in (None, "none") and self.load_size is None:
            raise ConfigError(f"--preprocess {self.preprocess} needs --load_size N (the size to scale to)")
        if self.preprocess == "none" and self.load_size is not None:
            raise ConfigError("--load_size has no effect with --preprocess none; drop one of them")


@dataclass(frozen=True)
class TranslateConfig(ApplyConfig):
    """``eval/translate.py``: translate images with a trained or released CycleGAN generator."""

    run: str = setting("", "a run dir (its newest checkpoint, or --step N), an exported/original generator .pth",
                       positional=True)
    model: str = setting("", "a released model by name instead of RUN (style_monet, monet2photo, ...; fetched "
                             "with python -m brushwork.pretrained)")
    step: int | None = setting(None, "with a run dir: use the checkpoint of this step (default: the newest)", min=0)
    direction: Literal["AtoB", "BtoA"] = setting("AtoB", "AtoB uses G_A (painting -> photo in monet2photo), BtoA "
                                                         "uses G_B (photo -> painting)", role=RENDER)
    domain: Literal["A", "B"] | None = setting(None, "with a shard root as --input: which domain (default: the "
                                                     "direction's source)")
    reconstruct: bool = setting(False, "also translate back (needs a run dir or a models.pt): adds the "
                                       "reconstruction to the results page (its images under OUT/.page/, "
                                       "which no image reader takes for outputs)")
    winograd: bool = setting(True, "ResNet-block convs as Winograd on CPU (same weights; faster)")

    def check_inputs(self) -> None:
        super().check_inputs()
        if bool(self.run) == bool(self.model):
            raise ConfigError("give RUN (a run dir or a .pth file) or --model NAME, exactly one")


@dataclass(frozen=True)
class StylizeConfig(ApplyConfig):
    """``eval/stylize.py``: apply a trained fast-style network or AdaIN model, full resolution, batched by size."""

    run: str = setting("", "a run dir of train/fast_style.py or train/adain.py (its newest checkpoint, or --step N), "
                           "a fast-style export .pth, or an AdaIN export folder", positional=True)
    step: int | None = setting(None, "with a run dir: use the checkpoint of this step (default: the newest)", min=0)
    style_index: int = setting(0, "fast style: which style of a multi-style network", min=0, role=RENDER)
    style_mix: tuple[float, ...] = setting((), "fast style: blend the styles of a multi-style network with these "
                                               "weights, e.g. 0.3,0.7 (instead of --style_index)", min=0, role=RENDER)
    style: tuple[str, ...] = setting((), "AdaIN: the style image(s), any painting; several are interpolated "
                                         "(--style_weights)", role=RENDER)
    style_weights: tuple[float, ...] = setting((), "AdaIN: one weight per --style image (default: equal)", min=0,
                                               role=RENDER, alias="style_blend")
    alpha: float = setting(1.0, "AdaIN: content-style trade-off (the paper's eq. 13): 0 gives the content back "
                                "through the decoder, 1 the full style", min=0, max=1, role=RENDER)
    preserve_color: bool = setting(False, "AdaIN: keep the photo's colours (each style image's colours are first "
                                          "matched to the photo's mean and covariance, as the paper's section 7)",
                                   role=RENDER)
    style_size: int | None = setting(512, "AdaIN: scale each style image so its shorter side is this (the paper's "
                                          "code: 512); none keeps it as it is", min=16, max=16384, role=RENDER)
    onnx: str = setting("", "also export to this ONNX file and check it against torch with onnxruntime: a fast-style "
                            "network with its style fixed (input image), or the AdaIN model (inputs content and "
                            "style); float32 NCHW RGB in [0, 1], dynamic batch/height/width")
    domain: Literal["A", "B"] = setting("B", "with a shard root as --input: which domain")

    def check(self) -> None:
        super().check()
        if self.style_mix and sum(self.style_mix) <= 0:
            raise ConfigError("--style_mix weights must not all be zero")
        if self.style_mix and not math.isfinite(sum(self.style_mix)):
            raise ConfigError("--style_mix weights add up to more than a float holds; give relative weights such "
                              "as 0.3,0.7")
        if self.style_weights and len(self.style_weights) != len(self.style):
            raise ConfigError(f"{len(self.style_weights)} --style_weights for {len(self.style)} --style image(s); give "
                              "one weight per style image")
        if self.style_weights and sum(self.style_weights) <= 0:
            raise ConfigError("--style_weights must not all be zero")
        if self.style_mix and self.style_index:
            raise ConfigError(f"--style_index {self.style_index} and --style_mix both pick the style: give one "
                              f"(--style_mix with a 1 for style {self.style_index} and 0 elsewhere is the same)")

    def check_inputs(self) -> None:
        super().check_inputs()
        if not self.run:
            raise ConfigError("give RUN: a fast-style or AdaIN run dir, or an exported model")
        refuse_output_file("--onnx", self.onnx, {"RUN": self.run, "--input": self.input}, self.overwrite, ".onnx")


@dataclass(frozen=True)
class GridsConfig(Config):
    """``eval/grids.py``: labelled sample grids of trained runs (and the methods side by side)."""

    runs: tuple[str, ...] = setting((), "CycleGAN run dirs (and with --compare: fast-style and AdaIN run dirs and "
                                        "Gatys render folders)", positional=True)
    out: str = setting("", "output folder (default: RUN/grids of the first run, named in the first line)")
    rows: int = setting(4, "test images per grid", min=1, max=256)
    seed: int = setting(0, "which test images (seeded choice)", min=0)
    cell_size: int = setting(256, "side of each square cell in pixels", min=16, max=4096, renamed="size")
    data: str = setting("", "test images: a shard root or a folder with testA/ testB/ (default: each run's data)")
    step: int | None = setting(None, "use the checkpoints of this step (default: each run's newest)", min=0)
    compare: bool = setting(False, "one grid of the methods side by side on the same photos: Gatys renders, "
                                   "fast-style and AdaIN outputs and CycleGAN translations (columns per run and "
                                   "style)")
    content: str = setting("", "with --compare: the photos (a folder; default: the first CycleGAN run's testB)")
    style: tuple[str, ...] = setting((), "with --compare: the style images AdaIN runs paint with (default: the "
                                         "styles of the grid's Gatys folders and fast-style runs)")


@dataclass(frozen=True)
class PlotsConfig(Config):
    """``eval/plots.py``: the loss curves of a run (Fig. 8)."""

    run: str = setting("", "run dir with tb/ event files", positional=True)
    out: str = setting("", "output folder for losses.png and losses_config.toml (default: the run dir)")


@dataclass(frozen=True)
class FIDConfig(Config):
    """``eval/fid.py``: FID and KID between generated and real images."""

    fakes: str = setting("", "generated images: a folder, or a shard root (with --split/--domain)", renamed="fake")
    reals: str = setting("", "real images: a folder, or a shard root", renamed="real")
    split: Literal["train", "test"] = setting("test", "split of a shard root")
    domain: Literal["A", "B"] = setting("A", "domain of a shard root")
    features: Literal["fid_inception", "torchvision"] = setting(
        "fid_inception", "the feature network: fid_inception (the standard FID Inception: numbers compare with "
                         "published ones) or torchvision (torchvision's Inception-v3, as earlier versions used)")
    inception_weights: str = setting("", "weights of that network (default: the torch hub cache, where python -m "
                                         "brushwork.pretrained fid_inception / inception puts them)")
    random_inception: bool = setting(False, "a fixed random feature net instead of Inception (tests only; the "
                                            "numbers compare with nothing)", renamed="random_features")
    batch_size: int = setting(32, "images per forward pass", min=1, max=4096)
    kid_subsets: int = setting(10, "KID: random subsets averaged", min=1, max=10_000)
    kid_subset_size: int = setting(1000, "KID: images per subset (capped by the smaller set)", min=2)
    out: str = setting("", "also write the numbers to OUT/fid.json (and the settings to OUT/fid_config.toml)")


@dataclass(frozen=True)
class SurveyBuildConfig(Config):
    """``eval/survey.py build``: the real/fake survey package to send out."""

    fakes: str = setting("", "generated images (CycleGAN translations, Gatys renders, fast-style outputs, ...)")
    reals: str = setting("", "real images")
    out: str = setting("", "the package folder (must be new or empty); the key and config go beside it",
                       required=True)
    n: int = setting(10, "images of each kind", min=1, max=10_000)
    image_size: int = setting(256, "side of the square images shown (each is centre-cropped and resized to it, and "
                                   "the page shows it at that size)", min=32, max=4096, renamed="size")
    quality: int = setting(90, "JPEG quality of every image", min=1, max=100)
    seed: int = setting(0, "seed of the choice, order and ids", min=0)
    title: str = setting("Real or generated?", "page title")
    zip: bool = setting(False, "also write OUT.zip (the key is never in it)")


@dataclass(frozen=True)
class SurveyScoreConfig(Config):
    """``eval/survey.py score``: per-image percentages, the fooled rate and rater accuracy."""

    key: str = setting("", "the answer key written by build (survey_key.json)", positional=True)
    responses: tuple[str, ...] = setting((), "saved response .json files and/or Google Forms .csv exports",
                                         positional=True)
    out: str = setting("", "output folder (results.md, per_image.csv, score_config.toml)", required=True)


@dataclass(frozen=True)
class SurveySimulateConfig(Config):
    """``eval/survey.py simulate``: synthetic responses, a dry run of the scorer."""

    key: str = setting("", "the answer key written by build", positional=True)
    raters: int = setting(14, "synthetic raters", min=1, max=100_000)
    out: str = setting("", "output folder for the synthetic responses", required=True)
    accuracy: float = setting(0.6, "probability a rater is right", min=0, max=1)
    seed: int = setting(0, "seed", min=0)
