"""Typed, bounded, frozen configs: the machinery every command shares (the schemas live in ``schemas/``).

A tool's config is a frozen dataclass deriving from ``Config`` whose fields come from ``setting``: each carries
its help text and, where it has them, bounds (``min``/``max``) and fixed choices (a ``Literal`` type). Flags are
parsed by tyro (``cli.py``); values from a preset or a pairs file are converted by pydantic (``build``). Either
way the config's construction checks the bounds and then its ``check`` method (rules that tie fields together),
so an out-of-range value is one ``ConfigError`` naming the flag (or file and key) before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from brushwork.core.errors import ConfigError
from brushwork.core.presets import CONFIG_ROOT, DEFAULTS, load_preset, preset_path

if TYPE_CHECKING:
    import pydantic


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None,
            positional: bool = False, alias: str | tuple[str, ...] | None = None, role: str | None = None,
            required: bool = False, renamed: str | tuple[str, ...] | None = None) -> Any:
    """A config field: its default, help text and bounds.

    ``min``/``max`` bound a number (or every item of a list), inclusive. ``positional``: the field
    also takes bare command-line arguments (a list field takes all of them). ``alias``: other flag
    names (e.g. ``from`` for ``from_path``, or the original CycleGAN code's ``lambda_A``). ``role``: a tag a tool
    uses to group fields (the
    Gatys runner marks the settings that may differ per pair, and those that shape its output).
    ``required``: a run without it is refused (exit 2) before any work; its default is the empty value.
    ``renamed``: this flag's earlier spellings (one word per meaning across commands): still accepted, with a
    one-line note naming the current one.
    """
    aliases = (alias,) if isinstance(alias, str) else tuple(alias or ())
    old_names = (renamed,) if isinstance(renamed, str) else tuple(renamed or ())
    meta = {"help": help, "min": min, "max": max, "positional": positional, "alias": aliases, "role": role,
            "required": required, "renamed": old_names}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for list defaults (configs are frozen)")
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every tool's config: each field is checked on construction, then ``check`` runs."""

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


# ---------------------------------------------------------------------------------------------
# Types


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _field(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def is_list(tp: Any) -> bool:
    return typing.get_origin(unwrap_optional(tp)[0]) is tuple


def is_bool(tp: Any) -> bool:
    return unwrap_optional(tp)[0] is bool


def type_name(tp: Any) -> str:
    inner, optional = unwrap_optional(tp)
    if typing.get_origin(inner) is tuple:
        item = typing.get_args(inner)[0]
        if typing.get_origin(item) is Literal:
            name = f"a list of {', '.join(map(str, typing.get_args(item)))}"
        else:
            name = f"a list of {type_name(item).removeprefix('a ').removeprefix('an ')}s"
    elif typing.get_origin(inner) is Literal:
        name = "one of " + ", ".join(map(str, typing.get_args(inner)))
    else:
        name = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
            inner, getattr(inner, "__name__", str(inner)))
    return f"{name} or none" if optional else name


@functools.cache
def _adapter(tp: Any) -> pydantic.TypeAdapter:
    import pydantic  # here, not at the top: a command's --help stays quick

    return pydantic.TypeAdapter(tp, config=pydantic.ConfigDict(allow_inf_nan=False))


def _typed(value: Any, tp: Any) -> bool:
    """Whether ``value`` already is a ``tp`` (an int counts as a float; a list as a tuple)."""
    inner = unwrap_optional(tp)[0]
    if typing.get_origin(inner) is tuple:
        return isinstance(value, (list, tuple)) and all(_typed(v, typing.get_args(inner)[0]) for v in value)
    if typing.get_origin(inner) is Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(inner))
    if inner is float:
        return type(value) in (int, float) and math.isfinite(value)
    return type(value) is inner


def _typed_item(value: Any, tp: Any) -> Any:
    inner = unwrap_optional(tp)[0]
    item = typing.get_args(inner)[0] if typing.get_origin(inner) is tuple else inner
    return float(value) if item is float else value


def coerce(value: Any, tp: Any) -> Any:
    """``value`` (from a TOML preset or a pairs file: typed, or text) as the field type ``tp`` through pydantic's
    lax conversion; a list may be one comma-separated string. ValueError when it does not fit."""
    inner, optional = unwrap_optional(tp)
    if optional and (value is None or (isinstance(value, str) and value.lower() in ("none", ""))):
        return None
    if is_list(tp) and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    elif is_list(tp) and not isinstance(value, (list, tuple)):
        value = [value]
    if isinstance(value, bool) and inner is not bool:
        raise ValueError  # pydantic reads True as 1: a flag given where a number belongs is a mistake
    if _typed(value, tp):  # TOML's values mostly are of the field's type already: no pydantic (a quick --help)
        return tuple(_typed_item(v, tp) for v in value) if is_list(tp) else _typed_item(value, tp)
    if isinstance(value, str) and (inner is bool or typing.get_origin(inner) is Literal):
        value = value.lower() if inner is bool else next(
            (a for a in typing.get_args(inner) if str(a).lower() == value.lower()), value)
    adapter = _adapter(tp)
    try:
        return adapter.validate_python(value)
    except Exception as e:  # pydantic.ValidationError
        raise ValueError from e


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def bounds_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {_number(lo)} and {_number(hi)}"
    return f"at least {_number(lo)}" if lo is not None else f"at most {_number(hi)}"


def check_value(cls: type, name: str, value: Any, label: str) -> None:
    """The bounds of one already-typed value; ConfigError naming ``label`` if it is out of range."""
    meta = _field(cls, name).metadata
    lo, hi = meta.get("min"), meta.get("max")
    if value is None or (lo is None and hi is None):
        return
    for v in value if isinstance(value, tuple) else (value,):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (
                (lo is not None and v < lo) or (hi is not None and v > hi)):
            raise ConfigError(f"{label} must be {bounds_text(lo, hi)}; got {v!r}")


def aliases_of(cls: type) -> dict[str, str]:
    """{other flag name: field name} of a config class (earlier spellings included)."""
    return {a: f.name for f in dataclasses.fields(cls)
            for a in (*(f.metadata.get("alias") or ()), *(f.metadata.get("renamed") or ()))}


def renamed_of(cls: type) -> dict[str, str]:
    """{earlier spelling: field name} of a config class."""
    return {a: f.name for f in dataclasses.fields(cls) for a in f.metadata.get("renamed") or ()}


def suggest(name: str, valid: list[str]) -> str:
    """The closest flag, case aside (``--Lambda_a`` → ``--lambda_a``)."""
    lowered = {v.lower(): v for v in valid}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return f" (did you mean --{lowered[close[0]]}?)" if close else ""


def build(cls: type, values: Mapping[str, Any], source: str = "flag", base: Any = None) -> Any:
    """A ``cls`` from ``values`` (on top of ``base`` or the defaults), every value type- and bound-checked.

    ``source`` says how names are shown in errors: "flag" for ``--name``, else a file name.
    """
    types_ = field_types(cls)
    valid = list(types_)
    aliases = aliases_of(cls)
    checked: dict[str, Any] = {}
    for raw_name, value in values.items():
        name = raw_name.replace("-", "_")
        name = aliases.get(name, name)
        label = f"--{name}" if source == "flag" else f"{source}: {name}"
        if name not in types_:
            if source == "flag":
                shown = ", ".join(f"--{v}" for v in valid)
                raise ConfigError(f"unknown flag --{raw_name}{suggest(name, valid)}; valid flags: {shown}")
            raise ConfigError(f"{source}: unknown key {raw_name!r}; valid keys: {', '.join(valid)}")
        tp = types_[name]
        try:
            checked[name] = coerce(value, tp)
        except ValueError:
            raise ConfigError(f"{label} expects {type_name(tp)}, got {value!r}") from None
        check_value(cls, name, checked[name], label)
    try:
        return cls(**checked) if base is None else dataclasses.replace(base, **checked)
    except TypeError as e:  # a field without default left unset
        raise ConfigError(f"{cls.__name__}: {e}") from None
    except ConfigError as e:  # a cross-field rule: say where the values came from
        if source == "flag":
            raise
        raise ConfigError(f"{source}: {e}") from None


def load_config(cls: type, preset: str | os.PathLike | None, overrides: Mapping[str, Any] = (),
                tool: str = "") -> Any:
    """Defaults ← preset (with inheritance) ← overrides, all type-checked."""
    cfg = cls()
    if preset and not (str(preset) == DEFAULTS and not (CONFIG_ROOT / tool / f"{DEFAULTS}.toml").is_file()):
        path = preset_path(tool, preset)
        cfg = build(cls, load_preset(path), source=str(path), base=cfg)
    return build(cls, dict(overrides), source="flag", base=cfg)
