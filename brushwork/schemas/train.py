"""Configs of the trainers: what every training loop shares, then CycleGAN's and fast style's own fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from brushwork.core.errors import ConfigError
from brushwork.schemas.fields import Config, setting

Precision = Literal["no", "bf16", "fp16"]
Tracker = Literal["tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "swanlab", "trackio",
                  "none"]
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]


@dataclass(frozen=True)
class TrainConfig(Config):
    """The loop's settings, the same for every trainer: data, run dir, schedule, cadence, precision."""

    data: str = setting("", "the dataset: a shard root (folder or fsspec URL such as s3://bucket/monet2photo), or a "
                            "local image folder (trainA/ trainB/, or plain photos for one domain) that is sharded "
                            "once into RUN/shards")
    run_dir: str = setting("", "run folder: config.toml, checkpoints/, tb/, samples/, export/")
    resume: str = setting("", "'auto' continues from run_dir's newest checkpoint (a fresh start if there is "
                              "none); or a checkpoints/step_N folder")
    max_steps: int | None = setting(None, "stop after this many global steps (none: train the whole schedule)", min=1)
    epochs: int = setting(100, "epochs at the initial learning rate", min=0, alias="n_epochs")
    epochs_decay: int = setting(100, "epochs of linear decay to zero after that", min=0, alias="n_epochs_decay")
    batch_size: int = setting(1, "images per step per process", min=1, max=4096)
    num_workers: int = setting(2, "data loader worker processes per process (rank)", min=0, max=64)
    shuffle_buffer: int = setting(256, "sample shuffle buffer per data stream", min=1, max=1_000_000)
    checkpoint_every: int = setting(1000, "save a checkpoint every N global steps (and at each epoch end)", min=1)
    keep_last: int = setting(3, "checkpoints to keep (older ones are deleted)", min=1)
    sample_every: int = setting(500, "write a labelled sample grid to the tracker and samples/ every N steps", min=1)
    log_every: int = setting(50, "log losses every N steps (a plain line when output is not a terminal)", min=1)
    log_with: tuple[Tracker, ...] = setting(("tensorboard",), "experiment trackers (any accelerate supports, if "
                                            "installed), comma-separated; none for no tracker")
    mixed_precision: Precision | None = setting(
        None, "autocast dtype; none: what accelerate launch (or its --config_file) says, else no. bf16/fp16 pay off "
              "on GPUs only")
    compile: bool | None = setting(
        None, "torch.compile the networks (inductor); none: what accelerate launch --dynamo_backend says, else off")
    seed: int = setting(0, "seed for init, data order and augmentation", min=0)
    deterministic: bool = setting(False, "deterministic kernels (exact resume on GPUs too; slower)")
    vgg_weights: str = setting("", "VGG weights file for the perceptual losses (default: the torch hub cache)")
    random_vgg: bool = setting(False, "random VGG weights for the perceptual losses (tests and demos only)")
    allow_change: tuple[str, ...] = setting((), "with --resume: settings that may differ from the run's recorded "
                                                "config, e.g. lr,data (the data order then restarts); without it "
                                                "such a resume is refused with the list of changes")

    def check(self) -> None:
        if "none" in self.log_with and len(self.log_with) > 1:
            raise ConfigError("--log_with none cannot be combined with a tracker; give one or the other")
        unknown = [k for k in self.allow_change if k not in self.as_dict()]
        if unknown:
            raise ConfigError(f"--allow_change {unknown[0]}: not a setting of this command; give flag names "
                              "without dashes, e.g. --allow_change lr,data")


# Settings a resume may change freely (each change is one line): where and how often the run reports and
# saves, how long it trains, and how it is computed. Everything else shapes the run (data, seed, networks,
# losses, learning rate, augmentation) and needs --allow_change.
RESUME_MAY_CHANGE = ("run_dir", "resume", "allow_change", "max_steps", "epochs", "epochs_decay", "batch_size",
                     "num_workers", "checkpoint_every", "keep_last", "sample_every", "log_every", "log_with",
                     "mixed_precision", "compile", "deterministic")


@dataclass(frozen=True)
class CycleGANConfig(TrainConfig):
    """``train/cyclegan.py``: defaults are the paper's / the original code's (resnet_9blocks, LSGAN, pool 50)."""

    dataset: str = setting("monet", "dataset name: monet, cezanne, ukiyoe, vangogh or your own (picks "
                                    "brushwork/presets/cyclegan/{dataset}.toml if there is one, data/shards/"
                                    "{dataset}2photo and runs/cyclegan-{dataset} as defaults)", renamed="domain")
    preprocess: Preprocess = setting("resize_and_crop", "training transform, as the original --preprocess: "
                                     "resize_and_crop (load_size square, random crop_size crop), crop (random "
                                     "crop_size crop at full size), scale_width (width to crop_size), "
                                     "scale_width_and_crop (width to load_size, random crop_size crop), none "
                                     "(full size, sides rounded down to a multiple of 4)")
    load_size: int = setting(286, "resize (or scale the width) to this before cropping", min=8, max=16384)
    crop_size: int = setting(256, "random crop size: the training resolution", min=8, max=16384)
    no_flip: bool = setting(False, "turn off random horizontal flips")
    ngf: int = setting(64, "generator width (filters in its first conv)", min=1, max=1024)
    ndf: int = setting(64, "discriminator width", min=1, max=1024)
    n_blocks: int = setting(9, "ResNet blocks in each generator (6 or 9 in the original)", min=1, max=64)
    n_layers_d: int = setting(3, "PatchGAN layers (3 gives the 70x70 receptive field)", min=1, max=8)
    init_type: Literal["normal", "xavier", "kaiming", "orthogonal"] = setting("normal", "weight init")
    init_gain: float = setting(0.02, "std (normal) or gain of the weight init", min=0)
    gan_mode: Literal["lsgan", "vanilla"] = setting("lsgan", "adversarial loss")
    lambda_a: float = setting(10.0, "weight of the cycle loss A -> B -> A", min=0, alias="lambda_A")
    lambda_b: float = setting(10.0, "weight of the cycle loss B -> A -> B", min=0, alias="lambda_B")
    lambda_identity: float = setting(0.5, "identity loss weight, as a fraction of lambda_a / lambda_b", min=0)
    lambda_perceptual: float = setting(0.0, "weight of a VGG-19 perceptual cycle loss (0: off, as in the paper)", min=0)
    pool_size: int = setting(50, "image pool of past fakes per discriminator and process (0: none)", min=0,
                             max=100_000)
    lr: float = setting(2e-4, "Adam learning rate", min=0)
    beta1: float = setting(0.5, "Adam beta1", min=0, max=0.999999)
    beta2: float = setting(0.999, "Adam beta2", min=0, max=0.999999)
    winograd: bool = setting(True, "ResNet-block convs as Winograd F(4x4,3x3) on CPU in fp32: faster steps, same "
                                   "weights, same maths up to float rounding; no effect on GPUs")

    def check(self) -> None:
        super().check()
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise ConfigError(f"--crop_size {self.crop_size} is larger than --load_size {self.load_size}: with "
                              f"--preprocess {self.preprocess} the crop is taken from the resized image; lower "
                              "--crop_size or raise --load_size")


@dataclass(frozen=True)
class FastStyleConfig(TrainConfig):
    """``train/fast_style.py``: a feed-forward style network (Johnson et al. 2016), one or several styles."""

    style: tuple[str, ...] = setting((), "style image(s): a.jpg or a.jpg,b.jpg (several styles: one network "
                                         "with conditional instance norm)")
    domain: Literal["A", "B"] = setting("B", "which domain of the shards holds the content photos (B: photos in "
                                             "the original datasets)")
    size: int = setting(256, "training resolution: content images are resized and centre-cropped to size x size",
                        min=16, max=4096)
    style_size: int | None = setting(None, "resize each style image so its longer side is this (none: as it is, "
                                           "up to 1024 px)", min=16, max=8192)
    width: int = setting(32, "channels of the network's first conv (32: the paper; 8-16 for quick tries)", min=2,
                         max=512)
    loss_network: Literal["vgg16", "vgg19"] = setting("vgg16", "loss network (torchvision weights by name)")
    content_layers: tuple[str, ...] = setting(("relu2_2",), "feature reconstruction (content) layers")
    style_layers: tuple[str, ...] = setting(("relu1_2", "relu2_2", "relu3_3", "relu4_3"), "style (Gram) layers")
    style_layer_weights: tuple[float, ...] = setting((), "weight per style layer (empty: 1 each)", min=0)
    content_weight: float = setting(1e5, "weight of the content loss", min=0)
    style_weight: float = setting(1e10, "weight of the style loss", min=0)
    tv_weight: float = setting(0.0, "weight of the total-variation loss (the paper: 1e-6, --preset johnson)", min=0)
    lr: float = setting(1e-3, "Adam learning rate", min=0)
    beta1: float = setting(0.9, "Adam beta1", min=0, max=0.999999)
    beta2: float = setting(0.999, "Adam beta2", min=0, max=0.999999)
    epochs: int = setting(8, "epochs over the content photos at the initial learning rate", min=0)
    epochs_decay: int = setting(4, "epochs of linear decay to zero after that", min=0)
    batch_size: int = setting(4, "content images per step per process", min=1, max=4096)

    def check(self) -> None:
        super().check()
        for flag, layers in (("--content_layers", self.content_layers), ("--style_layers", self.style_layers)):
            if not layers or any(not name.strip() for name in layers):
                raise ConfigError(f"{flag} needs at least one layer name, e.g. relu2_2 (got {','.join(layers)!r})")
        if self.style_layer_weights and len(self.style_layer_weights) != len(self.style_layers):
            raise ConfigError(f"{len(self.style_layers)} --style_layers but {len(self.style_layer_weights)} "
                              "--style_layer_weights; give one weight per layer or none")
        repeated = sorted({s for s in self.style if self.style.count(s) > 1})
        if repeated:
            raise ConfigError(f"--style lists {', '.join(repeated)} more than once; give each style image once")


@dataclass(frozen=True)
class AdaINConfig(TrainConfig):
    """``train/adain.py``: arbitrary style by adaptive instance normalisation (Huang & Belongie 2017). Defaults are
    the paper's (section 6.1 and its code): λ = 10, Adam lr 1e-4 with lr / (1 + 5e-5 · iteration), batch 8, images
    rescaled to 512 on the shorter side then randomly cropped to 256."""

    content_domain: Literal["A", "B"] = setting("B", "which domain of --data (or of --content_data) holds the content "
                                                     "photos (B: photos in the original datasets)")
    style_domain: Literal["A", "B"] = setting("A", "which domain of --data (or of --style_data) holds the style "
                                                   "images (A: the paintings in the original datasets)")
    content_data: str = setting("", "a shard root of content photos (e.g. COCO) instead of --data's content domain")
    style_data: str = setting("", "a shard root of style images (e.g. WikiArt) instead of --data's style domain")
    load_size: int = setting(512, "shorter side of each training image before the random crop", min=16, max=16384)
    size: int = setting(256, "random crop: the training resolution (a multiple of 8)", min=16, max=4096)
    style_weight: float = setting(10.0, "λ: weight of the style loss against the content loss", min=0)
    lr: float = setting(1e-4, "Adam learning rate at the start", min=0)
    lr_decay: float = setting(5e-5, "inverse decay: lr / (1 + lr_decay · iteration), an iteration being 8 images "
                                    "(the paper's batch), so the schedule does not depend on the batch or GPU count",
                              min=0)
    beta1: float = setting(0.9, "Adam beta1", min=0, max=0.999999)
    beta2: float = setting(0.999, "Adam beta2", min=0, max=0.999999)
    epochs: int = setting(16, "epochs over the larger of the two image sets (the paper: 160,000 iterations of 8 "
                              "images, 16 epochs of 80,000)", min=0)
    epochs_decay: int = setting(0, "not used by AdaIN (its decay is --lr_decay); kept 0", min=0, max=0)
    batch_size: int = setting(8, "content (and style) images per step per process", min=1, max=4096)

    def check(self) -> None:
        super().check()
        if self.size % 8:
            raise ConfigError(f"--size {self.size} is not a multiple of 8: the decoder upsamples relu4_1 (1/8 of "
                              "the image) three times; use e.g. 256")
        if self.size > self.load_size:
            raise ConfigError(f"--size {self.size} is larger than --load_size {self.load_size}: the crop is taken "
                              "from the rescaled image; lower --size or raise --load_size")
        if bool(self.content_data) != bool(self.style_data):
            raise ConfigError("give both --content_data and --style_data (two datasets), or neither and --data")

    def check_inputs(self) -> None:
        if not (self.data or self.content_data):
            raise ConfigError("give --data SHARDS (photos in --content_domain, paintings in --style_domain) or "
                              "--content_data PHOTOS --style_data PAINTINGS")
