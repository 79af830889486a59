"""The documents tell the truth: every benchmark table has the command that made it, every install advice names an
extra that exists, every repository path the README names exists."""

import configparser
import re

from conftest import REPO

TEXT_FILES = [p for folder in ("brushwork", "train", "eval", "data_prep", "bench", "launch")
              for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".sh", ".sbatch", ".md", ".toml")]
TEXT_FILES += [REPO / "README.md", REPO / "ARCHITECTURE.md", REPO / "BENCHMARKS.md", REPO / "Makefile"]


def test_every_benchmark_table_has_its_command_above_it():
    lines = (REPO / "BENCHMARKS.md").read_text().splitlines()
    section_start, previous = 0, ""
    for i, line in enumerate(lines):
        if line.startswith("#"):
            section_start = i
        starts_table = line.startswith("|") and not previous.startswith("|")
        if starts_table:
            above = "\n".join(lines[section_start:i])
            assert re.search(r"`(python|accelerate launch|PYTHONPATH=\S+ python|git worktree)[^`]*`", above), \
                f"BENCHMARKS.md line {i + 1}: a table without the command that made it ({line[:60]})"
        previous = line


def test_advice_to_install_an_extra_names_one_that_exists():
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    extras = set(parser["options.extras_require"])
    advised = {}
    for path in TEXT_FILES:
        for name in re.findall(r"(?:brushwork|-e '\.)\[(\w+)\]", path.read_text(errors="replace")):
            advised.setdefault(name, path.relative_to(REPO).as_posix())
    assert advised, "no install advice found: the pattern is out of date"
    unknown = {name: where for name, where in advised.items() if name not in extras}
    assert not unknown, f"advised extras that setup.cfg does not define: {unknown}"
    from brushwork.core.storage import EXTRAS

    assert {extra for _, extra in EXTRAS.values() if extra} <= extras  # the ones the storage error advises


def test_every_repository_path_the_readme_names_exists():
    text = (REPO / "README.md").read_text()
    roots = ("data_prep/", "launch/", "brushwork/", "train/", "eval/", "bench/", "tests/", "logs/")
    named = {m for m in re.findall(r"[\w./-]+", text) if m.startswith(roots) and not m.endswith("/...")}
    missing = sorted(p for p in named if not (REPO / p.rstrip(".,:;)")).exists()
                     and "{" not in p and "NAME" not in p and "<" not in p)
    assert not missing, missing
