"""Fetch the original CycleGAN datasets through fsspec: retry, resume, checksum, safe extraction."""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from brushwork.core.errors import BrushworkError
from brushwork.core.fileio import atomic_write_text, file_sha256
from brushwork.core.storage import filesystem

DATASET_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
DATASETS = ("monet2photo", "cezanne2photo", "ukiyoe2photo", "vangogh2photo", "horse2zebra", "apple2orange",
            "summer2winter_yosemite", "iphone2dslr_flower")
CHUNK = 1 << 20


def dataset_url(name: str, mirror: str = "") -> str:
    """The official URL of a dataset zip, or MIRROR/NAME.zip."""
    if name not in DATASETS:
        raise BrushworkError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)} "
                             "(for your own images use data_prep/shard.py --a DIR --b DIR)")
    return f"{mirror.rstrip('/')}/{name}.zip" if mirror else DATASET_URL.format(name=name)


def refuse_web_page(path: Path, url: str) -> None:
    """A server that answers a folder URL with its listing (or an error page) gave HTML, not a zip: remove what
    was saved and say which URL to give."""
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head")):
        path.unlink()
        raise BrushworkError(f"{url} answered with a web page (a folder listing or an error page), not a zip; give "
                             "the zip's own URL with --url, or the folder that holds NAME.zip with --mirror")


def _remote_size(fs, url: str) -> int | None:
    try:
        return fs.size(url)
    except Exception:  # servers that refuse HEAD or hide the length: stream without a total
        return None


def fetch(url: str, dest: Path, progress: Callable[[int, int | None], None] | None = None,
          retries: int = 3, backoff: float = 1.0,
          hint: str = "fetch it another way and pass --from PATH_TO_ZIP_OR_DIR") -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming a partial file where the server allows.

    Failures are one BrushworkError naming the URL, ending with ``hint`` (what to do offline).
    """
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, progress)
            part.replace(dest)
            return dest
        except FileNotFoundError as e:
            if e.__cause__ is None or getattr(e.__cause__, "status", None) == 404:  # not a network failure
                raise BrushworkError(f"{url}: not found on the server (404); check the name, or {hint}") from None
            last_error = e.__cause__
            if attempt < retries:
                time.sleep(backoff * 2 ** attempt)
        except BrushworkError:
            raise
        except Exception as e:  # network errors of any client library: retry, then one clear line
            last_error = e
            if attempt < retries:
                time.sleep(backoff * 2 ** attempt)
    reason = str(last_error).split("\n")[0] or type(last_error).__name__
    raise BrushworkError(f"cannot download {url} ({reason}); {hint}")


def _fetch_once(url: str, part: Path, progress) -> None:
    fs, _ = filesystem(url)
    size = _remote_size(fs, url)
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset == size:
        return
    if offset and size is not None and offset < size:
        try:
            with fs.open(url, "rb", block_size=CHUNK) as src:
                src.seek(offset)
                first = src.read(CHUNK)  # raises ValueError where the server ignores Range
                with open(part, "ab") as f:
                    f.write(first)
                    _copy(src, f, offset + len(first), size, progress)
            return
        except ValueError:
            pass  # start over from byte 0
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    stream = {"block_size": 0} if {"http", "https"} & set(protocols) else {}
    with fs.open(url, "rb", **stream) as src, open(part, "wb") as f:
        _copy(src, f, 0, size, progress)


def _copy(src, dst, done: int, size: int | None, progress) -> None:
    if progress:
        progress(done, size)
    while block := src.read(CHUNK):
        dst.write(block)
        done += len(block)
        if progress:
            progress(done, size)
    if size is not None and done != size:
        raise OSError(f"connection closed after {done} of {size} bytes")


def owned(dest: Path) -> bool:
    """Whether ``dest`` is a dataset folder this tool extracted: its source record sits beside it."""
    return (dest.parent / f"{dest.name}.source.json").is_file()


def extract(zip_path: Path, dest: Path) -> Path:
    """Extract into ``dest`` (via a temp folder, refusing members that escape it); returns dest."""
    tmp = dest.with_name(dest.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for member in zf.namelist():
                target = (tmp / member).resolve()
                if not str(target).startswith(str(tmp.resolve())):
                    raise BrushworkError(f"{zip_path}: member {member!r} would extract outside {dest}; refusing")
            zf.extractall(tmp)
    except zipfile.BadZipFile as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BrushworkError(f"{zip_path}: damaged zip ({e}); delete it and download again") from None
    # the official zips hold one top folder named like the dataset; flatten it
    inner = [p for p in tmp.iterdir()]
    root = inner[0] if len(inner) == 1 and inner[0].is_dir() else tmp
    if dest.exists():
        if not owned(dest):  # only a folder this tool extracted (its source record beside it) is replaced
            shutil.rmtree(tmp, ignore_errors=True)
            raise BrushworkError(f"{dest} exists and was not extracted by data_prep/download.py (no "
                                 f"{dest.name}.source.json beside it); move it away or choose another --dest")
        shutil.rmtree(dest)
    root.replace(dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def record_source(dest: Path, name: str, url: str, zip_path: Path | None) -> dict:
    """Write ``{name}.source.json`` beside the extracted folder (read into the shard manifest)."""
    record = {"dataset": name, "url": url}
    if zip_path is not None and zip_path.exists():
        record.update(sha256=file_sha256(zip_path), bytes=zip_path.stat().st_size)
    atomic_write_text(dest.parent / f"{name}.source.json", json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record
