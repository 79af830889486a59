"""The glue every command-line script shares: fire parsing, generated help, one-line errors.

Scripts call ``sys.exit(cli.run(main, argv, help_text))``; the library itself never exits.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

import inspect

from .errors import BrushworkError, ConfigError
from .fileio import disk_error

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def error_line(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


def check_flags(main: Callable | dict, argv: list[str]) -> None:
    """Unknown ``--flags`` of a plain function CLI become one ConfigError line listing the valid ones."""
    target = main
    if isinstance(main, dict):
        if not argv or argv[0] not in main:
            raise ConfigError(f"choose a command: {', '.join(main)}")
        target, argv = main[argv[0]], argv[1:]
    params = inspect.signature(target).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return  # config-backed CLIs check their flags against the dataclass
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    valid = [p.name for p in named if p.default is not p.empty] or [p.name for p in named]
    for arg in argv:
        if arg.startswith("--") and len(arg) > 2:
            name = arg[2:].split("=", 1)[0].replace("-", "_")
            if name not in (p.name for p in named):
                raise ConfigError(f"unknown flag --{name}; valid flags: {', '.join('--' + v for v in valid)}")


def run(main: Callable, argv: list[str] | None = None, help_text: str | Callable[[], str] = "",
        prog: str | None = None) -> int:
    """Parse ``argv`` with fire into ``main(*args, **flags)``; map failures to exit codes."""
    import fire  # only the scripts need it

    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or os.path.basename(sys.argv[0] or "brushwork")
    if any(a in ("-h", "--help", "help") for a in argv[:1]) or "--help" in argv or "-h" in argv:
        print(help_text() if callable(help_text) else help_text)
        return 0
    try:
        check_flags(main, argv)
        # serialize=None-returning keeps fire from printing main's exit code
        result = fire.Fire(main, command=argv, name=prog, serialize=lambda _: None)
    except fire.core.FireExit as e:  # fire already printed its usage message
        return int(e.code or 0)
    except BrushworkError as e:
        error_line(prog, str(e))
        return EXIT_USAGE if e.__class__.__name__ == "ConfigError" else EXIT_FAILED
    except KeyboardInterrupt:
        error_line(prog, "interrupted; rerun the same command to continue where it stopped")
        return EXIT_INTERRUPTED
    except OSError as e:
        error_line(prog, str(disk_error(getattr(e, "filename", None) or "output", e)))
        return EXIT_FAILED
    return int(result) if isinstance(result, int) and not isinstance(result, bool) else 0


def end_distributed() -> None:
    """Wait for every rank, then tear the process group down before exit (else gloo can abort at exit)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
