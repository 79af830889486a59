"""launch/: SLURM scripts under fake sbatch/srun/scontrol, 2 nodes on localhost, preemption, configs."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, SAMPLES, TINY_GAN, free_port, kill_tree, synth_shards

pytestmark = pytest.mark.slow
LAUNCH_SCRIPTS = sorted([*REPO.glob("launch/**/*.sh"), *REPO.glob("launch/**/*.sbatch"), REPO / ".ci/run"])

SHIMS = {
    "sbatch": r'''#!/usr/bin/env bash
echo "sbatch $*" >> "$SHIM_LOG"
array=""; script=""
for a in "$@"; do case $a in --array=*) array=${a#--array=};; -*) ;; *) script=$a;; esac; done
id=$((1000 + $(wc -l < "$SHIM_LOG")))
# as SLURM does, open the job's --output (relative to the submit dir) before the script runs: a missing folder
# fails the job before any line of the script (a `mkdir -p logs` inside it comes too late)
output=$(sed -n 's/^#SBATCH --output=//p' "$script" | head -1)
name=$(sed -n 's/^#SBATCH --job-name=//p' "$script" | head -1)
if [ -n "$output" ]; then
  path=${output//%x/$name}; path=${path//%j/$id}; path=${path//%A/$id}; path=${path//%a/0}
  if ! : >> "$path"; then echo "slurmstepd: error: cannot open $path for the job's output" >&2; exit 1; fi
fi
if [ -n "$array" ]; then
  lo=${array%-*}; hi=${array#*-}
  for i in $(seq "$lo" "$hi"); do
    SLURM_JOB_ID=$id SLURM_ARRAY_JOB_ID=$id SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=$((hi - lo + 1)) \
      bash "$script" >> "$SHIM_LOG.out" 2>&1 || exit 1
  done
else
  SLURM_JOB_ID=$id bash "$script" >> "$SHIM_LOG.out" 2>&1 || exit 1
fi
echo "$id"
''',
    "srun": r'''#!/usr/bin/env bash
echo "srun $*" >> "$SHIM_LOG"
nodes=1
while [[ $1 == --* ]]; do case $1 in --nodes=*) nodes=${1#--nodes=};; esac; shift; done
pids=()
for ((i = 0; i < nodes; i++)); do SLURM_NODEID=$i SLURM_PROCID=$i SLURM_LOCALID=0 "$@" & pids+=($!); done
trap 'kill -USR1 "${pids[@]}" 2>/dev/null' USR1
trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM
status=0
for p in "${pids[@]}"; do
  while kill -0 "$p" 2>/dev/null; do wait "$p"; done
  wait "$p"; rc=$?
  [ "$rc" = 0 ] || status=$rc
done
exit "$status"
''',
    "scontrol": r'''#!/usr/bin/env bash
echo "scontrol $*" >> "$SHIM_LOG"
if [ "$1 $2" = "show hostnames" ]; then for _ in $(seq "${SLURM_NNODES:-1}"); do echo 127.0.0.1; done; fi
''',
}


def test_every_sbatch_log_folder_is_in_a_fresh_checkout():
    """SLURM opens --output before the script runs, so its folder must exist already: it is part of the checkout
    (a tracked .gitignore keeps it in every clone and archive)."""
    scripts = sorted((REPO / "launch" / "slurm").glob("*.sbatch"))
    assert scripts
    for script in scripts:
        outputs = re.findall(r"^#SBATCH --output=(\S+)", script.read_text(), re.M)
        assert outputs, script
        for output in outputs:
            folder = Path(output).parent
            assert folder == Path(".") or (REPO / folder / ".gitignore").is_file(), (script.name, output)


@pytest.fixture
def shims(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in SHIMS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "slurm.log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}", "SHIM_LOG": str(log),
           "PY": sys.executable, "SLURM_SUBMIT_DIR": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for key in [k for k in env if k.startswith("SLURM_") and k != "SLURM_SUBMIT_DIR"]:
        env.pop(key)
    return env, log


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return synth_shards(tmp_path_factory.mktemp("launch"))


def run_tree(cmd, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run that, on a timeout, also ends every process the command started."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        out, err = proc.communicate()
        err += f"\n(timed out after {timeout} s)"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def latest(run):
    path = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    return (json.loads((path / "meta.json").read_text()),
            [torch.load(p, weights_only=True) for p in sorted(path.glob("rank_*.pt"))], path)


def tiny(shards):
    return " ".join(["--data", str(shards), *TINY_GAN, "--num_workers", "0"])


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed (apt-get install shellcheck)")
def test_scripts_are_shellcheck_clean():
    proc = subprocess.run(["shellcheck", *map(str, LAUNCH_SCRIPTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_multinode_sbatch_runs_one_launcher_per_node(tmp_path, shims, shards):
    env, log = shims
    run = tmp_path / "run"
    env.update(SLURM_JOB_ID="77", SLURM_NNODES="2", SLURM_JOB_NODELIST="node[01-02]", DATASET="synth",
               RUN_DIR=str(run), PORT=str(free_port()), EXTRA_ARGS=tiny(shards) + " --max_steps 6",
               PROCS_PER_NODE="1")  # the script's default rendezvous (c10d)
    proc = run_tree(["bash", "launch/slurm/train_cyclegan_multinode.sbatch"], cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = log.read_text().splitlines()
    assert calls[0] == "scontrol show hostnames node[01-02]"
    assert calls[1].startswith("srun --nodes=2 --ntasks-per-node=1 bash -c ")
    launches = sorted(l for l in proc.stderr.splitlines() if l.startswith("run_ranks: "))
    assert len(launches) == 2
    for rank, line in enumerate(launches):
        assert f"--machine_rank {rank} " in line and "--num_machines 2 --num_processes 2" in line
        assert "--main_process_ip 127.0.0.1" in line and "--rdzv_backend c10d" in line
        # node 0 hosts c10d's store (with every "node" on one host, both would otherwise try: a race)
        assert f"--rdzv_conf is_host={'true' if rank == 0 else 'false'}" in line
        assert line.endswith(f"--resume auto --mixed_precision no {tiny(shards)} --max_steps 6")
    meta, ranks, path = latest(run)
    assert meta["step"] == 6 and meta["world"] == 2 and len(ranks) == 2
    assert all(torch.equal(ranks[0]["weights_fingerprint"][n], ranks[1]["weights_fingerprint"][n]) for n in ranks[0]["weights_fingerprint"])
    assert len(list(path.glob("models.pt"))) == 1


def test_two_nodes_on_localhost_then_resume_on_one_node(tmp_path, shards):
    run = tmp_path / "run"
    env = {**os.environ, "PY": sys.executable, "PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    args = ["--dataset", "synth", "--run_dir", str(run), *tiny(shards).split(), "--epochs", "1", "--epochs_decay", "3",
            "--checkpoint_every", "100"]
    proc = run_tree(["bash", "launch/local/train_two_nodes_localhost.sh", *args, "--max_steps", "12"], cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta, ranks, path = latest(run)
    assert (meta["step"], meta["world"], meta["images_seen"]) == (12, 2, 24)
    for net in ("G_A", "G_B", "D_A", "D_B"):  # both machines ended with identical weights
        assert torch.equal(ranks[0]["weights_fingerprint"][net], ranks[1]["weights_fingerprint"][net])
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "models.pt", "optim.pt", "rank_00000.pt", "rank_00001.pt"]
    # resume on one machine with 2 processes: the global step and the LR schedule carry on
    env["NPROC"], env["DATASET"], env["RUN_DIR"], env["PORT"] = "2", "synth", str(run), str(free_port())
    proc = run_tree(["bash", "launch/local/train_cyclegan.sh", *tiny(shards).split(), "--epochs", "1",
                     "--epochs_decay", "3", "--checkpoint_every", "100", "--max_steps", "20"], cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 12 -> 20" in proc.stdout
    meta, _, _ = latest(run)
    assert (meta["step"], meta["images_seen"]) == (20, 40)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    lr = {e.step: e.value for e in acc.Scalars("lr")}  # the axis: images seen
    assert abs(lr[40] - 2e-4 * (1 - 2 / 4)) < 1e-9  # images seen before step 20: 38 -> epoch 2


def test_prep_shards_array_then_manifest(tmp_path, shims):
    env, log = shims
    out = tmp_path / "shards" / "monet2photo"
    env.update(INPUT=str(SAMPLES / "monet2photo"), OUT=str(out), JOBS="3", SHARD_ARGS="--samples_per_shard 8")
    proc = run_tree(["bash", "launch/slurm/prep_shards.sh"], cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr + (Path(str(log) + ".out").read_text())
    calls = [l for l in log.read_text().splitlines() if l.startswith("sbatch")]
    assert calls[0] == "sbatch --parsable --array=0-2 --export=ALL launch/slurm/prep_shards.sbatch"
    assert calls[1].startswith("sbatch --parsable --dependency=afterok:") and calls[1].endswith("prep_shards.sbatch")
    job_log = Path(str(log) + ".out").read_text()
    for i in range(3):
        assert f"data_prep/shard.py {SAMPLES / 'monet2photo'} --out {out} --workers 1 --job_index {i} --num_jobs 3 --samples_per_shard 8" in job_log
    assert "--manifest_only" in job_log
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["A"]["samples"] == 20 and len(manifest["shards"]) == 8


def test_gatys_array_splits_the_pairs(tmp_path, shims):
    env, log = shims
    pairs = tmp_path / "pairs.jsonl"
    content, style = SAMPLES / "gatys" / "content", SAMPLES / "gatys" / "style"
    pairs.write_text("".join(json.dumps({"content": str(c), "style": str(s)}) + "\n"
                             for c in sorted(content.glob("*.jpg")) for s in sorted(style.glob("*.jpg"))[:1]))
    out = tmp_path / "renders"
    env.update(PAIRS=str(pairs), OUT=str(out), PRESET="default", PORT=str(free_port()),
               EXTRA_ARGS="--random_vgg --image_size 32 --iterations 2")
    proc = run_tree(["sbatch", "--array=0-1", "launch/slurm/gatys.sbatch"], cwd=REPO, env=env)
    assert proc.returncode == 0, Path(str(log) + ".out").read_text()[-3000:]
    job_log = Path(str(log) + ".out").read_text()
    assert "--part 0 --parts 2" in job_log and "--part 1 --parts 2" in job_log
    assert len(list(out.glob("*.json"))) == 4  # 4 pairs, two per array task
    assert job_log.count("rendered 2, already done 0, failed 0") == 2


def wait_for(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def test_sigusr1_to_the_local_script_checkpoints_and_rerun_resumes(tmp_path, shards):
    run = tmp_path / "run"
    env = {**os.environ, "PY": sys.executable, "PORT": str(free_port()), "NPROC": "2", "DATASET": "synth",
           "RUN_DIR": str(run), "OMP_NUM_THREADS": "1"}
    args = ["bash", "launch/local/train_cyclegan.sh", *tiny(shards).split(), "--checkpoint_every", "100000",
            "--max_steps", "100000"]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: any((run / "tb").glob("events*")) if (run / "tb").exists() else False)
    time.sleep(2)
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "stopped by signal" in out and "asking" in err
    step = latest(run)[0]["step"]
    assert step > 0
    env["PORT"] = str(free_port())
    proc = run_tree([*args[:-2], "--max_steps", str(step + 2)], cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"step {step} -> {step + 2}" in proc.stdout


def test_sbatch_preemption_requeues_after_the_checkpoint(tmp_path, shims, shards):
    env, log = shims
    run = tmp_path / "run"
    env.update(SLURM_JOB_ID="4242", DATASET="synth", RUN_DIR=str(run), PORT=str(free_port()), PROCS_PER_NODE="2",
               EXTRA_ARGS=tiny(shards) + " --checkpoint_every 100000 --max_steps 100000")
    proc = subprocess.Popen(["bash", "launch/slurm/train_cyclegan.sbatch"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: any((run / "tb").glob("events*")) if (run / "tb").exists() else False)
    time.sleep(2)
    proc.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@120 delivers to the batch shell
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "stopped by signal" in out
    assert log.read_text().splitlines()[-1] == "scontrol requeue 4242"
    assert latest(run)[0]["step"] > 0


def test_cpu_accelerate_config_gives_two_ranks(tmp_path, shards):
    run = tmp_path / "run"
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file",
           str(REPO / "launch/accelerate/cpu_2proc.yaml"), "--main_process_port", str(free_port()),
           str(REPO / "train/cyclegan.py"), "--dataset", "synth", "--run_dir", str(run), *tiny(shards).split(),
           "--max_steps", "2"]
    proc = run_tree(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert latest(run)[0]["world"] == 2


@pytest.mark.parametrize("script,dataset_flag,run_dir", [("train/cyclegan.py", "--dataset synth", "runs/cyclegan-synth"),
                                                         ("train/adain.py", "", "runs/adain"),
                                                         ("train/fast_style.py", "", "runs/fast_style")])
def test_the_sbatch_scripts_run_any_trainer_with_its_own_run_dir(shims, script, dataset_flag, run_dir):
    """SCRIPT picks the trainer; the dataset preset goes to CycleGAN only; RUN_DIR defaults to the script's own."""
    env, _ = shims
    env.update(SLURM_JOB_ID="77", DATASET="synth", SCRIPT=script, PY="echo", PROCS_PER_NODE="2")
    for sbatch in ("launch/slurm/train_cyclegan.sbatch", "launch/slurm/train_cyclegan_multinode.sbatch"):
        proc = run_tree(["bash", sbatch], cwd=REPO, env={**env, "SLURM_NNODES": "1", "SLURM_NODEID": "0",
                                                           "SLURM_JOB_NODELIST": "localhost"}, timeout=60)
        assert proc.returncode == 0, (sbatch, proc.stderr[-2000:])
        line = proc.stdout.strip().splitlines()[-1]  # the launch command, echoed instead of run
        assert f"{script} " in line and f"--run_dir {run_dir} " in line, (sbatch, line)
        assert ("--dataset synth" in line) == bool(dataset_flag), (sbatch, line)
