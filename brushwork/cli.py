"""The one command-line path: argv → typed config → the command's function → exit code.

Every script is ``sys.exit(cli.main(Command(...)))`` (or a dict of subcommands). Flags are the fields of the
command's config dataclass, parsed by tyro (types, choices, switches, lists, positionals, --help); this layer adds
what tyro lacks: presets under the flags, earlier spellings with a note, the original CycleGAN code's flags
answered, lists also as ``a,b,c``, ``none`` for an unset value, and bounds and cross-field rules (the config's own
checks). Every failure becomes one line and an exit code (``core/exits.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from brushwork.core import config, distributed, exits, presets
from brushwork.core.errors import ConfigError
from brushwork.core.progress import print_line


@dataclass(frozen=True)
class Command:
    """A command: its config class, the function that runs a resolved config, and its usage text."""

    config: type
    run: Callable[[Any], int | None]
    doc: str
    presets: str = ""                                   # --preset NAME looks in brushwork/presets/{presets}/
    default_preset: Callable[[dict], str | None] | str | None = None   # from the flags given, or fixed


# ---------------------------------------------------------------------------------------------
# Parsing: tyro reads the tokens into the config's typed fields; this layer adds what it lacks


def _is_flag(token: str) -> bool:
    if not token.startswith("-") or token == "-":
        return False
    try:
        for part in token.split(","):  # a negative number (or a list of numbers) is a value
            float(part)
    except ValueError:
        return True
    return False


def _tokens(cls: type, argv: list[str], allow_preset: bool) -> tuple[list[str], str | None]:
    """(the tokens as tyro reads them, the preset named). Earlier spellings get a note; the original CycleGAN
    code's flags their answer; an unknown flag one line with the closest; ``--flag true|false`` becomes
    ``--flag``/``--no_flag``; a list may be ``a,b`` (a file of that name stays whole); ``none`` is None."""
    fields, types_ = {f.name: f for f in dataclasses.fields(cls)}, config.field_types(cls)
    spellings, renamed = config.aliases_of(cls), config.renamed_of(cls)
    out: list[str] = []
    front: list[str] = []  # positional values, also of a positional field given as --name
    preset, i = None, 0
    while i < len(argv):
        token, i = argv[i], i + 1
        if token == "--" or not _is_flag(token):  # positional values go after a "--": tyro's lists do not interleave
            front += argv[i:] if token == "--" else [token]
            if token == "--":
                break
            continue
        if not token.startswith("--"):
            raise ConfigError(f"unknown option {token}; flags are spelt --name (see --help)")
        name, has_value, inline = token[2:].partition("=")
        name = name.replace("-", "_")
        if name in renamed and distributed.process_rank() == 0:
            print_line(f"note: --{name} is spelled --{renamed[name]} now (one word per meaning in every command, "
                       "README 'Flag vocabulary'); the old spelling still works", sys.stderr)
        name = spellings.get(name, name)
        negated = name.startswith("no_") and name not in fields and name[3:] in fields and not name.startswith(
            "no_no_") and config.is_bool(types_[name[3:]])
        field = name[3:] if negated else name
        if allow_preset and field == "preset" or field in fields:
            tp = types_.get(field, str)
            many, boolean = config.is_list(tp), config.is_bool(tp) and field != "preset"
            values = [inline] if has_value else []
            while not has_value and i < len(argv) and not _is_flag(argv[i]) and (many or not values) and (
                    not boolean or argv[i].lower() in ("true", "false", "none")):
                values, i = values + [argv[i]], i + 1
            if field == "preset":
                preset = values[0] if values else ""
                continue
            if boolean and types_[field] is bool:
                word = (values or ["true"])[0].lower()
                if word not in ("true", "false"):
                    off = f"--{field}=false" if field.startswith("no_") else f"--no_{field} or --{field}=false"
                    raise ConfigError(f"--{field} is a switch: give --{field}, {off}")
                on = word == "true"
                out.append(f"--{field}" if on != negated else f"--no_{field}")
                continue
            if boolean and not values:
                values = ["true"]  # a bare --compile of a switch that may also be unset (None)
            if many and not values:
                raise ConfigError(f"--{field} expects a list (give --{field} VALUE[,VALUE...])")
            if many:
                values = [v for item in values for v in (item.split(",") if not os.path.exists(item) else [item]) if v]
            values = ["None" if v.lower() == "none" and config.unwrap_optional(tp)[1] else v for v in values]
            values = [v.title() if boolean and v.lower() in ("true", "false") else v for v in values]
            if fields[field].metadata.get("positional"):
                front += values
            else:
                out += [f"--{field}", *values]
            continue
        from brushwork.schemas.original import instead_of

        advice = instead_of(name, cls)
        if advice:
            raise ConfigError(f"--{name} is the original CycleGAN code's flag; here: {advice}")
        shown = ", ".join(f"--{v}" for v in fields)
        raise ConfigError(f"unknown flag --{name}{config.suggest(name, list(fields))}; valid flags: {shown}")
    if front and not any(f.metadata.get("positional") for f in fields.values()):
        raise ConfigError(f"unexpected positional argument(s) {' '.join(front)}; this command takes only --flags")
    if preset == "":
        raise ConfigError("--preset expects a preset name or a TOML path")
    return out + (["--", *front] if front else []), preset


def _tyro_twin(cls: type, base: Any) -> Any:
    """(the config's twin for tyro, its instance holding ``base``): the same typed fields, with their help,
    bounds and other spellings in the help; positional fields as such; a ``no_x`` switch without ``--no_no_x``."""
    import tyro

    specs = []
    for f in dataclasses.fields(cls):
        meta, tp = f.metadata, config.field_types(cls)[f.name]
        lo, hi = meta.get("min"), meta.get("max")
        text = meta["help"] + (f"; {config.bounds_text(lo, hi)}" if lo is not None or hi is not None else "")
        text += "; required" if meta.get("required") else ""
        text += f" (also --{', --'.join(meta['alias'])})" if meta["alias"] else ""
        text += f" (formerly --{', --'.join(meta['renamed'])})" if meta["renamed"] else ""
        positional = f.name.upper() if meta.get("positional") else None  # other spellings: _tokens maps them
        marks: list[Any] = [tyro.conf.arg(help=text, metavar=positional)]
        marks += [tyro.conf.Positional] if meta.get("positional") else []
        marks += [tyro.conf.FlagCreatePairsOff] if tp is bool and f.name.startswith("no_") else []
        specs.append((f.name, Annotated[(tp, *marks)], dataclasses.field(default=getattr(base, f.name))))
    twin = dataclasses.make_dataclass(cls.__name__, specs, frozen=True)
    return twin, twin(**{f.name: getattr(base, f.name) for f in dataclasses.fields(cls)})


def _tyro(cls: type, base: Any, tokens: list[str], prog: str = "", doc: str = "") -> Any:
    """A ``cls`` from tokens on top of ``base``, parsed by tyro; its error box becomes one ConfigError line,
    its help the text of a ``_Help``."""
    import tyro

    twin, default = _tyro_twin(cls, base)
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            parsed = tyro.cli(twin, args=tokens, default=default, prog=prog or None, description=doc or None,
                              use_underscores=True)
    except SystemExit as e:
        if not e.code:
            raise _Help(said.getvalue()) from None
        # tyro's box: a title, then the message, then the argument's help, each between rules
        blocks: list[list[str]] = [[]]
        for line in said.getvalue().splitlines():
            line = line.strip(" │╭╮╰╯")
            if line and set(line) <= set("-─"):
                blocks.append([])
            elif line:
                blocks[-1].append(line)
        raise ConfigError(" ".join(next((b for b in blocks[1:] if b), blocks[0]))) from None
    return cls(**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(cls)})


class _Help(Exception):
    """tyro's --help text, captured."""


def resolve(command: Command, argv: list[str]) -> Any:
    """The command's resolved config for these tokens: defaults ← preset ← flags."""
    tokens, preset = _tokens(command.config, argv, allow_preset=bool(command.presets))
    if preset is None and command.default_preset is not None:
        default = command.default_preset
        preset = default(dataclasses.asdict(_tyro(command.config, command.config(), tokens))) if callable(
            default) else default
    cfg = _tyro(command.config, config.load_config(command.config, preset, tool=command.presets), tokens)
    config.check_required(cfg)
    cfg.check_inputs()
    return cfg


# ---------------------------------------------------------------------------------------------
# Help


def help_text(command: Command, prog: str) -> str:
    preset = command.default_preset if isinstance(command.default_preset, str) else None
    defaults = config.load_config(command.config, preset, tool=command.presets)
    has_file = preset and (presets.CONFIG_ROOT / command.presets / f"{preset}.toml").is_file()
    doc = command.doc.strip()
    if has_file:
        doc += f"\n\nDefaults: brushwork/presets/{command.presets}/{preset}.toml."
    if command.presets:
        known = ", ".join(presets.known_presets(command.presets))
        default = preset or ("chosen by the flags" if callable(command.default_preset) else "none: the values below")
        doc += (f"\n\n--preset NAME|FILE: a preset in brushwork/presets/{command.presets}/ ({known}) or a TOML file "
                f"(default: {default}); flags given win over it. A list takes a b c or a,b,c.")
    try:
        _tyro(command.config, defaults, ["--help"], prog, doc)
    except _Help as e:
        return str(e)
    raise AssertionError("tyro printed no help")


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
        exits.silence_stdout()
    return 0


# ---------------------------------------------------------------------------------------------
# Running


def main(command: Command | dict[str, Command], argv: list[str] | None = None, prog: str | None = None,
         doc: str = "") -> int:
    """Parse, resolve and run; every failure becomes one line and an exit code."""
    code = _run(command, argv, prog, doc)
    if distributed.group_ended():
        exits.exit_after_distributed(code)
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
    warnings.formatwarning = exits.one_line_warning
    warnings.showwarning = exits.show_warning
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
        return exits.handle(e, prog)
    return int(result) if isinstance(result, int) and not isinstance(result, bool) else 0


