"""The library's shape holds: subpackages by concern, a thin top, the library never imports the command line,
messages go through the logger (not bare prints), and the command-line/config layer stays thin."""

import ast

from conftest import REPO

LIBRARY = REPO / "brushwork"


def modules():
    return sorted(LIBRARY.rglob("*.py"))


def module_level_imports(tree: ast.Module):
    """Imports that run when the module is imported (not those under ``if __name__ == "__main__"``)."""
    guarded = {id(n) for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
               for n in ast.walk(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and id(node) not in guarded:
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and id(node) not in guarded and node.module:
            yield from (node.module, *(f"{node.module}.{a.name}" for a in node.names))


def test_subpackages_by_concern_and_a_thin_top():
    packages = [p for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()]
    top = [p.name for p in LIBRARY.glob("*.py") if p.name != "__init__.py"]
    assert len(packages) >= 4, packages
    assert len(top) <= 3, top


def test_the_library_never_imports_the_command_line():
    importers = [str(p.relative_to(REPO)) for p in modules() if p.name != "cli.py"
                 and "brushwork.cli" in set(module_level_imports(ast.parse(p.read_text())))]
    assert importers == []


def test_at_most_two_bare_prints_in_the_library():
    prints = [f"{p.relative_to(REPO)}:{node.lineno}" for p in modules() for node in ast.walk(ast.parse(p.read_text()))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"]
    assert len(prints) <= 2, prints


def test_the_command_line_and_config_layer_stays_thin():
    layer = [p for p in modules() if p.name.startswith(("cli", "config", "command")) and "schemas" not in p.parts]
    lines = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in layer}
    assert set(lines) == {"brushwork/cli.py", "brushwork/core/config.py"}, lines
    assert sum(lines.values()) <= 350, lines
