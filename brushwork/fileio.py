"""Atomic local writes: a temp name beside the target, then rename, so no reader sees half a file."""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from .errors import BrushworkError

# mkstemp creates files as 0600; finished outputs get the permissions a plain open() would give
_UMASK = os.umask(0)
os.umask(_UMASK)


def disk_error(path: str | os.PathLike, err: OSError) -> BrushworkError:
    """One clear line for the OS errors a user can act on."""
    if err.errno == errno.ENOSPC:
        return BrushworkError(f"disk full while writing {path}; free space and rerun "
                              "(finished files are kept, the partial one was removed)")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return BrushworkError(f"cannot write {path}: {err.strerror}; choose a writable location")
    return BrushworkError(f"cannot write {path}: {err.strerror or err}")


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit it is synced and renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove_quietly(tmp)
        raise disk_error(path, e) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
