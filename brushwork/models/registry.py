"""Which model made a run or a weights file, and which tool applies it: one table, not a guess in every tool.

Every trainer records its ``kind`` in each checkpoint's meta.json and in export/info.json. A file with no
record (the original CycleGAN code's .pth, a released model, a run made before kinds were recorded) is
recognised here, in one place, by the state-dict keys its kind always has. A new model is one module and
one entry in ``KINDS``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from brushwork.core.errors import BrushworkError


@dataclass(frozen=True)
class ModelKind:
    name: str                 # recorded in meta.json and info.json
    title: str                # in messages: "a CycleGAN run"
    tool: str                 # the command that applies it
    trainer: str              # the command that trains (and resumes) it
    keys: tuple[str, ...]     # state-dict keys that mark it: of models.pt, or of a single network file


KINDS = {kind.name: kind for kind in (
    ModelKind("cyclegan", "CycleGAN", "eval/translate.py", "train/cyclegan.py", ("G_A", "model.1.weight")),
    ModelKind("fast_style", "fast-style", "eval/stylize.py", "train/fast_style.py", ("net", "down.0.norm.weight")),
    ModelKind("adain", "AdaIN", "eval/stylize.py", "train/adain.py", ("decoder",)),
)}


def kind_of_state(state) -> str | None:
    """The kind whose marking keys a state dict (a models.pt, or one network's weights) holds; None if none."""
    if not isinstance(state, dict):
        return None
    return next((kind.name for kind in KINDS.values() if any(k in state for k in kind.keys)), None)


def recorded_kind(run: str | Path) -> str | None:
    """The kind a run dir (or a folder with export/, or an export folder itself) recorded: the newest checkpoint's
    meta.json, else export/info.json, else info.json; None when none says (a run made before kinds were
    recorded)."""
    run = Path(run)
    latest = run / "checkpoints" / "latest"
    candidates = []
    if latest.is_file():
        candidates.append(run / "checkpoints" / latest.read_text().strip() / "meta.json")
    candidates += [run / "export" / "info.json", run / "info.json"]
    for path in candidates:
        try:
            kind = json.loads(path.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if kind:
            return str(kind)
    return None


def expect(source: str | Path, wanted: str, found: str | None, *, is_file: bool = False) -> None:
    """One line naming the right tool when ``source`` holds another kind than the tool applies."""
    if found is None or found == wanted:
        return
    have, want = KINDS.get(found), KINDS[wanted]
    if have is None:
        raise BrushworkError(f"{source}: a model of kind {found!r}, which this version does not know; "
                             f"{want.tool} applies {want.title} models")
    if is_file:
        raise BrushworkError(f"{source}: {have.title} weights, not {want.title} weights; use {have.tool}")
    raise BrushworkError(f"{source}: {_a(have.title)} run, not {_a(want.title)} run; use {have.tool} {source}")


def expect_resumable(meta: dict, kind: str, path: Path) -> None:
    """A checkpoint of another kind is not resumed by this trainer: one line naming the trainer that is."""
    found = meta.get("kind")
    if found and found != kind:
        other = KINDS.get(found)
        where = f"; resume it with {other.trainer}" if other else ""
        raise BrushworkError(f"{path} is a checkpoint of {_a(other.title if other else found)} run, not "
                             f"{_a(KINDS[kind].title)} run{where}, or start a new --run_dir")


def _a(title: str) -> str:
    return f"{'an' if title[:1] in 'AEIOU' else 'a'} {title}"
