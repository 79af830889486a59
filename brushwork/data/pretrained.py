"""Released weights by name: the original CycleGAN models, torchvision's VGG-16/19 and the FID Inception.

  python -m brushwork.pretrained style_monet vgg19       # fetch into the torch hub cache
  python -m brushwork.pretrained --list

Files go where their users look: ``{torch hub}/checkpoints/`` (torchvision's own cache, so VGG and
Inception are found without any flag) and ``{torch hub}/checkpoints/cyclegan/{name}.pth`` for the
released CycleGAN generators (``translate.py --model style_monet`` finds them there). Downloads go
through ``download.fetch``: progress, retries, resume of a partial file. Every file's sha256 is
recorded in ``brushwork_downloads.json`` beside it and checked on later use; torchvision's file
names carry the first 8 hex digits of their sha256, which is checked at download. Offline, one line
names the URL and where to put the file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from brushwork.core.errors import BrushworkError
from brushwork.core.fileio import atomic_write_text, file_sha256
from brushwork.core.log import say
from brushwork.data.download import fetch

CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"
TORCHVISION_URL = "https://download.pytorch.org/models/{file}"
RECORD = "brushwork_downloads.json"

# scripts/download_cyclegan_model.sh of the original code; each is one generator (resnet_9blocks, no dropout)
CYCLEGAN_MODELS = {
    "apple2orange": "apple -> orange", "orange2apple": "orange -> apple",
    "summer2winter_yosemite": "Yosemite summer -> winter", "winter2summer_yosemite": "Yosemite winter -> summer",
    "horse2zebra": "horse -> zebra", "zebra2horse": "zebra -> horse",
    "monet2photo": "Monet painting -> photo", "style_monet": "photo -> Monet", "style_cezanne": "photo -> Cezanne",
    "style_ukiyoe": "photo -> Ukiyo-e", "style_vangogh": "photo -> Van Gogh",
    "sat2map": "satellite -> map", "map2sat": "map -> satellite",
    "cityscapes_photo2label": "street photo -> labels", "cityscapes_label2photo": "labels -> street photo",
    "facades_photo2label": "facade photo -> labels", "facades_label2photo": "labels -> facade photo",
    "iphone2dslr_flower": "iPhone flower photo -> DSLR (shallow depth of field)",
}
# torchvision's files: the 8 hex digits after the dash are the start of the file's sha256
TORCHVISION_FILES = {
    "vgg16": ("vgg16-397923af.pth", "VGG-16 (fast-style loss network)"),
    "vgg19": ("vgg19-dcbb9e9d.pth", "VGG-19 (Gatys, perceptual losses)"),
    "inception": ("inception_v3_google-0cc3c7bd.pth", "torchvision's Inception-v3 (fid.py --features torchvision)"),
}
# the standard FID Inception: the TensorFlow graph's weights as torch-fidelity (and torchmetrics) load them
FID_INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
FID_INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{FID_INCEPTION_FILE}"


@dataclass(frozen=True)
class Weights:
    name: str
    url: str
    path: Path
    what: str
    sha256_prefix: str = ""  # known start of the sha256 (torchvision names), else checked against the record


def hub_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def known() -> list[str]:
    return list(CYCLEGAN_MODELS) + list(TORCHVISION_FILES) + ["fid_inception"]


def lookup(name: str, dest: str | os.PathLike | None = None, base_url: str = "") -> Weights:
    """Where ``name`` comes from and where it goes; BrushworkError listing the known names."""
    root = Path(dest) if dest else hub_dir()
    if name in CYCLEGAN_MODELS:
        url = f"{base_url.rstrip('/')}/{name}.pth" if base_url else CYCLEGAN_URL.format(name=name)
        path = root / "cyclegan" / f"{name}.pth" if not dest else root / f"{name}.pth"
        return Weights(name, url, path, f"CycleGAN generator, {CYCLEGAN_MODELS[name]}")
    if name in TORCHVISION_FILES:
        file, what = TORCHVISION_FILES[name]
        url = f"{base_url.rstrip('/')}/{file}" if base_url else TORCHVISION_URL.format(file=file)
        return Weights(name, url, root / file, what, file.rsplit("-", 1)[1].split(".")[0])
    if name == "fid_inception":
        url = f"{base_url.rstrip('/')}/{FID_INCEPTION_FILE}" if base_url else FID_INCEPTION_URL
        return Weights(name, url, root / FID_INCEPTION_FILE, "the standard FID Inception (FID / KID, as published)",
                       "6726825d")
    raise BrushworkError(f"unknown weights {name!r}; known: {', '.join(known())}")


def _records(folder: Path) -> dict:
    path = folder / RECORD
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


def _record(w: Weights, digest: str) -> None:
    records = _records(w.path.parent)
    records[w.path.name] = {"name": w.name, "url": w.url, "sha256": digest, "bytes": w.path.stat().st_size,
                            "fetched": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_text(w.path.parent / RECORD, json.dumps(records, indent=1, sort_keys=True) + "\n")


def verify(w: Weights) -> str:
    """The file's sha256 if it matches what is known of it; BrushworkError naming the file otherwise."""
    digest = file_sha256(w.path)
    if w.sha256_prefix and not digest.startswith(w.sha256_prefix):
        raise BrushworkError(f"{w.path}: sha256 {digest[:16]}... does not match {w.url} (starts with "
                             f"{w.sha256_prefix}); the file is damaged or another one: delete it and fetch it again")
    recorded = _records(w.path.parent).get(w.path.name, {}).get("sha256")
    if recorded and recorded != digest:
        raise BrushworkError(f"{w.path}: changed since it was downloaded (sha256 {digest[:16]}..., recorded "
                             f"{recorded[:16]}...); delete it and fetch it again")
    return digest


def fetch_weights(w: Weights, progress=None, retries: int = 3, source: str = "") -> Path:
    """Download (or copy from ``source``) into place, check, record; a file already in place is only checked."""
    if w.path.is_file():
        verify(w)
        return w.path
    w.path.parent.mkdir(parents=True, exist_ok=True)
    if source:
        if not Path(source).is_file():
            raise BrushworkError(f"--from {source}: no such file")
        url = Path(source).resolve().as_uri()
    else:
        url = w.url
    fetch(url, w.path, progress, retries=retries,
          hint=f"download {w.url} another way and put it at {w.path} (or pass --from FILE)")
    try:
        digest = verify(w)
        check_content(w)  # before its sha256 is recorded as good: a wrong file must not be trusted later
    except BrushworkError:
        w.path.unlink(missing_ok=True)
        raise
    _record(w, digest)
    return w.path


# a key every file of each kind holds: what says the download is those weights, not a page or other weights
EXPECTED_KEY = {"vgg16": "features.0.weight", "vgg19": "features.0.weight", "inception": "Conv2d_1a_3x3.conv.weight",
                "fid_inception": "Conv2d_1a_3x3.conv.weight"}


def check_content(w: Weights) -> None:
    """The file loads with ``weights_only`` as a state dict of the expected network; BrushworkError otherwise."""
    import torch

    head = w.path.read_bytes()[:256].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"{")):
        raise BrushworkError(f"{w.url} answered with a web page or a message, not weights (saved nothing); check the "
                             "URL or fetch the file another way and pass --from FILE")
    try:
        state = torch.load(w.path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unpickling failure: the bytes are not a weights file
        raise BrushworkError(f"{w.url}: not a PyTorch weights file ({str(e).splitlines()[0][:100]}); saved nothing; "
                             "fetch it again or pass --from FILE") from None
    key = EXPECTED_KEY.get(w.name, "model.1.weight")  # the released CycleGAN generators: the original's names
    if not isinstance(state, dict) or not isinstance(state.get(key), torch.Tensor):
        raise BrushworkError(f"{w.url}: loads, but holds no {key} (not the {w.what} weights); saved nothing")


def cyclegan_model(name: str) -> Path:
    """The local file of a released CycleGAN model, checked; one line saying how to fetch it if absent."""
    w = lookup(name)
    if name not in CYCLEGAN_MODELS:
        raise BrushworkError(f"{name!r} is not a CycleGAN model; known: {', '.join(CYCLEGAN_MODELS)}")
    if not w.path.is_file():
        raise BrushworkError(f"{name} is not downloaded yet: python -m brushwork.pretrained {name} (fetches "
                             f"{w.url} into {w.path})")
    verify(w)
    return w.path


def run(cfg) -> int:
    """The command: fetch each name (or list them all)."""
    from brushwork.core.progress import Progress

    if cfg.list or not cfg.names:
        for name in known():
            w = lookup(name, cfg.out or None, cfg.mirror)
            state = "present" if w.path.is_file() else "missing"
            say(f"{name:<24} {w.what}\n    {w.url} -> {w.path} ({state})")
        return 0
    if cfg.from_path and len(cfg.names) > 1:
        raise BrushworkError("--from gives one file: name one model with it")
    for name in cfg.names:
        w = lookup(name, cfg.out or None, cfg.mirror)
        with Progress(0, desc=name, unit="B", every_seconds=10) as progress:
            def report(done, total, progress=progress):
                progress.set_total(total or 0)
                progress.update(done - progress.done)

            path = fetch_weights(w, report, cfg.retries, cfg.from_path)
        say(f"{name}: {path} (sha256 {file_sha256(path)[:16]}...)")
    return 0
