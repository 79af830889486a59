#!/usr/bin/env bash
# Train CycleGAN on this workstation: all its GPUs (or 2 CPU processes), resuming automatically.
#   DATASET=cezanne launch/local/train_cyclegan.sh [more train/cyclegan.py flags]
# Preemption: `kill -USR1 <pid of this script>` saves a checkpoint and exits 0; run it again to resume.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATASET=${DATASET:-${DOMAIN:-monet}}         # monet | cezanne | ukiyoe | vangogh | your preset
RUN_DIR=${RUN_DIR:-runs/cyclegan-$DATASET}    # checkpoints, TensorBoard, samples
NPROC=${NPROC:-}                             # processes; default: one per GPU, else 2 on CPU
PORT=${PORT:-29500}                          # rendezvous port on this machine
PY=${PY:-python}                             # the interpreter with brushwork installed

gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
if [ "${gpus:-0}" -gt 0 ]; then
  NPROC=${NPROC:-$gpus}
  precision=${MIXED_PRECISION:-bf16}
else
  NPROC=${NPROC:-2}
  precision=no                               # bf16 is emulated (slow) on CPUs
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi

launch=("$PY" -m accelerate.commands.launch --num_machines 1 --num_processes "$NPROC"
        --main_process_port "$PORT" --mixed_precision "$precision" --dynamo_backend no)
if [ "$NPROC" -gt 1 ]; then launch+=(--multi_gpu); fi

echo "train_cyclegan: $DATASET with $NPROC process(es), run dir $RUN_DIR" >&2
exec launch/local/run_ranks.sh "${launch[@]}" train/cyclegan.py --dataset "$DATASET" --run_dir "$RUN_DIR" \
  --resume auto --mixed_precision "$precision" "$@"
