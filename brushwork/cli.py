"""The glue every command-line script shares: fire parsing, generated help, one-line errors.

Scripts call ``sys.exit(cli.run(main, argv, help_text))``; the library itself never exits.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from .errors import BrushworkError
from .fileio import disk_error

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def error_line(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


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
