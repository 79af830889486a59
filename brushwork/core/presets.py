"""Preset files: a TOML file of a command's field values, found by name in ``brushwork/presets/{tool}/`` or by
path; ``inherit = "base.toml"`` (relative to the file) layers it on another, the child winning. A run's resolved
``config.toml`` reads back as a preset (its ``[launch]`` table, the launcher's record, is skipped)."""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from brushwork.core.errors import ConfigError

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
