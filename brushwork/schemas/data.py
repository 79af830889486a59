"""Configs of the data stage: synthetic data, image checks, downloads, sharding."""

from __future__ import annotations

from dataclasses import dataclass

from brushwork.core.errors import BrushworkError, ConfigError
from brushwork.core.fileio import is_within, safe_name
from brushwork.schemas.fields import Config, setting

DEFAULT_MAX_PIXELS = 80_000_000  # ~9000 x 9000: past this, decoding alone takes GBs of memory


@dataclass(frozen=True)
class SynthConfig(Config):
    """``data_prep/synth.py``: a synthetic unpaired dataset with a known mapping."""

    out: str = setting("data/raw/synth", "output folder (trainA trainB testA testB inside)")
    n_train: int = setting(32, "training images per domain", min=1, max=1_000_000)
    n_test: int = setting(8, "test images per domain", min=0, max=1_000_000)
    image_size: int = setting(64, "image side in pixels", min=8, max=4096, renamed="size")
    seed: int = setting(0, "dataset seed (same seed, same bytes)", min=0)


@dataclass(frozen=True)
class CheckImagesConfig(Config):
    """``data_prep/check_images.py``: run every image through the validator."""

    folders: tuple[str, ...] = setting((), "folders (or files) to check, recursively", positional=True)
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "refuse images with more pixels than this (decompression "
                                                  "bombs)", min=1)


@dataclass(frozen=True)
class DownloadConfig(Config):
    """``data_prep/download.py``: fetch and extract an original CycleGAN dataset."""

    name: str = setting("monet2photo", "dataset: monet2photo, cezanne2photo, ukiyoe2photo, vangogh2photo, ...",
                        positional=True)
    out: str = setting("data/raw", "folder to put {name}.zip and the extracted {name}/ in", renamed="dest")
    url: str = setting("", "the zip's own URL, instead of the official one (a file, e.g. "
                           "https://mirror.example/cyclegan/monet2photo.zip)")
    mirror: str = setting("", "a base URL holding the official host's file names: MIRROR/{name}.zip (with --model, "
                              "the weights' file names)")
    from_path: str = setting("", "use this local zip or folder instead of downloading", alias="from")
    retries: int = setting(3, "retries after a failed transfer (with backoff), resuming each time", min=0, max=50)
    keep_zip: bool = setting(True, "keep the zip after extracting it")
    model: str = setting("", "fetch released weights by name instead of a dataset (style_monet, vgg19, ...: the "
                             "same as python -m brushwork.pretrained NAME)")

    def check(self) -> None:
        if self.url and self.mirror:
            raise ConfigError("give --url (the zip itself) or --mirror (a folder of zips), not both")
        if self.url.endswith("/"):
            raise ConfigError(f"--url {self.url} names a folder; give the zip's own URL, or pass the folder as "
                              "--mirror")
        if self.url and self.model:
            raise ConfigError("--url is a dataset zip's URL; for --model give --mirror BASE_URL")
        try:  # the name becomes OUT/NAME and OUT/NAME.zip: it must stay a plain name inside --out
            safe_name(self.name, "dataset name")
        except BrushworkError as e:
            raise ConfigError(str(e)) from None


@dataclass(frozen=True)
class PretrainedConfig(Config):
    """``python -m brushwork.pretrained``: released CycleGAN generators, VGG and Inception weights."""

    names: tuple[str, ...] = setting((), "what to fetch: a released CycleGAN model (style_monet, monet2photo, "
                                         "...), vgg16, vgg19 or inception; see --list", positional=True)
    list: bool = setting(False, "list every known name with its URL and where it goes, then exit")
    out: str = setting("", "folder for the files (default: the torch hub cache, where torchvision and brushwork "
                           "look for them)", renamed="dest")
    mirror: str = setting("", "fetch from this base URL instead of the official one (a mirror holding the same "
                              "file names)", renamed="url")
    from_path: str = setting("", "use this local file instead of downloading (one name only)", alias="from")
    retries: int = setting(3, "retries after a failed transfer (with backoff), resuming each time", min=0, max=50)


@dataclass(frozen=True)
class ShardConfig(Config):
    """``data_prep/shard.py``: images → validated WebDataset shards."""

    input: str = setting("", "dataset folder or .zip in the original layout (trainA trainB testA testB), or a "
                             "plain folder of photos (domain B)", positional=True)
    out: str = setting("", "output folder or fsspec URL, e.g. data/shards/monet2photo or s3://bucket/monet2photo")
    a: str = setting("", "your own domain-A training folder (instead of INPUT; alone: a one-domain dataset)")
    b: str = setting("", "your own domain-B training folder (instead of INPUT; alone: a one-domain dataset)")
    test_a: str = setting("", "optional domain-A test folder (with --a/--b)")
    test_b: str = setting("", "optional domain-B test folder (with --a/--b)")
    samples_per_shard: int = setting(64, "images per shard (any number of ranks and workers can read any shard "
                                         "count)", min=1, max=1_000_000)
    max_shard_bytes: int = setting(0, "also start a new shard past this many source bytes (0: no limit)", min=0)
    max_side: int = setting(0, "downscale so the longer side is at most this many pixels (0: keep)", min=0,
                            max=65535)
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, "refuse images with more pixels than this (decompression bombs)",
                              min=1)
    workers: int = setting(1, "processes writing shards in parallel", min=1, max=512)
    job_index: int = setting(0, "this job's index in an array of num_jobs (SLURM_ARRAY_TASK_ID)", min=0)
    num_jobs: int = setting(1, "jobs sharing the work; the manifest is written by a final run with 1 job", min=1)
    manifest_only: bool = setting(False, "write nothing but check all shards and write the manifest")
    overwrite: bool = setting(False, "out holds shards of other input or settings: delete them and rebuild")
    reindex: bool = setting(False, "add the sample offsets this version reads to the shards in --out (made by an "
                                   "earlier version): each tar is read once and kept as it is")

    def check_inputs(self) -> None:
        if not self.out:
            raise ConfigError("--out is required (e.g. --out data/shards/monet2photo)")
        if not self.reindex and not (self.input or self.a or self.b):
            raise ConfigError("no input: give a dataset folder/zip, a folder of images, or --a DIR and/or --b DIR")
        if self.input and (self.a or self.b):
            raise ConfigError("give either INPUT or --a/--b, not both")
        for flag, folder in (("INPUT", self.input), ("--a", self.a), ("--b", self.b), ("--test_a", self.test_a),
                             ("--test_b", self.test_b)):
            if folder and self.out and is_within(folder, self.out):
                raise ConfigError(f"{flag} {folder} lies inside --out {self.out}: shards would be written among "
                                  "(and a rebuild would clear) the images; choose an --out outside the inputs")

    def check(self) -> None:
        if self.job_index >= self.num_jobs:
            raise ConfigError(f"--job_index must be below --num_jobs ({self.num_jobs}); got {self.job_index}")
        if 0 < self.max_side < 8:
            raise ConfigError(f"--max_side {self.max_side} would shrink every image to a few pixels; give 0 "
                              "(keep) or at least 8")
