"""What a config field is: the vocabulary every schema in this package is written in.

A command's config is a frozen dataclass deriving from ``Config`` whose fields come from ``setting``: each
carries its help text and, where it has them, bounds (``min``/``max``, inclusive, on a number or every item of a
list) and fixed choices (a ``Literal`` type). Construction checks the bounds, then the config's ``check`` (rules
that tie fields together), so an out-of-range value is one ``ConfigError`` naming the flag, however the config
was made (flags, a preset, a pairs file, ``replace``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from brushwork.core.errors import ConfigError


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None,
            positional: bool = False, alias: str | tuple[str, ...] | None = None, role: str | None = None,
            required: bool = False, renamed: str | tuple[str, ...] | None = None) -> Any:
    """A config field. ``positional``: also takes bare command-line arguments (a list field takes them all).
    ``alias``: other flag names (``from`` for ``from_path``, the original CycleGAN code's ``lambda_A``).
    ``role``: a tag a tool groups fields by (the Gatys runner's per-pair and render-shaping settings).
    ``required``: a run without it is refused (exit 2) before any work; its default is the empty value.
    ``renamed``: earlier spellings, still accepted with a one-line note naming the current one."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for list defaults (configs are frozen)")
    spellings = [(a,) if isinstance(a, str) else tuple(a or ()) for a in (alias, renamed)]
    return dataclasses.field(default=default, metadata={
        "help": help, "min": min, "max": max, "positional": positional, "alias": spellings[0], "role": role,
        "required": required, "renamed": spellings[1]})


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every command's config: each field is checked on construction, then ``check`` runs."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_value(type(self), f.name, getattr(self, f.name), f"--{f.name}")
        self.check()

    def check(self) -> None:
        """Cross-field rules, true of every config including the defaults; raise ConfigError naming the fix."""

    def check_inputs(self) -> None:
        """What a run needs beyond the defaults (required inputs); checked once the flags are applied."""

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_required(cfg: Config) -> None:
    """Every ``required`` field has a value: one line naming the first one missing, with its help."""
    for f in dataclasses.fields(cfg):
        if f.metadata.get("required") and getattr(cfg, f.name) in ("", (), None):
            raise ConfigError(f"--{f.name} is required: {f.metadata.get('help', '')}")


def fields_with_role(cls: type, role: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("role") == role)


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(``T``, True) for ``T | None``, else (``tp``, False)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return tp, False


def is_list(tp: Any) -> bool:
    return typing.get_origin(unwrap_optional(tp)[0]) is tuple


def is_bool(tp: Any) -> bool:
    return unwrap_optional(tp)[0] is bool


def bounds_text(lo: float | None, hi: float | None) -> str:
    def number(v: float) -> str:
        return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"

    if lo is not None and hi is not None:
        return f"between {number(lo)} and {number(hi)}"
    return f"at least {number(lo)}" if lo is not None else f"at most {number(hi or 0)}"


def check_value(cls: type, name: str, value: Any, label: str) -> None:
    """The bounds of one already-typed value; ConfigError naming ``label`` if it is out of range."""
    meta = typing.cast(Any, cls).__dataclass_fields__[name].metadata
    lo, hi = meta.get("min"), meta.get("max")
    for v in value if isinstance(value, tuple) else (value,):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (
                (lo is not None and v < lo) or (hi is not None and v > hi)):
            raise ConfigError(f"{label} must be {bounds_text(lo, hi)}; got {v!r}")


def spellings_of(cls: type, renamed_only: bool = False) -> dict[str, str]:
    """{other flag name: field name} of a config class: aliases and earlier spellings, or the latter only."""
    keys = ("renamed",) if renamed_only else ("alias", "renamed")
    return {a: f.name for f in dataclasses.fields(cls) for k in keys for a in f.metadata.get(k) or ()}
