"""FID and KID between two image sets: torchmetrics' metrics on 2048-d Inception pool features.

Features (``--features``): ``fid_inception``, the standard FID Inception (the TensorFlow graph's weights, as
torch-fidelity and torchmetrics load them: ``python -m brushwork.pretrained fid_inception``), whose numbers compare
with published ones; or ``torchvision``, torchvision's Inception-v3 (numbers consistent among themselves only).
Random features (tests) are flagged as not comparable at all. Each image's features are computed once and handed
to torchmetrics' FID and KID (which would each run the network again).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from PIL import Image

from brushwork.core.errors import BrushworkError
from brushwork.data.images import IMAGENET_MEAN, IMAGENET_STD, to_unit_tensor
from brushwork.data.weights import resolve as resolve_weights

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def inception(weights: str | os.PathLike | None = None, random_features: bool = False,
              seed: int = 0) -> torch.nn.Module:
    """Inception-v3 up to the 2048-d average pool, in eval mode."""
    import torchvision

    if random_features:
        return random_feature_net(seed)
    path = resolve_weights(weights, "inception", "--inception_weights", "--random_inception")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
        net.load_state_dict(state)
    except Exception as e:
        raise BrushworkError(f"{path}: not torchvision Inception-v3 weights ({str(e).splitlines()[0][:120]})") from None
    net.AuxLogits = None
    net.aux_logits = False
    net.fc = torch.nn.Identity()
    return net.eval()


class FIDInception(torch.nn.Module):
    """The standard FID Inception (torch-fidelity's port of the TensorFlow graph), loaded from a local file:
    takes images in [0, 1] of any one size, resizes them as TensorFlow did (inside), gives 2048-d features."""

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = resolve_weights(weights, "fid_inception", "--inception_weights", "--random_inception")
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                   feature_extractor_weights_path=str(path)).eval()
        except Exception as e:
            raise BrushworkError(f"{path}: not the FID Inception weights ({str(e).splitlines()[0][:120]}); fetch "
                                 "them with python -m brushwork.pretrained fid_inception") from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x.clamp(0, 1) * 255).round().to(torch.uint8))[0]


def feature_net(kind: str, weights: str | os.PathLike | None = None, random_features: bool = False) -> torch.nn.Module:
    """The feature extractor of ``--features`` (fid_inception or torchvision), or the random test one."""
    if random_features:
        return random_feature_net()
    return FIDInception(weights) if kind == "fid_inception" else inception(weights)


def random_feature_net(seed: int = 0) -> torch.nn.Module:
    """A fixed random conv net (256-d): for tests only. A random Inception is useless here: without
    trained batch-norm statistics its activations explode and all images map to nearly one vector."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers, width = [], 3
        for out in (32, 64, 128, 256):
            conv = torch.nn.Conv2d(width, out, 3, stride=2, padding=1)
            torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            layers += [conv, torch.nn.ReLU()]
            width = out
        return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()


@torch.no_grad()
def features(net: torch.nn.Module, images: Iterable[Image.Image], batch_size: int = 32, device="cpu") -> torch.Tensor:
    """(N, D) float64 features of images in [0, 1]. The FID Inception resizes inside (as TensorFlow did, so each
    batch holds one image size); the others get 299x299 (bilinear, antialiased) and ImageNet statistics."""
    out, batch = [], []
    standard = isinstance(net, FIDInception)

    def flush():
        if standard:
            out.append(net(torch.stack(batch).to(device)).double().cpu())
        else:
            x = torch.cat([F.interpolate(t[None].to(device), size=(299, 299), mode="bilinear", align_corners=False,
                                         antialias=True) for t in batch])
            out.append(net((x - MEAN.to(device)) / STD.to(device)).double().cpu())
        batch.clear()

    for img in images:
        x = to_unit_tensor(img)
        if batch and (len(batch) == batch_size or (standard and x.shape != batch[0].shape)):
            flush()
        batch.append(x)
    if batch:
        flush()
    if not out:
        raise BrushworkError("no images to compute features of")
    return torch.cat(out)


SMALL_SAMPLE = 50  # below this many images per side FID and KID mostly measure noise


def kid_subset_size(n_fake: int, n_real: int, requested: int) -> int:
    """The KID subset size: as requested, but at most half the smaller set so that subsets differ."""
    smaller = min(n_fake, n_real)
    return requested if requested <= smaller // 2 else max(2, smaller // 2)


class _Precomputed(torch.nn.Module):
    """Features computed once, handed to torchmetrics as its inputs (its FID and KID would each run the network)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def scores(f_fake: torch.Tensor, f_real: torch.Tensor, kid_subsets: int, kid_subset_size: int,
           seed: int = 0) -> dict:
    """{"fid", "kid", "kid_std"} by torchmetrics' FrechetInceptionDistance and KernelInceptionDistance (the
    cubic polynomial kernel, subsets drawn from a seeded generator) on the features."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if len(f_fake) < 2 or len(f_real) < 2:
        raise BrushworkError("FID and KID need at least 2 images per set (and many more to mean anything)")
    dim = f_fake.shape[1]
    fid_metric = FrechetInceptionDistance(feature=_Precomputed(dim)).double()
    with warnings.catch_warnings():  # it holds the features: they are in memory already (N x 2048 floats)
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer")
        kid_metric = KernelInceptionDistance(feature=_Precomputed(dim), subsets=kid_subsets,
                                             subset_size=kid_subset_size).double()
    for metric in (fid_metric, kid_metric):
        metric.update(f_fake.double(), real=False)
        metric.update(f_real.double(), real=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kid_mean, kid_std = kid_metric.compute()
    return {"fid": max(float(fid_metric.compute()), 0.0),  # a distance: equal sets round to -1e-12, never -0.000
            "kid": float(kid_mean), "kid_std": float(kid_std)}


def images_from(source: str, split: str = "test", domain: str = "B") -> Iterator[Image.Image]:
    """Every image of a folder (recursive), or of one split/domain of a shard root."""
    from brushwork.data.stream import image_source, load_images

    for _, img in load_images(image_source(source, split, domain)):  # one decoded image at a time
        if isinstance(img, Exception):
            raise img
        yield img
