"""Full-state checkpoints for multi-rank training, plus export/import of bare generators.

``run_dir/checkpoints/step_{N:08d}/`` holds::

    meta.json     step, images seen, world size, data position, architecture, resolved config
    models.pt     {"G_A", "G_B", "D_A", "D_B"} state dicts (the original code's key names)
    optim.pt      {"G", "D", "scaler"} optimizer / grad-scaler state
    rank_{r}.pt   per-rank state: image pools (with their RNG), torch RNG states

A step is first written to ``.step_{N}.tmp/``, renamed into place when every rank has written its
part, and only then does ``checkpoints/latest`` (a one-line file naming it) move, atomically. Every
``.pt`` loads with ``torch.load(..., weights_only=True)``. ``export/G_A.pth`` / ``G_B.pth`` are the
generators alone in the original code's format.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import BrushworkError
from .fileio import atomic_open, atomic_write_text
from .networks import ResnetGenerator, generator_arch, strip_wrappers

CHECKPOINTS = "checkpoints"
LATEST = "latest"
EXPORT = "export"


def step_name(step: int) -> str:
    return f"step_{step:08d}"


def _save(obj: Any, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def save(run_dir: str | os.PathLike, step: int, *, rank: int, barrier: Callable[[], None],
         meta: dict | None = None, models: dict | None = None, optim: dict | None = None,
         rank_state: dict | None = None, keep_last: int = 3) -> Path:
    """Collective save: every rank calls it; rank 0 writes the shared files and publishes ``latest``."""
    root = Path(run_dir) / CHECKPOINTS
    tmp, final = root / f".{step_name(step)}.tmp", root / step_name(step)
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    _save(rank_state or {}, tmp / f"rank_{rank:05d}.pt")
    if rank == 0:
        _save(models, tmp / "models.pt")
        _save(optim, tmp / "optim.pt")
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=1, sort_keys=True) + "\n")
    barrier()
    if rank == 0:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        atomic_write_text(root / LATEST, final.name + "\n")
        prune(root, keep_last)
    barrier()
    return final


def prune(root: Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` step folders (and always the one ``latest`` names)."""
    latest = (root / LATEST).read_text().strip() if (root / LATEST).exists() else ""
    steps = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in steps[:-max(1, keep_last)]:
        if old.name != latest:
            shutil.rmtree(old, ignore_errors=True)


def resolve(run_dir: str | os.PathLike, resume: str) -> Path | None:
    """The checkpoint folder to resume from: ``auto`` → ``latest`` (None if there is none yet), or a path."""
    if not resume:
        return None
    if resume == "auto":
        latest = Path(run_dir) / CHECKPOINTS / LATEST
        if not latest.exists():
            return None
        path = latest.parent / latest.read_text().strip()
        if not path.is_dir():
            raise BrushworkError(f"{latest} names {path.name}, which is missing; point --resume at another "
                                 f"folder in {latest.parent}")
        return path
    path = Path(resume)
    if path.is_file():
        path = path.parent
    if not (path / "meta.json").is_file():
        raise BrushworkError(f"--resume {resume}: not a checkpoint folder (no meta.json); use 'auto' or a "
                             f"{CHECKPOINTS}/step_NNNNNNNN folder")
    return path


def _load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BrushworkError(f"{path}: missing from the checkpoint; resume from an older step folder") from None
    except Exception as e:
        raise BrushworkError(f"{path}: unreadable checkpoint file ({str(e).splitlines()[0][:120]}); "
                             "resume from an older step folder") from None


def load(path: Path, rank: int) -> dict:
    """meta, models, optim and this rank's state (None if the checkpoint had fewer ranks)."""
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BrushworkError(f"{path}/meta.json: unreadable ({e}); resume from an older step folder") from None
    rank_file = path / f"rank_{rank:05d}.pt"
    return {"meta": meta, "models": _load(path / "models.pt"), "optim": _load(path / "optim.pt"),
            "rank": _load(rank_file) if rank_file.exists() else None}


def check_compatible(meta: dict, arch: dict, path: Path) -> None:
    """A checkpoint of another architecture is one clear error naming each difference."""
    saved = meta.get("arch", {})
    diffs = [f"{k}={saved.get(k)!r} (this run: {v!r})" for k, v in arch.items() if saved.get(k) != v]
    if diffs:
        raise BrushworkError(f"{path} was trained with {', '.join(diffs)}; resume with the same settings "
                             "or start a new --run_dir")


def export_generators(run_dir: str | os.PathLike, generators: dict[str, torch.nn.Module], info: dict) -> Path:
    """Write export/G_A.pth and G_B.pth (the original format) and generators.json."""
    out = Path(run_dir) / EXPORT
    for name, net in generators.items():
        state = {k: v.detach().cpu() for k, v in strip_wrappers(net.state_dict()).items()}
        _save(state, out / f"{name}.pth")
    atomic_write_text(out / "generators.json", json.dumps(info, indent=1, sort_keys=True) + "\n")
    return out


def load_generator(source: str | os.PathLike, direction: str = "AtoB", winograd: bool = True) -> ResnetGenerator:
    """A generator from a run dir (export/ or latest checkpoint) or a .pth state dict (ours or the original's).

    ``winograd``: run its ResNet-block convs as Winograd on CPU (faster, same weights; see networks.py).
    """
    source = Path(source)
    name = {"AtoB": "G_A", "BtoA": "G_B"}.get(direction)
    if name is None:
        raise BrushworkError(f"direction must be AtoB or BtoA, got {direction!r}")
    if source.is_dir():
        exported = source / EXPORT / f"{name}.pth"
        if exported.is_file():
            state = _load(exported)
        else:
            ckpt = resolve(source, "auto")
            if ckpt is None:
                raise BrushworkError(f"{source}: no {EXPORT}/{name}.pth and no checkpoint; train first or pass "
                                     "a .pth file")
            state = _load(ckpt / "models.pt")[name]
    elif source.is_file():
        state = _load(source)
        if isinstance(state, dict) and name in state and isinstance(state[name], dict):
            state = state[name]  # a models.pt
    else:
        raise BrushworkError(f"{source}: no such run folder or generator file")
    state = strip_wrappers(state)
    try:
        arch = generator_arch(state)
        net = ResnetGenerator(arch["in_channels"], arch["out_channels"], arch["ngf"], arch["n_blocks"], winograd)
        net.load_state_dict(state, strict=True)
    except (ValueError, RuntimeError) as e:
        raise BrushworkError(f"{source}: not a ResNet generator this code can load "
                             f"({str(e).splitlines()[0][:160]})") from None
    return net.eval()
