import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SAMPLES = REPO / "data_prep" / "samples"


def run_script(script: str, *args: str, timeout: float = 300, env: dict | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run one of the project's CLI scripts with this interpreter; text output captured."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd or REPO)


def assert_one_error_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """A failed CLI run printed one error line (no traceback) containing every needle."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if "error:" in l]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def repo() -> Path:
    return REPO


def make_synth(root: Path, n_train: int, n_test: int = 2, size: int = 32, seed: int = 0) -> Path:
    from brushwork import synth

    synth.write_dataset(root, n_train=n_train, n_test=n_test, size=size, seed=seed)
    return root


def digest_tree(root: Path, pattern: str = "*") -> dict[str, str]:
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob(pattern)) if p.is_file()}
