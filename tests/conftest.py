import os
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):  # make test runs one worker per core: one thread each, no oversubscription
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

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
    from brushwork.data import synth

    synth.write_dataset(root, n_train=n_train, n_test=n_test, size=size, seed=seed)
    return root


def digest_tree(root: Path, pattern: str = "*") -> dict[str, str]:
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob(pattern)) if p.is_file()}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TINY_GAN = ["--ngf", "8", "--ndf", "8", "--n_blocks", "2", "--load_size", "36", "--crop_size", "32",
            "--log_every", "2", "--sample_every", "4"]


def train_command(run_dir, data, *flags, procs: int = 1, machines: int = 1, machine_rank: int = 0,
                  port: int | None = None) -> list[str]:
    """The command line of a tiny CycleGAN run: plain python for 1 process, else accelerate launch (gloo)."""
    script = [str(REPO / "train/cyclegan.py"), "--dataset", "synth", "--data", str(data), "--run_dir", str(run_dir),
              *TINY_GAN, *map(str, flags)]
    if procs == 1 and machines == 1:
        return [sys.executable, *script]
    launcher = str(Path(sys.executable).parent / "accelerate")
    return [launcher, "launch", "--multi_gpu", "--num_processes", str(procs), "--num_machines", str(machines),
            "--machine_rank", str(machine_rank), "--main_process_ip", "127.0.0.1",
            "--main_process_port", str(port or free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
            *script]


TRAIN_ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_train(run_dir, data, *flags, procs: int = 1, timeout: float = 300,
              env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(train_command(run_dir, data, *flags, procs=procs), capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **TRAIN_ENV, **(env or {})}, cwd=REPO)
    return proc


def synth_shards(root: Path, n_train: int = 16, per_shard: int = 2, size: int = 32) -> Path:
    from brushwork.data import shards

    src = make_synth(root / "src", n_train, n_test=4, size=size)
    out = root / "shards"
    opts = shards.ShardOptions()
    settings = {"max_side": opts.max_side, "max_pixels": opts.max_pixels, "jpeg_quality": opts.jpeg_quality}
    plans = shards.plan_shards(shards.sources_from_layout(src), samples_per_shard=per_shard, settings=settings)
    shards.claim_output(str(out), shards.plan_record(plans, {"samples_per_shard": per_shard, "max_shard_bytes": 0,
                                                             **settings}))  # as data_prep/shard.py does
    shards.write_shards(plans, str(out), opts)
    shards.write_manifest(plans, str(out), {"input": str(src)})
    return out


def kill_tree(pid: int, sig=None) -> None:
    """Signal a process and every descendant (torchrun starts ranks in sessions of their own)."""
    import signal as _signal

    sig = sig or _signal.SIGKILL
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    for p in tree:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def kill_at_first_checkpoint(cmd: list[str], run_dir: Path, timeout: float = 240) -> int:
    """Start a training command, kill it (launcher and every rank) once its first checkpoint is in place, and
    return that checkpoint's step."""
    import time

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            env={**os.environ, **TRAIN_ENV})
    latest = Path(run_dir) / "checkpoints" / "latest"
    deadline = time.time() + timeout
    while time.time() < deadline and not latest.exists():
        time.sleep(0.01)
    kill_tree(proc.pid)
    proc.wait()
    return int(latest.read_text().strip().split("_")[1])


CI_TOOLS = {"chromium": ("chromium", "chromium-browser", "google-chrome"), "chromedriver": ("chromedriver",),
            "shellcheck": ("shellcheck",)}


def pytest_sessionstart(session):
    """Under CI=true the browser and shell-script tests must run: a missing tool fails the job, never skips."""
    import shutil

    if os.environ.get("CI", "").lower() != "true":
        return
    missing = [tool for tool, names in CI_TOOLS.items() if not any(shutil.which(n) for n in names)]
    if missing:
        pytest.exit(f"CI=true but {', '.join(missing)} not installed: .ci/run installs them with apt-get "
                    "(their tests would otherwise skip)", returncode=1)
