"""Typed, bounded, frozen configs: the machinery every command shares (the schemas live in ``schemas/``).

A tool's config is a frozen dataclass deriving from ``Config`` whose fields come from ``setting``:
each carries its help text and, where it has them, bounds (``min``/``max``) and fixed choices (a
``Literal`` type). A value is checked against its field when it enters, from a preset file or a
flag, so an out-of-range or ill-typed value is one ``ConfigError`` naming the flag (or file and
key) and what it accepts, before any work starts. Rules that tie several fields together live in
the config's ``check`` method, run on every construction.

A preset is a TOML file of field values; ``inherit = "base.toml"`` (relative to the file) layers it
on another. ``to_toml`` writes the resolved config so that ``load_config(cls, that_file)`` gives
back an equal config.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from brushwork.core.errors import ConfigError
from brushwork.core.fileio import atomic_write_text, is_within

# package data (setup.cfg), so presets are found after any install, editable or not
CONFIG_ROOT = Path(str(resources.files("brushwork"))) / "presets"
DEFAULTS = "default"  # the preset name that means the dataclass's own defaults (no file holds them)
INHERIT_KEY = "inherit"
LAUNCH_TABLE = "launch"  # in a run's config.toml: what accelerate decided (processes, precision, dynamo)


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None,
            positional: bool = False, alias: str | tuple[str, ...] | None = None, role: str | None = None,
            required: bool = False, renamed: str | tuple[str, ...] | None = None) -> Any:
    """A config field: its default, help text and bounds.

    ``min``/``max`` bound a number (or every item of a list), inclusive. ``positional``: the field
    also takes bare command-line arguments (a list field takes all of them). ``alias``: other flag
    names (e.g. ``from`` for ``from_path``, or the original CycleGAN code's ``lambda_A``). ``role``: a tag a tool uses to group fields (the
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


def refuse_output_inside(out: str, inputs: Mapping[str, str]) -> None:
    """ConfigError when ``out`` is an input folder (given as flag -> folder) or lies inside one: input
    folders are searched recursively, so the next run would read the outputs as inputs."""
    for flag, folder in inputs.items():
        if is_within(out, folder):
            raise ConfigError(f"--out {out} is inside {flag} {folder}: the next run would read the outputs as "
                              "inputs; choose an --out outside it")


def refuse_output_file(flag: str, path: str, reads: Mapping[str, str], overwrite: bool = False,
                       suffix: str = "") -> None:
    """ConfigError when the output file ``path`` would replace something the user owns: a file or
    folder the command reads (given as flag -> path; a folder also covers what lies inside it), a file
    without the expected ``suffix``, or (without ``overwrite``) any file already there."""
    if not path:
        return
    if suffix and not path.lower().endswith(suffix):
        raise ConfigError(f"{flag} {path}: the file name must end in {suffix}")
    for other, read in reads.items():
        if read and (os.path.realpath(path) == os.path.realpath(read) or is_within(path, read)):
            raise ConfigError(f"{flag} {path} would overwrite what {other} {read} holds; write it elsewhere")
    if os.path.exists(path) and not overwrite:
        raise ConfigError(f"{flag} {path} already exists; --overwrite replaces it, or choose another name")


def fields_with_role(cls: type, role: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("role") == role)


# ---------------------------------------------------------------------------------------------
# Presets


def preset_path(tool: str, name_or_path: str | os.PathLike) -> Path:
    """``brushwork/presets/{tool}/{name}.toml`` for a bare name, else the path as given."""
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text or "/" in text:
        path = Path(text)
    else:
        path = CONFIG_ROOT / tool / f"{text}.toml"
    if not path.is_file():
        known = known_presets(tool)
        hint = f"; known presets: {', '.join(known)}" if known else ""
        raise ConfigError(f"preset {text!r} not found (looked for {path}){hint}")
    return path


def known_presets(tool: str) -> list[str]:
    return sorted({DEFAULTS, *(p.stem for p in (CONFIG_ROOT / tool).glob("*.toml"))}) if tool else []


def load_preset(path: str | os.PathLike, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The values of a preset file, with its ``inherit`` chain applied (child wins)."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"preset inheritance loops: {chain}")
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"preset file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the file") from None
    values.pop(LAUNCH_TABLE, None)  # a run's config.toml used as a preset: the launcher's record is not a flag
    parent = values.pop(INHERIT_KEY, None)
    if parent is None:
        return values
    merged = load_preset(path.parent / parent, (*_seen, path))
    merged.update(values)
    return merged


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


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce_scalar(value: Any, tp: Any) -> Any:
    """``value`` as ``tp``, or raise ValueError."""
    if typing.get_origin(tp) is Literal:
        allowed = typing.get_args(tp)
        for a in allowed:
            if value == a or (isinstance(value, str) and value.lower() == str(a).lower()):
                return a
        raise ValueError
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError
    if tp is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            try:
                return int(text)
            except ValueError:
                as_float = float(text)  # 1e6 is an integer too
                if as_float.is_integer() and math.isfinite(as_float):
                    return int(as_float)
                raise
        raise ValueError
    if tp is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            result = float(value)
        elif isinstance(value, str):
            result = float(value)
        else:
            raise ValueError
        if not math.isfinite(result):
            raise ValueError
        return result
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError
        return str(value)
    raise TypeError(f"config fields of type {tp!r} are not supported")


def coerce(value: Any, tp: Any) -> Any:
    """``value`` converted to the field type ``tp``; ValueError when it does not fit."""
    inner, optional = unwrap_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "")):
        if optional:
            return None
        raise ValueError
    if typing.get_origin(inner) is tuple:
        item_type = typing.get_args(inner)[0]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce_scalar(v, item_type) for v in value)
    return _coerce_scalar(value, inner)


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _bounds_text(lo: float | None, hi: float | None) -> str:
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
            raise ConfigError(f"{label} must be {_bounds_text(lo, hi)}; got {v!r}")


def aliases_of(cls: type) -> dict[str, str]:
    """{other flag name: field name} of a config class (earlier spellings included)."""
    return {a: f.name for f in dataclasses.fields(cls)
            for a in (*(f.metadata.get("alias") or ()), *(f.metadata.get("renamed") or ()))}


def renamed_of(cls: type) -> dict[str, str]:
    """{earlier spelling: field name} of a config class."""
    return {a: f.name for f in dataclasses.fields(cls) for a in f.metadata.get("renamed") or ()}


def _suggest(name: str, valid: list[str]) -> str:
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
                raise ConfigError(f"unknown flag --{raw_name}{_suggest(name, valid)}; valid flags: {shown}")
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


# ---------------------------------------------------------------------------------------------
# Writing and describing


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(cfg: Any, header: str = "") -> str:
    """The config as flat TOML; fields that are None are left out (None is their default)."""
    lines = [f"# resolved {type(cfg).__name__}"] + ([f"# {header}"] if header else [])
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None:
            continue
        lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_resolved(cfg: Any, out_dir: str | os.PathLike, name: str = "config.toml",
                   launch: Mapping[str, Any] | None = None) -> Path:
    """Write the resolved config into ``out_dir`` atomically; returns the path. ``launch``: what the launcher
    decided (processes, precision, dynamo), recorded as a ``[launch]`` table that a preset read back ignores."""
    path = Path(out_dir) / name
    text = to_toml(cfg)
    if launch:
        text += f"\n[{LAUNCH_TABLE}]  # what the launcher decided; not flags\n" + "".join(
            f"{k} = {_toml_value(v)}\n" for k, v in launch.items())
    atomic_write_text(path, text)
    return path


def read_resolved(path: str | os.PathLike, schema: Any = None) -> dict[str, Any]:
    """The values of a resolved config file (as written by ``write_resolved``); {} if there is none.
    With ``schema`` (a ``records`` model) the fields other commands read are checked too."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        values = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
        raise ConfigError(f"{path}: unreadable config ({e}); restore it or remove it") from None
    if schema is not None:
        from brushwork.core import records

        records.check(values, schema, str(path), "restore it (it is written by the run) or remove it")
    return values


def describe(cls: type, defaults: Any = None) -> str:
    """One entry per flag: name, type, default (from ``defaults`` if given), bounds, help."""
    defaults = defaults if defaults is not None else cls()
    types_ = field_types(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = getattr(defaults, f.name)
        tp = types_[f.name]
        shown = "none" if default is None else ",".join(map(str, default)) if isinstance(default, tuple) else \
            _toml_value(default).strip('"')
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        bounds = f"; {_bounds_text(lo, hi)}" if lo is not None or hi is not None else ""
        name = f.name.upper() if f.metadata.get("positional") else f"--{f.name}"
        if f.metadata.get("positional"):
            name += f" (or --{f.name})"
        alias = f" (also --{', --'.join(f.metadata['alias'])})" if f.metadata.get("alias") else ""
        if f.metadata.get("renamed"):
            alias += f" (formerly --{', --'.join(f.metadata['renamed'])})"
        default_text = "required" if f.metadata.get("required") else f"default {shown or '(empty)'}"
        rows.append(f"  {name:<22} {type_name(tp)}{bounds}; {default_text}{alias}\n"
                    f"      {f.metadata.get('help', '')}")
    return "\n".join(rows)
