"""Where pretrained weights come from: an explicit path, else the torch hub cache; never the network at run time."""

from __future__ import annotations

import os
from pathlib import Path

from brushwork.core.errors import BrushworkError


def resolve(given: str | os.PathLike | None, name: str, flag: str, test_flag: str) -> Path:
    """The weights file to load, or one error line saying how to get it (nothing is downloaded here)."""
    from brushwork.data.pretrained import lookup

    w = lookup(name)
    path = Path(given) if given else w.path
    if not path.is_file():
        where = f"{flag} {path} does not exist" if given else f"no {name} weights at {path}"
        raise BrushworkError(f"{where}; fetch them with python -m brushwork.pretrained {name} (or download "
                             f"{w.url} to {w.path}), or pass {flag} PATH ({test_flag} for tests only)")
    return path
