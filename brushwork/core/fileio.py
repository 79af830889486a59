"""Writing files safely: atomic writes (local or any fsspec URL), safe output names, one disk-error line.

Every writer of the project goes through here: a temp name beside the target, then rename, so no
reader ever sees half a file and a failed write leaves nothing behind; names that come from input
(a pairs file, a sample key) become file names only through ``safe_name``, so nothing is written
outside the output folder.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from brushwork.core.errors import BrushworkError, ConfigError

MAX_NAME_BYTES = 200  # leaves room for suffixes under the usual 255-byte limit


def disk_error(path: str | os.PathLike, err: OSError) -> BrushworkError:
    """One clear line for the OS errors a user can act on."""
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return BrushworkError(f"disk full while writing {path}; free space and rerun (finished files are "
                              "kept, the unfinished one was not written)")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return BrushworkError(f"cannot write {path}: {err.strerror}; choose a writable location")
    if err.errno == errno.EFBIG:
        return BrushworkError(f"cannot write {path}: larger than this shell's file-size limit (ulimit -f); raise "
                              "the limit and rerun (finished files are kept, the unfinished one was not written)")
    return BrushworkError(f"cannot write {path}: {err.strerror or err}")


# ---------------------------------------------------------------------------------------------
# Atomic writes


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit it is synced and renamed onto ``path``.

    The temp file is created with mode 0666 minus the umask, as a plain ``open()`` would (shared
    clusters need group-readable outputs), and removed on any error. Its name is fixed per target
    (``.{name}.tmp``): after a kill (which no handler sees) the rerun, which must write that
    unfinished target again, reuses and renames it, so no stale temp file outlives the rerun.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        remove_quietly(tmp)
        raise disk_error(path, e) from None
    except BaseException:
        remove_quietly(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_url(url: str, data: bytes) -> None:
    """``atomic_write_bytes`` for a local path or any fsspec URL (object stores: one PUT is atomic)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    if "file" in _protocols(fs):
        atomic_write_bytes(path, data)
        return
    tmp = f"{path}.tmp"
    try:
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)
    except BaseException:
        try:
            fs.rm(tmp)
        except Exception:  # noqa: BLE001 - best effort; the tmp name is never read
            pass
        raise


def _protocols(fs) -> tuple[str, ...]:
    return fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """A matplotlib figure written atomically (the format follows the extension)."""
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", **kwargs)
    return path


def remove_quietly(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Names from input


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def safe_name(name: str, what: str = "name") -> str:
    """``name`` if it is a safe single file name, else BrushworkError saying why.

    Refused: empty names, path separators, ``.``/``..``, absolute paths, control characters,
    names that start with a dot, and names over 200 bytes. A name that passes stays inside
    whatever folder it is joined to.
    """
    text = str(name)
    reason = None
    if not text.strip():
        reason = "it is empty"
    elif _UNSAFE.search(text) or os.sep in text or (os.altsep and os.altsep in text):
        reason = "it contains a path separator or a control character"
    elif text.startswith("."):
        reason = "it starts with '.'"
    elif len(text.encode("utf-8")) > MAX_NAME_BYTES:
        reason = f"it is longer than {MAX_NAME_BYTES} bytes"
    elif any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        reason = "it contains invisible control characters"
    if reason:
        raise BrushworkError(f"{what} {text!r} is not a safe file name ({reason}); use letters, digits, "
                             "'_', '-' and '.' only")
    return text


def inside(root: str | os.PathLike, relative: str, what: str = "path") -> Path:
    """``root/relative`` for a relative path whose every part is a safe name (no escape from ``root``)."""
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute():
        raise BrushworkError(f"{what} {relative!r} must be a relative path inside {root}")
    for part in parts:
        safe_name(part, what)
    return Path(root).joinpath(*parts)



def distinct_stems(names: list[str], keep: str = ".png", ids: list[str] | None = None) -> list[str]:
    """One output stem per input name (relative paths), distinct whenever the names are.

    The rule, documented in README: a name's stem is the name without its extension ("sub/a.jpg" →
    "sub/a"); inputs whose stems collide ("a.jpg", "a.png") keep their whole name as the stem
    ("a.jpg" → "a.jpg", so the output is "a.jpg.png"), except the one whose extension is already
    ``keep`` ("a.png" → "a"). Anything still equal after that gets a short hash of its id (``ids``,
    e.g. full paths; default: the name). A part too long for a file name is cut (``fit_name``).
    """
    plain = [n.rsplit(".", 1)[0] if "." in n.rsplit("/", 1)[-1] else n for n in names]
    counts: dict[str, int] = {}
    for stem in plain:
        counts[stem] = counts.get(stem, 0) + 1
    stems = [stem if counts[stem] == 1 or name.lower().endswith(keep) else name for name, stem in zip(names, plain)]
    seen: dict[str, int] = {}
    for stem in stems:
        seen[stem.lower()] = seen.get(stem.lower(), 0) + 1
    stems = [stem if seen[stem.lower()] == 1 else f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
             for key, stem in zip(ids or names, stems)]
    return ["/".join(fit_name(part, MAX_NAME_BYTES - (len(keep) if i == stem.count("/") else 0), key)
                     for i, part in enumerate(stem.split("/"))) for key, stem in zip(ids or names, stems)]


def fit_name(name: str, room: int, key: str) -> str:
    """``name`` if it fits in ``room`` bytes, else its first bytes, '-' and a short hash of ``key`` (the
    full name or path), so two long names that begin alike still get distinct results."""
    if len(name.encode()) <= room:
        return name
    head = name.encode()[:room - 9].decode("utf-8", "ignore")
    return f"{head}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def is_within(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """``path`` is the local folder ``folder`` or lies inside it (object-storage URLs and files: False)."""
    if not folder or "://" in str(path) or "://" in str(folder) or not Path(folder).is_dir():
        return False
    target, folder = Path(path).resolve(), Path(folder).resolve()
    return target == folder or folder in target.parents


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def out_file(out: str | os.PathLike, name: str) -> Path:
    """The file a tool writes into its --out folder. --out names a folder in every command; an --out that ends in
    the file's own suffix (the earlier meaning: the file itself) is still honoured, with a note on stderr."""
    path = Path(out)
    if path.suffix.lower() != Path(name).suffix.lower():
        return path / name
    from brushwork.core.log import warn

    warn(f"note: --out {out} names a file; --out is a folder in every command now (--out {path.parent} writes "
         f"{path.parent / name}); writing {path} as asked")
    return path


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
