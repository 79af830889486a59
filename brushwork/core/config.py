"""Values from files into typed configs: a preset under the flags, a pairs file's per-pair settings.

Flags are parsed by tyro (``cli.py``); a file's values (TOML: mostly typed already; CSV: text) are converted by
pydantic's lax rules, checked against the field's bounds and the config's rules, and any failure is one
``ConfigError`` naming the file and key. The fields themselves are described in ``schemas/fields.py``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from brushwork.core.errors import ConfigError
from brushwork.core.presets import CONFIG_ROOT, DEFAULTS, load_preset, preset_path
from brushwork.schemas.fields import check_value, field_types, is_list, spellings_of, unwrap_optional

if TYPE_CHECKING:
    import pydantic


def type_name(tp: Any) -> str:
    """``tp`` in words, for an error line: "an integer", "one of avg, max", "a list of numbers or none"."""
    inner, optional = unwrap_optional(tp)
    choices = typing.get_args(inner) if typing.get_origin(inner) is Literal else ()
    if typing.get_origin(inner) is tuple:
        item = typing.get_args(inner)[0]
        literal = typing.get_origin(item) is Literal
        name = f"a list of {', '.join(map(str, typing.get_args(item)))}" if literal else \
            f"a list of {type_name(item).removeprefix('a ').removeprefix('an ')}s"
    else:
        name = f"one of {', '.join(map(str, choices))}" if choices else {
            int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(inner, str(inner))
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


def coerce(value: Any, tp: Any) -> Any:
    """``value`` (typed, or text) as the field type ``tp``; a list may be one comma-separated string, ``none``
    or an empty text is None where the field may be unset. ValueError when it does not fit."""
    inner, optional = unwrap_optional(tp)
    if optional and (value is None or (isinstance(value, str) and value.lower() in ("none", ""))):
        return None
    if is_list(tp) and not isinstance(value, (list, tuple)):
        value = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else [value]
    if isinstance(value, bool) and inner is not bool:
        raise ValueError  # pydantic reads True as 1: a switch given where a number belongs is a mistake
    if _typed(value, tp):  # TOML's values mostly are: no pydantic import (a quick --help)
        as_item = float if (typing.get_args(inner) or (inner,))[0] is float else (lambda v: v)
        return tuple(map(as_item, value)) if is_list(tp) else as_item(value)
    if isinstance(value, str) and (inner is bool or typing.get_origin(inner) is Literal):  # case aside
        value = value.lower() if inner is bool else next(
            (a for a in typing.get_args(inner) if str(a).lower() == value.lower()), value)
    try:
        return _adapter(tp).validate_python(value)
    except Exception as e:  # pydantic.ValidationError
        raise ValueError from e


def suggest(name: str, valid: list[str], prefix: str = "--") -> str:
    """The closest name, case aside (``--Lambda_a`` → ``--lambda_a``)."""
    lowered = {v.lower(): v for v in valid}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return f" (did you mean {prefix}{lowered[close[0]]}?)" if close else ""


def build(cls: type, values: Mapping[str, Any], source: str, base: Any = None) -> Any:
    """A ``cls`` from a file's ``values`` (on top of ``base`` or the defaults), every value type- and
    bound-checked; errors name ``source`` (the file, or file:line) and the key."""
    types_, spellings = field_types(cls), spellings_of(cls)
    checked: dict[str, Any] = {}
    for raw_name, value in values.items():
        name = spellings.get(raw_name.replace("-", "_"), raw_name.replace("-", "_"))
        if name not in types_:
            raise ConfigError(f"{source}: unknown key {raw_name!r}{suggest(name, list(types_), '')}; valid keys: "
                              f"{', '.join(types_)}")
        try:
            checked[name] = coerce(value, types_[name])
        except ValueError:
            raise ConfigError(f"{source}: {name} expects {type_name(types_[name])}, got {value!r}") from None
        check_value(cls, name, checked[name], f"{source}: {name}")
    try:
        return cls(**checked) if base is None else dataclasses.replace(base, **checked)
    except ConfigError as e:  # a cross-field rule: say where the values came from
        raise ConfigError(f"{source}: {e}") from None


def load_config(cls: type, preset: str | os.PathLike | None, tool: str = "") -> Any:
    """The defaults, with the preset (and what it inherits) on top, type-checked."""
    if not preset or (str(preset) == DEFAULTS and not (CONFIG_ROOT / tool / f"{DEFAULTS}.toml").is_file()):
        return cls()
    path = preset_path(tool, preset)
    return build(cls, load_preset(path), source=str(path))
