"""FID and KID between two image sets, from Inception-v3 pool features (2048-d).

Weights: torchvision's Inception-v3 (``inception_v3_google-0cc3c7bd.pth`` in the torch hub cache, or a
path). Numbers from these weights are consistent with each other but not with papers that use the
TensorFlow Inception graph. Random features (tests) are flagged as not comparable at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from PIL import Image

from brushwork.core.errors import BrushworkError
from brushwork.core.linalg import sqrtm_psd
from brushwork.data.images import IMAGENET_MEAN, IMAGENET_STD, to_unit_tensor
from brushwork.data.weights import resolve as resolve_weights

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def inception(weights: str | os.PathLike | None = None, random_features: bool = False, seed: int = 0) -> torch.nn.Module:
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
    """(N, D) float64 features; images are resized to 299x299 (bilinear) and ImageNet-normalised."""
    out, batch = [], []

    def flush():
        x = torch.stack(batch).to(device)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = (x - MEAN.to(device)) / STD.to(device)
        out.append(net(x).double().cpu())
        batch.clear()

    for img in images:
        batch.append(to_unit_tensor(img))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not out:
        raise BrushworkError("no images to compute features of")
    return torch.cat(out)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½), with Tr (Σ1Σ2)^½ = Σ √eig(Σ1^½ Σ2 Σ1^½)."""
    root1 = sqrtm_psd(sigma1.double())
    inner = root1 @ sigma2.double() @ root1
    eig = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0)
    value = float((mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * eig.sqrt().sum())
    return max(value, 0.0)  # a distance: rounding of equal sets gives -1e-12, never shown as -0.000


def fid(f1: torch.Tensor, f2: torch.Tensor) -> float:
    if len(f1) < 2 or len(f2) < 2:
        raise BrushworkError("FID needs at least 2 images per set (and many more to mean anything)")
    return frechet_distance(f1.mean(0), torch.cov(f1.T), f2.mean(0), torch.cov(f2.T))


SMALL_SAMPLE = 50  # below this many images per side FID and KID mostly measure noise


def kid_subset_size(n_fake: int, n_real: int, requested: int) -> int:
    """The KID subset size: as requested, but at most half the smaller set so that subsets differ."""
    smaller = min(n_fake, n_real)
    return requested if requested <= smaller // 2 else max(2, smaller // 2)


def kid(f1: torch.Tensor, f2: torch.Tensor, subsets: int = 10, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD² with the cubic polynomial kernel, mean and std over random subsets of ``subset_size``."""
    n = min(len(f1), len(f2), subset_size)
    if n < 2:
        raise BrushworkError("KID needs at least 2 images per set")
    d = f1.shape[1]
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = f1[torch.randperm(len(f1), generator=g)[:n]]
        y = f2[torch.randperm(len(f2), generator=g)[:n]]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        mmd = (kxx.sum() - kxx.trace()) / (n * (n - 1)) + (kyy.sum() - kyy.trace()) / (n * (n - 1)) - 2 * kxy.mean()
        values.append(float(mmd))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def images_from(source: str, split: str = "test", domain: str = "B") -> Iterator[Image.Image]:
    """Every image of a folder (recursive), or of one split/domain of a shard root."""
    from brushwork.data.stream import image_source, load_images

    for _, img in load_images(image_source(source, split, domain)):  # one decoded image at a time
        if isinstance(img, Exception):
            raise img
        yield img
