"""The one command-line path: argv → typed config → the command's function → exit code.

Every script is ``sys.exit(cli.main(Command(...)))`` (or a dict of subcommands). Flags are the fields of the
command's config (``schemas/``), parsed by tyro (types, choices, switches, lists, positionals, --help) on top of
the preset's values; ``_tokens`` adds what tyro lacks: earlier spellings with a note, the original CycleGAN
code's flags answered, lists also as ``a,b,c``, ``none``, ``--switch true|false``, values after positionals.
Every failure becomes one line and an exit code (``core/exits.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from brushwork.core import config, distributed, exits, presets
from brushwork.core.errors import ConfigError
from brushwork.core.progress import print_line
from brushwork.schemas import fields as schema


@dataclass(frozen=True)
class Command:
    """A command: its config class, the function that runs a resolved config, and its usage text."""

    config: type
    run: Callable[[Any], int | None]
    doc: str
    presets: str = ""                                   # --preset NAME looks in brushwork/presets/{presets}/
    default_preset: Callable[[dict], str | None] | str | None = None   # from the flags given, or fixed


def _is_flag(token: str) -> bool:
    try:  # a negative number (or a list of numbers) is a value
        return token.startswith("-") and token != "-" and not [float(part) for part in token.split(",")]
    except ValueError:
        return True


def _tokens(cls: type, argv: list[str], allow_preset: bool) -> tuple[list[str], str | None]:
    """(the tokens as tyro reads them, the preset named)."""
    fields, types_ = {f.name: f for f in dataclasses.fields(cls)}, schema.field_types(cls)
    spellings, renamed = schema.spellings_of(cls), schema.spellings_of(cls, renamed_only=True)
    out: list[str] = []
    front: list[str] = []  # positional values (also of a positional field given as --name): tyro wants them last
    preset, i = None, 0
    while i < len(argv):
        token, i = argv[i], i + 1
        if token == "--" or not _is_flag(token):
            front += argv[i:] if token == "--" else [token]
            i = len(argv) if token == "--" else i
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
            "no_no_") and schema.is_bool(types_[name[3:]])
        field = name[3:] if negated else name
        if not (field in fields or allow_preset and field == "preset"):
            raise ConfigError(_unknown_flag(cls, name))
        tp = types_.get(field, str)
        many, boolean = schema.is_list(tp), schema.is_bool(tp) and field != "preset"
        values = [inline] if has_value else []
        while not has_value and i < len(argv) and not _is_flag(argv[i]) and (many or not values) and (
                not boolean or argv[i].lower() in ("true", "false", "none")):
            values, i = values + [argv[i]], i + 1
        if field == "preset":
            preset = values[0] if values else ""
        elif boolean and tp is bool:
            word = (values or ["true"])[0].lower()
            if word not in ("true", "false"):
                off = f"--{field}=false" if field.startswith("no_") else f"--no_{field} or --{field}=false"
                raise ConfigError(f"--{field} is a switch: give --{field}, {off}")
            on = (word == "true") != negated  # a no_x switch takes a value in tyro: it has no --no_no_x
            out += [f"--{field}", str(on)] if field.startswith("no_") else [f"--{field}" if on else f"--no_{field}"]
        elif many and not values:
            raise ConfigError(f"--{field} expects a list (give --{field} VALUE[,VALUE...])")
        else:
            if many:  # a,b,c is a list, unless a file of that name exists
                values = [v for item in values for v in (item.split(",") if not os.path.exists(item) else [item]) if v]
            optional = schema.unwrap_optional(tp)[1]
            values = ["None" if optional and v.lower() == "none" else v.title() if boolean and v.lower() in (
                "true", "false") else v for v in values or (["true"] if boolean else [])]  # a bare --compile
            front, out = (front + values, out) if fields[field].metadata.get("positional") else (
                front, out + [f"--{field}", *values])
    if front and not any(f.metadata.get("positional") for f in fields.values()):
        raise ConfigError(f"unexpected positional argument(s) {' '.join(front)}; this command takes only --flags")
    if preset == "":
        raise ConfigError("--preset expects a preset name or a TOML path")
    return out + (["--", *front] if front else []), preset


def _unknown_flag(cls: type, name: str) -> str:
    from brushwork.schemas.original import instead_of

    if advice := instead_of(name, cls):
        return f"--{name} is the original CycleGAN code's flag; here: {advice}"
    names = [f.name for f in dataclasses.fields(cls)]
    return f"unknown flag --{name}{config.suggest(name, names)}; valid flags: {', '.join('--' + n for n in names)}"


def _tyro(cls: type, base: Any, tokens: list[str], prog: str = "", doc: str = "") -> Any:
    """A ``cls`` from tokens on top of ``base``, parsed by tyro from a twin of ``cls`` (help with bounds and
    other spellings; positionals; ``no_x`` switches without ``--no_no_x``). tyro's error box becomes one
    ConfigError line; its help the text of a ``_Help``."""
    import tyro

    specs, types_ = [], schema.field_types(cls)
    for f in dataclasses.fields(cls):
        meta, tp = f.metadata, types_[f.name]
        bounded = meta["min"] is not None or meta["max"] is not None
        text = meta["help"] + (f"; {schema.bounds_text(meta['min'], meta['max'])}" if bounded else "")
        text += "; required" if meta["required"] else ""
        text += "".join(f" ({word} --{', --'.join(meta[key])})"
                        for key, word in (("alias", "also"), ("renamed", "formerly")) if meta[key])
        marks: list[Any] = [tyro.conf.arg(help=text, metavar=f.name.upper() if meta["positional"] else None)]
        marks += [tyro.conf.Positional] if meta["positional"] else []
        marks += [tyro.conf.FlagConversionOff] if tp is bool and f.name.startswith("no_") else []
        specs.append((f.name, Annotated[(tp, *marks)], dataclasses.field(default=getattr(base, f.name))))
    twin = dataclasses.make_dataclass(cls.__name__, specs, frozen=True)
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            parsed = tyro.cli(twin, args=tokens, default=twin(**dataclasses.asdict(base)), prog=prog or None,
                              description=doc or None, use_underscores=True)
    except SystemExit as e:
        if not e.code:
            raise _Help(said.getvalue()) from None
        blocks: list[list[str]] = [[]]  # tyro's box: a title, the message, the argument's help, between rules
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
    default = command.default_preset
    if preset is None:
        preset = default(dataclasses.asdict(_tyro(command.config, command.config(), tokens))) if callable(
            default) else default
    cfg = _tyro(command.config, config.load_config(command.config, preset, tool=command.presets), tokens)
    schema.check_required(cfg)
    cfg.check_inputs()
    return cfg


def help_text(command: Command, prog: str) -> str:
    preset = command.default_preset if isinstance(command.default_preset, str) else None
    doc = command.doc.strip()
    if preset and (presets.CONFIG_ROOT / command.presets / f"{preset}.toml").is_file():
        doc += f"\n\nDefaults: brushwork/presets/{command.presets}/{preset}.toml."
    if command.presets:
        default = preset or ("chosen by the flags" if callable(command.default_preset) else "none: the values below")
        doc += (f"\n\n--preset NAME|FILE: a preset in brushwork/presets/{command.presets}/ "
                f"({', '.join(presets.known_presets(command.presets))}) or a TOML file (default: {default}); flags "
                "given win over it. A list takes a b c or a,b,c.")
    try:
        _tyro(command.config, config.load_config(command.config, preset, tool=command.presets), ["--help"], prog, doc)
    except _Help as e:
        return str(e)
    raise AssertionError("tyro printed no help")


def help_before_imports(command: Command) -> None:
    """For a script that imports torch at its top (a benchmark): answer --help before those imports, which
    take seconds. Call it above them, under ``if __name__ == "__main__"``."""
    if "-h" in sys.argv[1:] or "--help" in sys.argv[1:]:
        sys.exit(_print_help(help_text(command, os.path.basename(sys.argv[0] or "brushwork"))))


def subcommand_doc(doc: str, name: str) -> str:
    """The part of a command group's docstring about ``name``: its usage lines and the paragraphs that begin
    with its name (a subcommand's --help does not repeat the others')."""
    paragraphs = doc.strip().split("\n\n")[1:]
    usage = [line for p in paragraphs for line in p.splitlines() if line.startswith("  ") and f" {name} " in line]
    about = [p for p in paragraphs if p.split(maxsplit=1)[:1] == [name]]
    return "\n\n".join(["\n".join(usage), *about]) if usage or about else ""


def _print_help(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        exits.silence_stdout()
    return 0


def main(command: Command | dict[str, Command], argv: list[str] | None = None, prog: str | None = None,
         doc: str = "") -> int:
    """Parse, resolve and run; every failure becomes one line and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or os.path.basename(sys.argv[0] or "brushwork")
    exits.one_line_warnings()
    try:
        if isinstance(command, dict):
            if not argv or argv[0] in ("-h", "--help", "help"):
                rows = "".join(f"  {name:<12} {c.doc.strip().splitlines()[0]}\n" for name, c in command.items())
                return _print_help(f"{doc.strip()}\n\ncommands (each has its own --help: {prog} COMMAND --help):\n"
                                   f"{rows}")
            if argv[0] not in command:
                raise ConfigError(f"choose a command: {', '.join(command)} (got {argv[0]!r})")
            prog, command, argv = f"{prog} {argv[0]}", command[argv[0]], argv[1:]
        if "-h" in argv or "--help" in argv:
            return _print_help(help_text(command, prog))
        cfg = resolve(command, argv)
        distributed.check_launch_environment()
        result = command.run(cfg)
        code = int(result) if isinstance(result, int) and not isinstance(result, bool) else 0
    except BaseException as e:  # noqa: BLE001 - mapped to exit codes
        code = exits.handle(e, prog)
    return exits.finish(code)
