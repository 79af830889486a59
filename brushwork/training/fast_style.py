"""Fast style transfer: one rank's training state (Johnson et al. 2016) and loading trained networks.

The network (``style_net.TransformerNet``) learns to paint any photo in the style(s) in one forward
pass, trained with Gatys's perceptual losses measured by a fixed loss network (VGG-16 by default,
as the paper; VGG-19 by name): content (feature reconstruction) at ``content_layers``, style as
Gram matrices at ``style_layers`` against each style image's Grams, plus total variation. The
style Grams are computed once, when the trainer is built. Several styles train one network with
conditional instance norm; each sample of a batch gets a style drawn from the rank's own RNG (part
of the checkpoint, so resume is exact).

The trainer offers the interface ``trainer.TrainingLoop`` drives, exactly as ``CycleGANTrainer``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

from brushwork.core import presets, records
from brushwork.core.errors import BrushworkError
from brushwork.data.images import cover_crop, from_unit_tensor, load_image, to_unit_tensor
from brushwork.gatys import objective as gatys
from brushwork.models import registry, vgg
from brushwork.models.style_net import TransformerNet
from brushwork.training import checkpoint
from brushwork.training.base import TrainerBase, rank_seed
from brushwork.training.trainer import fingerprint

MAX_STYLE_SIDE = 1024  # style images larger than this are scaled down (their Grams need no more)
SAMPLE_STYLES = 16  # a many-style network's samples show its first 16 styles


def style_name(path: str) -> str:
    return Path(path).stem


def load_style_images(paths: tuple[str, ...], size: int | None) -> tuple[list[torch.Tensor], list[str]]:
    """(1, 3, H, W) tensors in [0, 1] scaled so the longer side is ``size`` (or at most 1024), and their sha256s."""
    from brushwork.evaluation.translate import test_scale

    images, digests = [], []
    for path in paths:
        img = load_image(path)
        longer = size or min(max(img.size), MAX_STYLE_SIDE)
        images.append(to_unit_tensor(test_scale(img, "scale_longer_side", longer))[None])
        digests.append(hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16])
    return images, digests


class FastStyleTrainer(TrainerBase):
    """The transformation network, its optimiser and scaler, the frozen loss network and the style targets."""

    kind = "fast_style"

    def __init__(self, cfg, accelerator=None, *, rank: int = 0, device: str | torch.device = "cpu",
                 fused_adam: bool | None = None):
        if not cfg.style:
            raise BrushworkError("give --style IMAGE (or --style a.jpg,b.jpg for one network of several styles)")
        super().__init__(cfg, accelerator, device=device, fused_adam=fused_adam)
        self.data_domains = (cfg.domain,)
        self.styles = [style_name(p) for p in cfg.style]
        style_images, digests = load_style_images(cfg.style, cfg.style_size)
        self.style_images = style_images  # shown above their results in the samples
        self.arch = {"width": cfg.width, "n_styles": len(cfg.style), "styles": digests}
        torch.manual_seed(cfg.seed)  # the same init on every rank
        net = TransformerNet(cfg.width, len(cfg.style))
        wrapped, plain = self.prepare({"net": net}, {"net": self.adam(net.parameters())})
        self.net, self.plain, self.opt = wrapped["net"], plain["net"], self.optimizers["net"]
        self.style_rng = torch.Generator().manual_seed(rank_seed(cfg.seed, rank, 0))
        self.loss_net = self._loss_network()
        self.weights = list(cfg.style_layer_weights) or [1.0] * len(cfg.style_layers)
        with torch.no_grad():
            feats = [self.loss_net(img.to(self.device)) for img in style_images]
            self.style_grams = {l: torch.cat([gatys.gram_matrix(f[l].float(), "mean") for f in feats])
                                for l in cfg.style_layers}  # layer -> (n_styles, C, C)

    def _loss_network(self) -> vgg.VGGFeatures:
        cfg = self.cfg
        state = vgg.load_state(cfg.vgg_weights or None, random_init=cfg.random_vgg, seed=cfg.seed,
                               arch=cfg.loss_network)
        layers = list(dict.fromkeys((*cfg.content_layers, *cfg.style_layers)))
        return vgg.VGGFeatures(layers, state, pooling="max", arch=cfg.loss_network).to(self.device).eval()

    # -- training --------------------------------------------------------------------------------

    def losses(self, x: torch.Tensor, y: torch.Tensor, styles: torch.Tensor) -> dict[str, torch.Tensor]:
        """Content, style and TV losses of stylised ``y`` for content ``x`` and per-sample style indices."""
        cfg = self.cfg
        with torch.no_grad():
            target = self.loss_net(x)
        feats = self.loss_net(y)
        content = sum(F.mse_loss(feats[l].float(), target[l].float()) for l in cfg.content_layers)
        style = sum(w * gatys.style_layer_loss(feats[l].float(), self.style_grams[l][styles], "mean").mean()
                    for w, l in zip(self.weights, cfg.style_layers))
        out = {"content": cfg.content_weight * content, "style": cfg.style_weight * style}
        if cfg.tv_weight:
            out["tv"] = cfg.tv_weight * gatys.total_variation(y.float()).mean()
        return out

    def step(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        x = (batch[self.cfg.domain] + 1) / 2  # the loader's [-1, 1] → the networks' [0, 1]
        styles = torch.randint(len(self.styles), (x.shape[0],), generator=self.style_rng).to(self.device)
        with self.autocast():
            y = self.net(x, styles)
            loss = self.losses(x, y, styles)
            total = sum(loss.values())
        self.opt.zero_grad(set_to_none=True)
        self.backward(total)
        self.opt.step()
        return {k: v.detach() for k, v in loss.items()}, {"content": x, "stylized": y.detach().clamp(0, 1),
                                                          "styles": styles}

    # -- what the loop asks ----------------------------------------------------------------------

    def summary(self, mean: dict[str, float]) -> str:
        return " ".join(f"{k} {v:.3g}" for k, v in mean.items())

    def sample(self, images: dict) -> tuple[list[torch.Tensor], list[str]]:
        """One photo of the batch painted in every style (the first SAMPLE_STYLES), each style image above its
        result: columns content | style 1 | style 2 ..., in [-1, 1]."""
        x = images["content"][:1].float()
        k = min(len(self.styles), SAMPLE_STYLES)
        with torch.no_grad():
            y = self.plain(x.repeat(k, 1, 1, 1), torch.arange(k, device=x.device)).float().clamp(0, 1)
        hw = tuple(x.shape[-2:])
        columns = [torch.cat([torch.ones_like(x), x])]  # a blank above the content
        columns += [torch.cat([cover_crop(from_unit_tensor(self.style_images[i][0]), hw).to(x), y[i:i + 1]])
                    for i in range(k)]
        return [c * 2 - 1 for c in columns], ["content", *(f"style {name}" for name in self.styles[:k])]

    def state_dict(self) -> dict:
        return {"models": {"net": self.plain.state_dict()},
                "optim": self.optim_state(),
                "rank": {"rng_cpu": torch.get_rng_state(), "style_rng": self.style_rng.get_state(),
                         "weights_fingerprint": fingerprint(self.plain)}}

    def load_state_dict(self, state: dict) -> None:
        checkpoint.load_state_dict_strict(self.plain, state["models"].get("net"), "models.pt['net']")
        self.load_optim_state(state["optim"])
        if state["rank"]:
            torch.set_rng_state(state["rank"]["rng_cpu"])
            self.style_rng.set_state(state["rank"]["style_rng"])

    def export(self, run_dir: Path, info: dict) -> Path:
        return checkpoint.export(run_dir, {"net": self.plain},
                                 {**info, "width": self.cfg.width, "styles": self.styles})


# ---------------------------------------------------------------------------------------------
# Loading a trained network


def _net_from_state(state, what: str) -> TransformerNet:
    registry.expect(what, "fast_style", registry.kind_of_state(state), is_file=True)
    if not isinstance(state, dict) or "down.0.norm.weight" not in state:
        raise BrushworkError(f"{what}: not a fast-style network (no down.0.norm.weight); pass a run dir of "
                             "train/fast_style.py or its export/net.pth")
    n_styles, width = state["down.0.norm.weight"].shape
    blocks = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    net = TransformerNet(width, n_styles, blocks)
    checkpoint.load_state_dict_strict(net, state, what)
    return net.eval()


def style_paths_of(source: str | Path) -> list[str]:
    """The style image files a run (or the run above an export/net.pth) was trained on, as its config.toml names
    them; [] when unknown."""

    source = Path(source)
    run = source if source.is_dir() else source.parent.parent if source.parent.name == "export" else None
    if run is None or not (run / "config.toml").is_file():
        return []
    return [str(p) for p in presets.read_resolved(run / "config.toml", records.RunConfig).get("style", [])]


def load_stylizer(source: str | Path, step: int | None = None) -> tuple[TransformerNet, str, list[str]]:
    """(network, which weights, style names) from a run dir (newest checkpoint or ``step``) or an exported .pth."""


    source = Path(source)
    if source.is_dir():
        registry.expect(source, "fast_style", registry.recorded_kind(source))
        ckpt = checkpoint.at_step(source, step)
        models = checkpoint.load_file(ckpt / "models.pt")
        registry.expect(source, "fast_style", registry.kind_of_state(models))  # a run made before kinds were recorded
        net = _net_from_state(models.get("net") if isinstance(models, dict) else models, f"{ckpt / 'models.pt'}")
        recorded = presets.read_resolved(source / "config.toml", records.RunConfig)
        styles = [style_name(p) for p in recorded.get("style", [])]
        used = f"fast-style network of {source} at step {checkpoint.step_of(ckpt)} ({ckpt / 'models.pt'})"
    elif source.is_file():
        if step is not None:
            raise BrushworkError(f"--step needs a run dir; {source} is a file")
        net = _net_from_state(checkpoint.load_file(source), str(source))
        info = source.parent / "info.json"
        styles = []
        if info.is_file():
            styles = list(records.read_json(info, records.ExportInfo,
                                            "restore it or remove it (styles are then numbered)").get("styles", []))
        used = f"fast-style network {source}"
    else:
        raise BrushworkError(f"{source}: no such run folder or network file")
    if len(styles) != net.n_styles:
        styles = [f"style {i}" for i in range(net.n_styles)]
    return net, used, styles


def export_onnx(net: TransformerNet, weights: torch.Tensor, path: str | Path, check: torch.Tensor,
                tolerance: float = 1e-4) -> float:
    """Export the network with its style weights fixed to ONNX (dynamic batch, height, width; sides must be
    multiples of 4), then run it in onnxruntime on ``check`` (N, 3, H, W) and on a second size; returns the
    largest difference from torch's output (BrushworkError above ``tolerance``)."""
    from brushwork.models.onnx_export import export_checked
    from brushwork.models.style_net import FixedStyle

    model = FixedStyle(net.float().cpu().eval(), weights.float()).eval()
    other = F.interpolate(check, size=(check.shape[2] + 8, check.shape[3] + 4), mode="bilinear", align_corners=False)
    axes = {0: "batch", 2: "height", 3: "width"}
    return export_checked(model, path, [(check,), (other,)], ["image"], {"image": axes, "stylized": axes}, tolerance)
