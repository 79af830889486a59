#!/usr/bin/env bash
# Two "nodes" on this machine: two launchers, one process each, static rendezvous on 127.0.0.1.
# The same code path as a real multi-node job (machine ranks, head node, gloo or NCCL).
#   launch/local/train_two_nodes_localhost.sh [train/cyclegan.py flags]
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT=${PORT:-29540}
PROCS_PER_NODE=${PROCS_PER_NODE:-1}
PY=${PY:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

pids=()
for rank in 0 1; do
  launch/local/run_ranks.sh "$PY" -m accelerate.commands.launch --multi_gpu --num_machines 2 \
    --machine_rank "$rank" --num_processes $((2 * PROCS_PER_NODE)) --main_process_ip 127.0.0.1 \
    --main_process_port "$PORT" --mixed_precision no --dynamo_backend no \
    train/cyclegan.py --resume auto "$@" &
  pids+=($!)
done
trap 'kill -USR1 "${pids[@]}" 2>/dev/null || true' USR1 TERM INT
status=0
for pid in "${pids[@]}"; do
  while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done  # a trap interrupts wait: wait again
  rc=0
  wait "$pid" || rc=$?
  if [ "$rc" != 0 ]; then status=$rc; fi
done
exit "$status"
