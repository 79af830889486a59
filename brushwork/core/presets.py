"""Configs as TOML files: presets in, resolved configs out.

A preset is a TOML file of a command's field values, found by name in ``brushwork/presets/{tool}/`` or by path;
``inherit = "base.toml"`` (relative to the file) layers it on another, the child winning. Every command writes its
resolved config (``write_resolved``) into its output; read back as a preset it gives an equal config (the
``[launch]`` table, the launcher's record, is skipped)."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from brushwork.core.errors import ConfigError
from brushwork.core.fileio import atomic_write_text

# package data (setup.cfg), so presets are found after any install, editable or not
CONFIG_ROOT = Path(str(resources.files("brushwork"))) / "presets"
DEFAULTS = "default"  # the preset name that means the dataclass's own defaults (no file holds them)
INHERIT_KEY = "inherit"
LAUNCH_TABLE = "launch"  # in a run's config.toml: what accelerate decided (processes, precision, dynamo)


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
# A command's resolved config, as TOML


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
        from brushwork.core import records  # pydantic: only for the commands that read runs back

        records.check(values, schema, str(path), "restore it (it is written by the run) or remove it")
    return values
