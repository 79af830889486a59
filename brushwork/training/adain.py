"""Arbitrary style (AdaIN, Huang & Belongie 2017): one rank's training state, and loading a trained model.

Only the decoder learns; the encoder is VGG-19 to relu4_1, frozen. Each step pairs a batch of content photos with
a batch of style images, both from shards through the shared loader (one dataset's two domains, or two datasets),
so the split over ranks, resume and preemption are the loop's. The learning rate follows the paper's inverse decay
counted in images (``schedule.inverse_decay``). The export holds both halves (export/encoder.pth, the truncated
VGG-19, and export/decoder.pth), so a model stylises with any style image without other files.

The trainer offers the interface ``trainer.TrainingLoop`` drives, exactly as the other trainers.
"""

from __future__ import annotations

from pathlib import Path

import torch

from brushwork.core.errors import BrushworkError
from brushwork.models import adain, registry, vgg
from brushwork.training import checkpoint, schedule
from brushwork.training.base import TrainerBase
from brushwork.training.trainer import fingerprint

SAMPLE_ROWS = 4  # content | style | result, for the first four pairs of a batch


def encoder_from_state(state: dict, winograd: bool = True) -> vgg.VGGFeatures:
    """The frozen encoder (relu1_1 ... relu4_1 of VGG-19) from a VGG-19 features state dict, full or truncated."""
    return vgg.VGGFeatures(list(adain.STYLE_LAYERS), state, winograd=winograd).eval().requires_grad_(False)


class AdaINTrainer(TrainerBase):
    """The decoder, its optimiser and scaler, and the frozen encoder."""

    kind = "adain"

    def __init__(self, cfg, accelerator=None, *, rank: int = 0, device: str | torch.device = "cpu",
                 fused_adam: bool | None = None):
        super().__init__(cfg, accelerator, device=device, fused_adam=fused_adam)
        self.data_domains = ("content", "style")
        self.arch = {"encoder": "vgg19_relu4_1", "decoder": "adain"}
        state = vgg.load_state(cfg.vgg_weights or None, random_init=cfg.random_vgg, seed=cfg.seed)
        self.encoder = encoder_from_state(state).to(self.device)
        torch.manual_seed(cfg.seed)  # the same init on every rank
        decoder = adain.decoder()
        wrapped, plain = self.prepare({"decoder": decoder}, {"decoder": self.adam(decoder.parameters())})
        self.decoder, self.plain, self.opt = wrapped["decoder"], plain["decoder"], self.optimizers["decoder"]

    @property
    def data_sources(self) -> tuple[tuple[str, str, str], ...]:
        cfg = self.cfg
        return (("content", cfg.content_data or cfg.data, cfg.content_domain),
                ("style", cfg.style_data or cfg.data, cfg.style_domain))

    def learning_rate(self, images_seen: int, epoch_images: int) -> float:
        return schedule.inverse_decay(self.cfg.lr, images_seen, self.cfg.lr_decay)

    # -- training --------------------------------------------------------------------------------

    def step(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        content, style = (batch["content"] + 1) / 2, (batch["style"] + 1) / 2  # the loader's [-1, 1] → [0, 1]
        with self.autocast():
            loss, out = adain.losses(self.encoder, self.decoder, content, style, self.cfg.style_weight)
            total = loss["content"] + loss["style"]
        self.opt.zero_grad(set_to_none=True)
        self.backward(total)
        self.opt.step()
        return {k: v.detach() for k, v in loss.items()}, {"content": content, "style": style,
                                                          "stylized": out.detach().float().clamp(0, 1)}

    # -- what the loop asks ----------------------------------------------------------------------

    def summary(self, mean: dict[str, float]) -> str:
        return " ".join(f"{k} {v:.3g}" for k, v in mean.items())

    def sample(self, images: dict) -> tuple[list[torch.Tensor], list[str]]:
        """Columns content | style | result (the first pairs of the batch), in [-1, 1]."""
        k = min(SAMPLE_ROWS, images["content"].shape[0])
        columns = [images[name][:k].float() * 2 - 1 for name in ("content", "style", "stylized")]
        return columns, ["content", "style", "result"]

    def state_dict(self) -> dict:
        return {"models": {"decoder": self.plain.state_dict()},
                "optim": self.optim_state(),
                "rank": {"rng_cpu": torch.get_rng_state(), "weights_fingerprint": fingerprint(self.plain)}}

    def load_state_dict(self, state: dict) -> None:
        checkpoint.load_state_dict_strict(self.plain, state["models"].get("decoder"), "models.pt['decoder']")
        self.load_optim_state(state["optim"])
        if state["rank"]:
            torch.set_rng_state(state["rank"]["rng_cpu"])

    def export(self, run_dir: Path, info: dict) -> Path:
        return checkpoint.export(run_dir, {"encoder": self.encoder.body, "decoder": self.plain},
                                 {**info, "encoder": "vgg19 to relu4_1 (torchvision features indices 0-20)"})


# ---------------------------------------------------------------------------------------------
# Loading a trained model


def load_model(source: str | Path, step: int | None = None) -> tuple[adain.AdaINNet, str]:
    """(the model, which weights) from a run dir (its export, or checkpoint ``step`` with the run's encoder) or
    an export folder / its decoder.pth beside encoder.pth."""
    source = Path(source)
    if source.is_file():
        if step is not None:
            raise BrushworkError(f"--step needs a run dir; {source} is a file")
        export_dir = source.parent
    elif (source / checkpoint.EXPORT).is_dir():
        export_dir = source / checkpoint.EXPORT
        registry.expect(source, "adain", registry.recorded_kind(source))
    elif source.is_dir():
        export_dir = source
    else:
        raise BrushworkError(f"{source}: no such run folder or model file")
    encoder_file, decoder_file = export_dir / "encoder.pth", export_dir / "decoder.pth"
    if not encoder_file.is_file() or not decoder_file.is_file():
        raise BrushworkError(f"{export_dir}: an AdaIN export holds encoder.pth and decoder.pth; pass the run dir of "
                             "train/adain.py (after its first checkpoint) or its export/ folder")
    registry.expect(export_dir, "adain", registry.recorded_kind(export_dir))
    encoder_state = checkpoint.load_file(encoder_file)
    registry.expect(encoder_file, "adain", registry.kind_of_state(encoder_state), is_file=True)
    net = adain.AdaINNet(encoder_from_state(encoder_state))
    used = f"AdaIN model {export_dir}"
    if step is not None:
        ckpt = checkpoint.at_step(source, step)
        models = checkpoint.load_file(ckpt / "models.pt")
        checkpoint.load_state_dict_strict(net.decoder, models.get("decoder") if isinstance(models, dict) else None,
                                          f"{ckpt / 'models.pt'}['decoder']")
        used = f"AdaIN decoder of {source} at step {checkpoint.step_of(ckpt)} ({ckpt / 'models.pt'})"
    else:
        checkpoint.load_state_dict_strict(net.decoder, checkpoint.load_file(decoder_file), str(decoder_file))
    return net.eval(), used


def load_styles(paths: tuple[str, ...], shorter_side: int | None) -> tuple[list[torch.Tensor], str]:
    """((1, 3, H, W) tensors in [0, 1], their shorter side scaled to ``shorter_side`` unless None; a digest of the
    files' bytes, recorded with every output so a changed style image is a changed setting)."""
    import hashlib

    from brushwork.data.images import load_image, to_unit_tensor
    from brushwork.evaluation.translate import test_scale

    images, digest = [], hashlib.sha256()
    for path in paths:
        images.append(to_unit_tensor(test_scale(load_image(path), "scale_shorter_side", shorter_side))[None])
        digest.update(Path(path).read_bytes())
    return images, digest.hexdigest()[:16]


class _OnnxAdaIN(torch.nn.Module):
    """Encoder + AdaIN + decoder with two image inputs, padded to a multiple of 8 and cropped back, clamped."""

    def __init__(self, net: adain.AdaINNet, alpha: float):
        super().__init__()
        body = net.encoder.body
        assert isinstance(body, torch.nn.Module)
        self.encoder = encoder_from_state(body.state_dict(), winograd=False)  # plain convs: what the exporter knows
        self.decoder, self.alpha = net.decoder, alpha

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[-2], content.shape[-1]
        padded = torch.nn.functional.pad(content, (0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8), mode="reflect")
        fc = self.encoder(padded)[adain.CONTENT_LAYER]
        t = self.alpha * adain.adain(fc, self.encoder(style)[adain.CONTENT_LAYER]) + (1 - self.alpha) * fc
        return self.decoder(t)[..., :h, :w].clamp(0, 1)


def export_onnx(net: adain.AdaINNet, path: str | Path, alpha: float = 1.0, tolerance: float = 1e-4) -> float:
    """Export the model with inputs ``content`` and ``style`` (float32 NCHW RGB in [0, 1], any batch and sizes)
    and output ``stylized`` in [0, 1]; run it in onnxruntime at two content and style sizes (one not a multiple of
    8) against torch; returns the largest difference (BrushworkError above ``tolerance``, the file removed)."""
    from brushwork.models.onnx_export import export_checked

    model = _OnnxAdaIN(net.float().cpu().eval(), alpha).eval()
    gen = torch.Generator().manual_seed(0)
    checks = [(torch.rand(1, 3, 64, 96, generator=gen), torch.rand(1, 3, 72, 56, generator=gen)),
              (torch.rand(1, 3, 53, 70, generator=gen), torch.rand(1, 3, 48, 48, generator=gen))]
    axes = {0: "batch", 2: "height", 3: "width"}
    style_axes = {0: "style_batch", 2: "style_height", 3: "style_width"}
    return export_checked(model, path, checks, ["content", "style"],
                          {"content": axes, "style": style_axes, "stylized": axes}, tolerance)
