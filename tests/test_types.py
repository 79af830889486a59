"""The type checker on the library, against a baseline that only shrinks (tests/mypy_baseline.txt).

A new error fails the suite; a fixed one is reported so the baseline can lose its line. The baseline
lists errors without line numbers (file, code, message), so moving code does not disturb it. To
regenerate after fixing errors: ``python tests/test_types.py``.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BASELINE = Path(__file__).with_name("mypy_baseline.txt")


def current_errors() -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty"], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr or proc.stdout)
    found = []
    for line in proc.stdout.splitlines():
        match = re.match(r"^(\S+?):\d+: error: (.*)$", line)
        if match:
            found.append(f"{match[1]}: {match[2]}")
    return sorted(found)


@pytest.mark.slow
def test_the_type_checker_finds_no_error_outside_the_baseline():
    pytest.importorskip("mypy")
    baseline = BASELINE.read_text().splitlines()
    errors = current_errors()
    new = sorted(set(errors) - set(baseline)) + [e for e in set(errors) & set(baseline)
                                                  if errors.count(e) > baseline.count(e)]
    assert not new, "new type errors (fix them; the baseline only shrinks):\n" + "\n".join(new)
    fixed = set(baseline) - set(errors)
    if fixed:
        print(f"{len(fixed)} baseline error(s) fixed: regenerate with python tests/test_types.py")


if __name__ == "__main__":
    BASELINE.write_text("\n".join(current_errors()) + "\n")
    print(f"{BASELINE}: {len(BASELINE.read_text().splitlines())} errors")
