"""Applying a trained network to images: which weights, test-time scale, any image size, batches of one size.

Weights are named when used: ``load_generator`` returns the network and a line saying exactly
which file (and training step) it came from. A run dir means its newest checkpoint (or the one of
``step``); a ``.pth`` file is an exported generator, the original code's, or a ``models.pt``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from brushwork.core import records
from brushwork.core.errors import BrushworkError
from brushwork.data.images import from_tensor, to_tensor
from brushwork.models import registry
from brushwork.models.networks import ResnetGenerator, generator_arch, strip_wrappers
from brushwork.training import checkpoint

MULTIPLE = 4   # two stride-2 downsamplings
MIN_SIDE = 8   # the smallest side the networks' reflection pads accept after downsampling


def pad_for_network(x: torch.Tensor, multiple: int = MULTIPLE, min_side: int = MIN_SIDE
                    ) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (reflect; replicate where the image is too small to reflect) to a multiple of 4, at least 8 px."""
    h, w = x.shape[-2:]
    th, tw = max(min_side, -(-h // multiple) * multiple), max(min_side, -(-w // multiple) * multiple)
    ph, pw = th - h, tw - w
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"  # reflect needs pad < size
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def test_scale(img: Image.Image, mode: str, size: int | None) -> Image.Image:
    """The test-time scale of ``--preprocess``: none, resize (size²), scale_width, scale_shorter/longer_side."""
    if mode == "none" or not size:
        return img
    w, h = img.size
    if mode == "resize":
        target = (size, size)
    elif mode == "scale_width":
        target = (size, max(1, round(h * size / w)))
    else:
        side = min(w, h) if mode == "scale_shorter_side" else max(w, h)
        target = (max(1, round(w * size / side)), max(1, round(h * size / side)))
    return img if target == img.size else img.resize(target, Image.Resampling.BICUBIC)


@torch.no_grad()
def apply_batch(net: torch.nn.Module, images: list[Image.Image], device="cpu", **kwargs) -> list[Image.Image]:
    """Apply ``net`` to images of one size together at full resolution (images in [-1, 1])."""
    x = torch.stack([to_tensor(img) for img in images]).to(device)
    padded, (h, w) = pad_for_network(x)
    y = net(padded, **kwargs)[..., :h, :w]
    return [from_tensor(t) for t in y]



def stream_size_batches(items, size_of, batch_size: int, sizes_held: int = 2):
    """Batches of equal-size items from a stream, holding at most ``sizes_held`` partial batches.

    A batch goes out when it is full; when an item of a new size would make one size too many, the
    fullest partial batch goes out first. So memory is bounded by a few batches however long the
    stream, and photos in two orientations (the usual case) still batch fully.
    """
    groups: dict = {}
    for item in items:
        group = groups.setdefault(size_of(item), [])
        group.append(item)
        if len(group) == batch_size:
            yield groups.pop(size_of(item))
        elif len(groups) > sizes_held:
            yield groups.pop(max(groups, key=lambda k: len(groups[k])))
    yield from groups.values()


# ---------------------------------------------------------------------------------------------
# Which weights


def _generator_from_state(state, what: str, winograd: bool) -> ResnetGenerator:
    if not isinstance(state, dict):
        raise BrushworkError(f"{what}: holds a {type(state).__name__}, not a generator state dict")
    registry.expect(what, "cyclegan", registry.kind_of_state(state), is_file=True)
    state = strip_wrappers(state)
    try:
        arch = generator_arch(state)
    except (ValueError, AttributeError, IndexError):
        raise BrushworkError(f"{what}: not a ResNet generator this code can load (no model.1.weight); pass a "
                             "run dir, an export/G_*.pth or an original-code generator .pth") from None
    net = ResnetGenerator(arch["in_channels"], arch["out_channels"], arch["ngf"], arch["n_blocks"], winograd)
    checkpoint.load_state_dict_strict(net, state, what)
    return net.eval()


def load_generator(source: str | Path, direction: str = "AtoB", step: int | None = None,
                   winograd: bool = True) -> tuple[ResnetGenerator, str]:
    """(generator, which weights) from a run dir (newest checkpoint or ``step``) or a ``.pth`` file.

    ``direction`` picks G_A (AtoB) or G_B (BtoA) of a run or a models.pt; a single generator file
    (exported, or the original code's / a released model) is used as it is.
    """
    source = Path(source)
    name = {"AtoB": "G_A", "BtoA": "G_B"}[direction]
    if source.is_dir():
        if not (source / checkpoint.CHECKPOINTS).is_dir() and (source / checkpoint.EXPORT / f"{name}.pth").is_file():
            path = source / checkpoint.EXPORT / f"{name}.pth"  # an export folder copied alone
            return _generator_from_state(checkpoint.load_file(path), str(path), winograd), f"{name} from {path}"
        registry.expect(source, "cyclegan", registry.recorded_kind(source))
        ckpt = checkpoint.at_step(source, step)
        models = checkpoint.load_file(ckpt / "models.pt")
        what = f"{ckpt / 'models.pt'}[{name!r}]"
        registry.expect(source, "cyclegan", registry.kind_of_state(models))  # a run made before kinds were recorded
        net = _generator_from_state(models.get(name) if isinstance(models, dict) else models, what, winograd)
        return net, f"{name} of {source} at step {checkpoint.step_of(ckpt)} ({ckpt / 'models.pt'})"
    if step is not None:
        raise BrushworkError(f"--step needs a run dir; {source} is a file")
    if not source.is_file():
        raise BrushworkError(f"{source}: no such run folder or generator file")
    state = checkpoint.load_file(source)
    if isinstance(state, dict) and name in state and isinstance(state[name], dict):
        return _generator_from_state(state[name], f"{source}[{name!r}]", winograd), f"{name} from {source}"
    info = source.parent / "info.json"
    at = ""
    if info.is_file():
        exported = records.read_json(info, records.ExportInfo, "restore it or remove it")
        at = f" (exported at step {exported.get('step', '?')})"
    return _generator_from_state(state, str(source), winograd), f"generator {source}{at}"
