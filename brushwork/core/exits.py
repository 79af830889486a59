"""How a command ends: every failure is one line and an exit code.

A bad flag or config value is exit 2, any other ``BrushworkError`` (and the OS errors a user can act on: disk full,
permission, missing file) exit 1, Ctrl-C exit 130, a closed pipe (``| head``) a quiet exit. ``BRUSHWORK_DEBUG=1``
adds the traceback to those lines; an unexpected exception is a bug and always shows its traceback. Under a
multi-process launcher an error found during set-up (the same on every rank) is printed by rank 0 only; once work
has started each rank prints its own errors, marked with its rank. The line is also written where torchelastic's
launcher looks for a child's error, so ``accelerate launch``'s summary names it instead of "<N/A>".
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
import traceback

from brushwork.core import distributed
from brushwork.core.errors import BrushworkError, ConfigError
from brushwork.core.fileio import disk_error
from brushwork.core.progress import print_line

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141
DEBUG_ENV = "BRUSHWORK_DEBUG"


def one_line_warnings() -> None:
    """Every warning from here on as one line (above a progress bar while one is drawn)."""
    import warnings

    warnings.formatwarning = one_line_warning
    warnings.showwarning = show_warning


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings (ours and the libraries') as one line each, without the source line under them."""
    return f"warning: {message}\n"


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning raised while a progress bar is drawn goes above the bar."""
    print_line(one_line_warning(message, category, filename, lineno).rstrip("\n"), file or sys.stderr)


def handle(e: BaseException, prog: str) -> int:
    """The exit code of an exception, after one line (or the traceback of a genuine bug)."""
    if isinstance(e, SystemExit):
        raise e
    if isinstance(e, BrokenPipeError):
        silence_stdout()
        return EXIT_PIPE
    if isinstance(e, KeyboardInterrupt):
        _report(prog, "interrupted; rerun the same command to continue where it stopped", e)
        return EXIT_INTERRUPTED
    if isinstance(e, BrushworkError):
        _report(prog, str(e), e)
        return EXIT_USAGE if isinstance(e, ConfigError) else EXIT_FAILED
    if isinstance(e, OSError) and e.errno is not None:
        _report(prog, os_error_line(e), e)
        return EXIT_FAILED
    traceback.print_exc()
    print(f"{prog}: internal error ({type(e).__name__}); this is a bug in brushwork, please report the "
          "traceback above", file=sys.stderr, flush=True)
    return EXIT_FAILED


def os_error_line(e: OSError) -> str:
    name = e.filename or "a file"
    if e.errno == errno.ENOENT:
        return f"{name}: no such file or folder; check the path"
    if e.errno in (errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, getattr(errno, "EDQUOT", -1)):
        return str(disk_error(name, e))
    return f"{name}: {e.strerror or e}"


def _report(prog: str, message: str, e: BaseException) -> None:
    r = distributed.process_rank()
    if r != 0 and not distributed.has_started():
        return  # set-up errors are the same on every rank: rank 0 says it once
    rank_specific = r != 0 and distributed.has_started()
    line = f"{prog}: error: rank {r}: {message}" if rank_specific else f"{prog}: error: {message}"
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(e)
    print_line(line, sys.stderr)  # one write: ranks' lines never interleave
    _elastic_error_file(line)


def _elastic_error_file(line: str) -> None:
    """torchelastic (accelerate launch --multi_gpu, torchrun) shows this file's message as the root cause."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or os.path.exists(path):
        return
    record = {"message": {"message": line, "extraInfo": {"py_callstack": line, "timestamp": str(int(time.time()))}}}
    try:
        with open(path, "w") as f:
            json.dump(record, f)
    except OSError:
        pass


def silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def finish(code: int) -> int:
    """``code``, or leave now where a rank of a distributed job must (after its process group ended, or
    after it failed while other ranks may still wait on it)."""
    if distributed.group_ended():
        exit_after_distributed(code)
    if code and distributed.has_started() and distributed.world_size() > 1:
        # A rank that failed mid-job leaves at once: its teardown (the DataLoader's workers, the process
        # group) can wait forever on ranks still blocked in a collective, and the launcher only stops
        # the others once this process has exited. The line is printed; nothing else is owed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def exit_after_distributed(code: int) -> None:
    """Leave a finished rank without the interpreter's teardown.

    Even after destroy_process_group, gloo's C++ threads can abort a rank while the interpreter is torn
    down ("terminate called without an active exception", SIGABRT: seen in ~1 of 15 two-rank runs under
    load), which turns a finished job into a failed one. The atexit handlers (loggers, trackers,
    DataLoader workers) still run; only the teardown that follows them is skipped.
    """
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
