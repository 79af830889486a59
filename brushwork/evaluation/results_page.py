"""``index.html`` beside translated images: one row per image, input | output (| reconstruction).

Like the original ``test.py`` results page: a static file that works offline, images shown at a
fixed width and linked at full size, every path relative to the page so the folder can be moved.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote

from brushwork.core.fileio import atomic_write_text

PAGE = "index.html"


def _link(page_dir: Path, path: Path) -> str:
    return quote(Path(os.path.relpath(path, page_dir)).as_posix())


def write(out_dir: str | Path, rows: list[dict], title: str, columns: tuple[str, ...],
          note: str = "", width: int = 256) -> Path:
    """Write OUT/index.html; each row maps column names (and ``name``) to an image path or a list of them."""
    out_dir = Path(out_dir)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("name", *columns))
    body = []
    for row in rows:
        cells = [f"<td>{html.escape(str(row['name']))}</td>"]
        for column in columns:
            paths = row.get(column)
            paths = [] if paths is None else paths if isinstance(paths, list) else [paths]  # a cell may hold several
            shown = []
            for path in paths:
                link = _link(out_dir, Path(path))
                shown.append(f'<a href="{link}"><img src="{link}" width="{width // len(paths)}" alt="'
                             f'{html.escape(column)}: {html.escape(str(row["name"]))}"></a>')
            cells.append(f"<td>{''.join(shown)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px; text-align: left; vertical-align: top; }}
img {{ display: inline-block; height: auto; vertical-align: top; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(note)}</p>
<table id="results">
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
</table>
</body></html>
"""
    path = out_dir / PAGE
    atomic_write_text(path, page)
    return path
