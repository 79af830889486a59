"""Every file the project writes and later reads back is checked against one typed schema here.

A manifest, a checkpoint's meta.json, a run's config.toml, an export's info.json or a download's
source sidecar may be edited by hand or damaged. Each is parsed, then validated with pydantic (strict:
no "4" for 4, no 1e30 for a count), so a bad file is one line naming the file, the field and the fix
instead of a KeyError far away. Readers get back the plain dict they always had.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from brushwork.core.errors import BrushworkError

Count = Annotated[int, Field(ge=0, le=10**15)]
Positive = Annotated[int, Field(ge=1, le=10**9)]
STEP_FOLDER = re.compile(r"step_\d{8}")


class _Record(BaseModel):
    """Fields the project reads are typed; other keys (older or newer writers) pass through."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


def relative_inside(value: str) -> str:
    """A path relative to its folder that stays inside it (no absolute path, no '..', no backslash)."""
    parts = value.split("/")
    if not value or value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{value!r} is not a path inside the folder")
    return value


class ShardEntry(_Record):
    name: str
    split: Literal["train", "test"]
    domain: Literal["A", "B"]
    samples: Count
    bytes: Count
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    keys: list[str] | None = None
    offsets: list[Count] | None = None

    @field_validator("name")
    @classmethod
    def _inside(cls, value: str) -> str:
        return relative_inside(value)

    @model_validator(mode="after")
    def _offsets_fit(self):
        if self.keys is not None or self.offsets is not None:
            keys, offsets = self.keys or [], self.offsets or []
            if not (len(offsets) == len(keys) + 1 == self.samples + 1 and offsets == sorted(offsets)
                    and offsets[-1] <= self.bytes):
                raise ValueError(f"keys/offsets of {self.name} do not fit its samples and bytes")
        return self


class Manifest(_Record):
    format: Positive
    shards: list[ShardEntry]

    @model_validator(mode="after")
    def _each_once(self):
        twice = [name for name, n in Counter(s.name for s in self.shards).items() if n > 1]
        if twice:  # one shard trained on twice as often as the others
            raise ValueError(f"{twice[0]} is listed twice")
        return self


class CheckpointMeta(_Record):
    step: Count
    images_seen: Count
    data_seed: Count
    data_batches: Count
    kind: str = ""          # registry.KINDS name; empty in checkpoints made before kinds were recorded
    world: Positive = 1
    batch_size: Positive = 1
    arch: dict[str, Any] = {}
    config: dict[str, Any] = {}
    data_fingerprint: str = ""


class ExportInfo(_Record):
    kind: str = ""
    step: Count = 0
    styles: list[str] = []


class SourceSidecar(_Record):
    """``DIR.source.json`` beside a folder data_prep/download.py extracted."""

    url: str = ""
    sha256: str = ""


class RunConfig(_Record):
    """The fields of a run's resolved config.toml that other commands read."""

    data: str = ""
    dataset: str = ""
    domain: str = ""
    style: list[str] = []
    width: Positive | None = None


def check(value: Any, schema: type[BaseModel], where: str, fix: str) -> dict:
    """``value`` if it fits ``schema``; else one line: where, which field, what is wrong, the fix."""
    try:
        schema.model_validate(value)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "the file"
        msg = first["msg"].removeprefix("Value error, ")
        raise BrushworkError(f"{where}: {field}: {msg}; {fix}") from None
    return value


def parse_json(data: bytes | str, schema: type[BaseModel], where: str, fix: str) -> dict:
    """JSON text checked against ``schema``."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise BrushworkError(f"{where}: not valid JSON ({str(e).splitlines()[0]}); {fix}") from None
    if not isinstance(value, dict):
        raise BrushworkError(f"{where}: holds a JSON {type(value).__name__}, not an object; {fix}")
    return check(value, schema, where, fix)


def read_json(path: str | os.PathLike, schema: type[BaseModel], fix: str) -> dict:
    """The local JSON file ``path`` checked against ``schema``; one line if it cannot be read or does not fit."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BrushworkError(f"{path}: unreadable ({e.strerror or e}); {fix}") from None
    return parse_json(data, schema, str(path), fix)


def step_folder(name: str) -> bool:
    """Checkpoint folders are ``step_`` and eight digits; anything else there is not one of ours."""
    return bool(STEP_FOLDER.fullmatch(name))
