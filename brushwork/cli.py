"""The one command-line path: argv → typed config → the command's function → exit code.

Every script is ``sys.exit(cli.main(Command(...)))`` (or a dict of subcommands). Flags are the
fields of the command's config dataclass: ``--name value``, ``--name=value``, ``--max-steps`` for
``--max_steps``, a bare ``--flag`` for a boolean (``--no_flag`` sets a boolean ``flag`` false), a
list as ``a,b,c`` or ``--list a b c``, and positional arguments for the fields marked positional.
``--help`` lists every flag with its type, bounds, default and meaning.

Failures become exit codes: a bad flag or config value is one line and exit 2, any other
``BrushworkError`` (and the OS errors a user can act on: disk full, permission, missing file) one
line and exit 1, Ctrl-C exit 130, a closed pipe (``| head``) a quiet exit. ``BRUSHWORK_DEBUG=1``
adds the traceback to those lines; an unexpected exception is a bug and always shows its traceback.
Under a multi-process launcher an error found during set-up (the same on every rank) is printed
by rank 0 only; once a command calls ``started()`` each rank prints its own errors, marked with
its rank. The line is also written where torchelastic's launcher looks for a child's error, so
``accelerate launch``'s summary names it instead of "<N/A>".
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from brushwork.core import config, distributed
from brushwork.core.errors import BrushworkError, ConfigError
from brushwork.core.fileio import disk_error
from brushwork.core.progress import print_line

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141
DEBUG_ENV = "BRUSHWORK_DEBUG"



@dataclass(frozen=True)
class Command:
    """A command: its config class, the function that runs a resolved config, and its usage text."""

    config: type
    run: Callable[[Any], int | None]
    doc: str
    presets: str = ""                                   # --preset NAME looks in brushwork/presets/{presets}/
    default_preset: Callable[[dict], str | None] | str | None = None   # from the flags given, or fixed


def started() -> None:
    """For entry points: ``distributed.work_started`` (the library calls that one)."""
    distributed.work_started()


rank = distributed.process_rank  # 0 when RANK is unset or cannot be one: its error line is still printed


# ---------------------------------------------------------------------------------------------
# Parsing


def _is_flag(token: str) -> bool:
    if not token.startswith("-") or token == "-":
        return False
    try:
        for part in token.split(","):  # a negative number (or a list of numbers) is a value
            float(part)
    except ValueError:
        return True
    return False


def parse_args(cls: type, argv: list[str], allow_preset: bool = False) -> tuple[dict[str, Any], str | None]:
    """(raw values by field name, preset name) from command-line tokens; ConfigError on a bad token."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types_ = config.field_types(cls)
    aliases = config.aliases_of(cls)
    renamed = config.renamed_of(cls)
    positional = [n for n, f in fields.items() if f.metadata.get("positional")]
    values: dict[str, Any] = {}
    preset = None
    bare: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            bare += argv[i:]
            break
        if not _is_flag(token):
            bare.append(token)
            continue
        if not token.startswith("--"):
            raise ConfigError(f"unknown option {token}; flags are spelt --name (see --help)")
        name, has_value, inline = token[2:].partition("=")
        name = name.replace("-", "_")
        if name in renamed and rank() == 0:
            print_line(f"note: --{name} is spelled --{renamed[name]} now (one word per meaning in every command, "
                       "README 'Flag vocabulary'); the old spelling still works", sys.stderr)
        name = aliases.get(name, name)
        if allow_preset and name == "preset":
            if not has_value:
                if i >= len(argv):
                    raise ConfigError("--preset expects a preset name or a TOML path")
                inline, i = argv[i], i + 1
            preset = inline
            continue
        negated = name.startswith("no_") and name not in fields and name[3:] in fields and config.is_bool(
            types_[name[3:]])
        if negated:
            if has_value:
                raise ConfigError(f"--{name} takes no value (it sets --{name[3:]} false)")
            values[name[3:]] = False
            continue
        if name not in fields:
            from brushwork.schemas.original import instead_of

            advice = instead_of(name, cls)
            if advice:
                raise ConfigError(f"--{name} is the original CycleGAN code's flag; here: {advice}")
            config.build(cls, {name: None})  # raises the unknown-flag error with suggestions
        tp = types_[name]
        if has_value:
            value: Any = inline
        elif config.is_bool(tp):
            if i < len(argv) and argv[i].lower() in config._TRUE | config._FALSE:
                value, i = argv[i], i + 1
            else:
                value = True
        elif config.is_list(tp):
            items = []
            while i < len(argv) and not _is_flag(argv[i]):
                items.append(argv[i])
                i += 1
            if not items:
                raise ConfigError(f"--{name} expects {config.type_name(tp)} (give --{name} VALUE[,VALUE...])")
            value = ",".join(items) if len(items) > 1 else items[0]
        else:
            if i >= len(argv) or _is_flag(argv[i]):
                raise ConfigError(f"--{name} expects {config.type_name(tp)} (give --{name} VALUE)")
            value, i = argv[i], i + 1
        if config.is_list(tp) and name in values:  # a repeated list flag adds to it
            value = f"{values[name]},{value}"
        values[name] = value
    for name in positional:
        if not bare:
            break
        if config.is_list(types_[name]):
            values[name], bare = list(bare), []
        else:
            values[name] = bare.pop(0)
    if bare:
        what = f"positional argument(s) {' '.join(bare)}"
        takes = ", ".join(n.upper() for n in positional)
        raise ConfigError(f"unexpected {what}; this command takes " + (takes or "only --flags") +
                          " (see --help)")
    return values, preset


def resolve(command: Command, argv: list[str]) -> Any:
    """The command's resolved config for these tokens: defaults ← preset ← flags."""
    values, preset = parse_args(command.config, argv, allow_preset=bool(command.presets))
    if preset is None and command.default_preset is not None:
        default = command.default_preset
        preset = default(values) if callable(default) else default
    cfg = config.load_config(command.config, preset, values, tool=command.presets)
    config.check_required(cfg)
    cfg.check_inputs()
    return cfg


# ---------------------------------------------------------------------------------------------
# Help


def help_text(command: Command, prog: str) -> str:
    preset = command.default_preset if isinstance(command.default_preset, str) else None
    defaults = config.load_config(command.config, preset, tool=command.presets)
    has_file = preset and (config.CONFIG_ROOT / command.presets / f"{preset}.toml").is_file()
    where = f" (defaults of brushwork/presets/{command.presets}/{preset}.toml)" if has_file else ""
    text = f"{command.doc.strip()}\n\nflags{where}:\n{config.describe(command.config, defaults)}"
    if command.presets:
        known = ", ".join(config.known_presets(command.presets))
        default = preset or ("chosen by the flags (see above)" if callable(command.default_preset) else "(none: the values above)")
        text += (f"\n  --preset               a string; default {default}\n"
                 f"      a preset name in brushwork/presets/{command.presets}/ ({known}) or a TOML file path")
    return text + "\n  --help                 this text\n"


def help_before_imports(command: Command) -> None:
    """For a script that imports torch at its top (a benchmark): answer --help before those imports, which
    take seconds. Call it above them, under ``if __name__ == "__main__"``."""
    argv = sys.argv[1:]
    if "-h" in argv or "--help" in argv:
        sys.exit(_print_help(help_text(command, os.path.basename(sys.argv[0] or "brushwork"))))


def subcommand_doc(doc: str, name: str) -> str:
    """The part of a command group's docstring about ``name``: its usage lines and the paragraphs that begin
    with its name (a subcommand's --help does not repeat the others')."""
    paragraphs = [p for p in doc.strip().split("\n\n")[1:]]
    usage = [line for p in paragraphs for line in p.splitlines() if line.startswith("  ") and f" {name} " in line]
    about = [p for p in paragraphs if p.split(maxsplit=1)[:1] == [name]]
    return "\n\n".join(["\n".join(usage), *about]) if usage or about else ""


def group_help(commands: dict[str, Command], doc: str, prog: str) -> str:
    rows = "\n".join(f"  {name:<12} {c.doc.strip().splitlines()[0]}" for name, c in commands.items())
    return f"{doc.strip()}\n\ncommands (each has its own --help: {prog} COMMAND --help):\n{rows}\n"


def _print_help(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return 0


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# ---------------------------------------------------------------------------------------------
# Running


def main(command: Command | dict[str, Command], argv: list[str] | None = None, prog: str | None = None,
         doc: str = "") -> int:
    """Parse, resolve and run; every failure becomes one line and an exit code."""
    code = _run(command, argv, prog, doc)
    if distributed.group_ended():
        _exit_after_distributed(code)
    if code and distributed.has_started() and distributed.world_size() > 1:
        # A rank that failed mid-job leaves at once: its teardown (the DataLoader's workers, the process
        # group) can wait forever on ranks still blocked in a collective, and the launcher only stops
        # the others once this process has exited. The line is printed; nothing else is owed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(command: Command | dict[str, Command], argv: list[str] | None, prog: str | None, doc: str) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or os.path.basename(sys.argv[0] or "brushwork")
    warnings.formatwarning = _one_line_warning
    warnings.showwarning = _show_warning
    try:
        if isinstance(command, dict):
            if not argv or argv[0] in ("-h", "--help", "help"):
                return _print_help(group_help(command, doc, prog))
            if argv[0] not in command:
                raise ConfigError(f"choose a command: {', '.join(command)} (got {argv[0]!r})")
            prog, command, argv = f"{prog} {argv[0]}", command[argv[0]], argv[1:]
        if "-h" in argv or "--help" in argv:
            return _print_help(help_text(command, prog))
        cfg = resolve(command, argv)
        distributed.check_launch_environment()
        result = command.run(cfg)
    except BaseException as e:  # noqa: BLE001 - mapped to exit codes below
        return handle(e, prog)
    return int(result) if isinstance(result, int) and not isinstance(result, bool) else 0


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings (ours and the libraries') as one line each, without the source line under them."""
    return f"warning: {message}\n"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning raised while a progress bar is drawn goes above the bar."""
    print_line(_one_line_warning(message, category, filename, lineno).rstrip("\n"), file or sys.stderr)


def handle(e: BaseException, prog: str) -> int:
    """The exit code of an exception, after one line (or the traceback of a genuine bug)."""
    if isinstance(e, SystemExit):
        raise e
    if isinstance(e, BrokenPipeError):
        _silence_stdout()
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
    r = rank()
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


def end_distributed() -> None:
    """For entry points: ``distributed.end_process_group`` (the library calls that one)."""
    distributed.end_process_group()


def _exit_after_distributed(code: int) -> None:
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
