"""Full-state checkpoints for multi-rank training, the run-dir rules, and loading weights by name.

``run_dir/checkpoints/step_{N:08d}/`` holds one training state, split by who writes it::

    meta.json     step, images seen, world size, data position, architecture, resolved config
    models.pt     the networks' state dicts (CycleGAN: G_A, G_B, D_A, D_B with the original key names)
    optim.pt      optimiser and grad-scaler state
    rank_{r}.pt   what each rank holds alone: image pools (with their RNG), torch RNG, a weights fingerprint

``save(run_dir, state, ...)`` takes the dict a trainer's ``state_dict()`` returns, with exactly
these four keys, and ``load(path, rank)`` gives the same dict back (``rank`` being this rank's part),
for ``load_state_dict``. A step is first written to ``.step_{N}.tmp/``, renamed into place when
every rank has written its part, and only then does ``checkpoints/latest`` (a one-line file naming
it) move, atomically; a failed write leaves no temp folder. Every ``.pt`` loads with
``torch.load(..., weights_only=True)``.

A run dir belongs to one run: starting without ``--resume`` where checkpoints exist is refused.
``export/`` holds the newest checkpoint's networks alone (the original ``.pth`` format for CycleGAN),
refreshed at every checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from brushwork.core import records
from brushwork.core.errors import BrushworkError
from brushwork.core.fileio import atomic_open, atomic_write_text, disk_error
from brushwork.models.networks import strip_wrappers

CHECKPOINTS = "checkpoints"
LATEST = "latest"
EXPORT = "export"
PARTS = ("meta", "models", "optim", "rank")


def step_name(step: int) -> str:
    return f"step_{step:08d}"


def step_folders(root: Path) -> list[Path]:
    """The checkpoint folders under ``root``, oldest first: ``step_`` and eight digits (a ``step_final``
    copied there by hand is not one)."""
    return sorted(p for p in root.glob("step_*") if p.is_dir() and records.step_folder(p.name))


def _save(obj: Any, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def save(run_dir: str | os.PathLike, state: dict, *, step: int, rank: int, barrier: Callable[[], None],
         keep_last: int = 3) -> Path:
    """Collective save of ``state`` (meta, models, optim, rank): every rank calls it; rank 0 publishes ``latest``."""
    if set(state) != set(PARTS):
        raise ValueError(f"a checkpoint state has the keys {PARTS}, got {sorted(state)}")
    root = Path(run_dir) / CHECKPOINTS
    tmp, final = root / f".{step_name(step)}.tmp", root / step_name(step)
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    try:
        _save(state["rank"], tmp / f"rank_{rank:05d}.pt")
        if rank == 0:
            _save(state["models"], tmp / "models.pt")
            _save(state["optim"], tmp / "optim.pt")
            atomic_write_text(tmp / "meta.json", json.dumps(state["meta"], indent=1, sort_keys=True) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-written step behind
        raise
    barrier()
    if rank == 0:
        try:
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            atomic_write_text(root / LATEST, final.name + "\n")
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise disk_error(final, e) from None
        prune(root, keep_last)
    barrier()
    return final


def prune(root: Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` step folders (and always the one ``latest`` names)."""
    latest = (root / LATEST).read_text().strip() if (root / LATEST).exists() else ""
    steps = step_folders(root)
    for old in steps[:-max(1, keep_last)]:
        if old.name != latest:
            shutil.rmtree(old, ignore_errors=True)


def latest(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint folder ``latest`` names, or None if the run has none yet."""
    pointer = Path(run_dir) / CHECKPOINTS / LATEST
    if not pointer.exists():
        return None
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise BrushworkError(f"{pointer}: unreadable ({e}); point --resume at a folder in {pointer.parent}") from None
    if not records.step_folder(name):  # '../../other_run/checkpoints/step_x' would resume another run
        raise BrushworkError(f"{pointer} names {name[:80]!r}, not a step_NNNNNNNN folder of this run; point "
                             f"--resume at a folder in {pointer.parent}")
    path = pointer.parent / name
    if not path.is_dir():
        raise BrushworkError(f"{pointer} names {path.name}, which is missing; point --resume at another "
                             f"folder in {pointer.parent}")
    return path


def step_of(path: Path) -> int:
    return int(path.name.split("_")[1])


def claim_run_dir(run_dir: str | os.PathLike, resume: str) -> None:
    """A run dir belongs to one run: a new run (no --resume) where checkpoints exist is refused."""
    if resume:
        return
    found = step_folders(Path(run_dir) / CHECKPOINTS)
    if found:
        raise BrushworkError(f"{run_dir} has checkpoints up to step {step_of(found[-1])}: --resume auto to "
                             "continue, or another --run_dir")


def resolve(run_dir: str | os.PathLike, resume: str) -> Path | None:
    """The checkpoint folder to resume from: ``auto`` → ``latest`` (None if there is none yet), or a path."""
    if not resume:
        return None
    if resume == "auto":
        return latest(run_dir)
    path = Path(resume)
    if path.is_file():
        path = path.parent
    if not (path / "meta.json").is_file():
        raise BrushworkError(f"--resume {resume}: not a checkpoint folder (no meta.json); use 'auto' or a "
                             f"{CHECKPOINTS}/step_NNNNNNNN folder")
    return path


def at_step(run_dir: str | os.PathLike, step: int | None) -> Path:
    """The checkpoint folder of ``step`` (None: the newest); one line listing the steps there are."""
    if step is None:
        path = latest(run_dir)
        if path is None:
            raise BrushworkError(f"{run_dir}: no checkpoint yet; train first, or pass an exported .pth file")
        return path
    path = Path(run_dir) / CHECKPOINTS / step_name(step)
    if not path.is_dir():
        steps = [step_of(p) for p in step_folders(Path(run_dir) / CHECKPOINTS)]
        raise BrushworkError(f"{run_dir}: no checkpoint of step {step}; there are: "
                             f"{', '.join(map(str, steps)) or 'none'}")
    return path


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an error message, cut at a word boundary."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " ..."


def load_file(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BrushworkError(f"{path}: missing from the checkpoint; resume from an older step folder") from None
    except Exception as e:  # torch raises many kinds for damaged or foreign files (pickles refused included)
        raise BrushworkError(f"{path}: unreadable checkpoint file ({first_line(e)}); resume from an older step "
                             "folder") from None


def load(path: Path, rank: int) -> dict:
    """The state ``save`` wrote, with this rank's part as ``rank`` ({} if the checkpoint had fewer ranks)."""
    meta = records.read_json(path / "meta.json", records.CheckpointMeta, "resume from an older step folder")
    rank_file = path / f"rank_{rank:05d}.pt"
    state = {"meta": meta, "models": load_file(path / "models.pt"), "optim": load_file(path / "optim.pt"),
             "rank": load_file(rank_file) if rank_file.exists() else {}}
    for part in ("models", "optim", "rank"):
        if not isinstance(state[part], dict):
            raise BrushworkError(f"{path}/{part}.pt holds a {type(state[part]).__name__}, not a checkpoint part; "
                                 "resume from an older step folder")
    return state


def check_parts(state: dict, expected: dict, path: Path) -> None:
    """Each part holds at least the keys this trainer writes (a ``rank`` part may be empty: a checkpoint of
    fewer ranks); else one line naming the file and the first missing key."""
    for part in ("models", "optim", "rank"):
        if part == "rank" and not state[part]:
            continue
        missing = [k for k in expected[part] if k not in state[part]]
        if missing:
            name = "rank_NNNNN.pt" if part == "rank" else f"{part}.pt"
            raise BrushworkError(f"{path}/{name}: no {missing[0]!r} (damaged, or written by another kind of run); "
                                 "resume from an older step folder")


def check_compatible(meta: dict, arch: dict, path: Path) -> None:
    """A checkpoint of another architecture is one clear error naming each difference."""
    saved = meta.get("arch", {})
    diffs = [f"{k}={saved.get(k)!r} (this run: {v!r})" for k, v in arch.items() if saved.get(k) != v]
    if diffs:
        raise BrushworkError(f"{path} was trained with {', '.join(diffs)}; resume with the same settings "
                             "or start a new --run_dir")


def export(run_dir: str | os.PathLike, networks: dict[str, torch.nn.Module], info: dict) -> Path:
    """Write export/{name}.pth for each network (plain state dicts) and export/info.json."""
    out = Path(run_dir) / EXPORT
    for name, net in networks.items():
        state = {k: v.detach().cpu() for k, v in strip_wrappers(net.state_dict()).items()}
        _save(state, out / f"{name}.pth")
    atomic_write_text(out / "info.json", json.dumps(info, indent=1, sort_keys=True) + "\n")
    return out


def load_state_dict_strict(net: torch.nn.Module, state: Any, what: str) -> None:
    """``load_state_dict(strict=True)`` whose failure is one line naming ``what`` and the first difference."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BrushworkError(f"{what}: holds a {type(state).__name__}, not a network state dict")
    bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:  # a run that diverged: its outputs would be black or noise
        raise BrushworkError(f"{what}: {bad} holds NaN or infinite values (the run diverged); use an earlier "
                             "checkpoint (--step N) or retrain with a lower --lr")
    try:
        net.load_state_dict(strip_wrappers(state), strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        for marker in ("Missing key(s) in state_dict:", "Unexpected key(s) in state_dict:", "size mismatch for"):
            if marker in detail:
                detail = detail[detail.index(marker):]
                break
        short = detail if len(detail) <= 160 else detail[:160].rsplit(" ", 1)[0] + " ..."
        raise BrushworkError(f"{what}: does not fit this network ({short.rstrip('.')}); was it trained with other "
                             "settings?") from None
