#!/usr/bin/env bash
# Run a training command and turn preemption signals into a clean checkpoint-and-exit.
#
#   launch/local/run_ranks.sh accelerate launch ... train/cyclegan.py ...
#
# On SIGUSR1, SIGTERM or SIGINT this forwards SIGTERM to the rank processes (the launcher's direct
# children; the command itself when it has none). The ranks save a checkpoint and exit 0, and then
# so does the launcher. Signalling the launcher instead would kill it and orphan the ranks.
set -uo pipefail

echo "run_ranks: $*" >&2   # the exact command, in every job log
# The command runs in a session of its own: a signal sent to this script's whole process group
# (timeout, kill -- -PGID, SLURM) reaches only this script, which forwards one SIGTERM to the ranks;
# the launcher, which would die of it and exit 143, never sees it, and exits 0 with its ranks.
setsid "$@" &
launcher=$!
stopping=0

# shellcheck disable=SC2317  # called through the trap
forward() {
  stopping=1
  local ranks
  ranks=$(pgrep -P "$launcher" | tr "\n" " " || true)
  echo "run_ranks: signal received, asking ${ranks:-$launcher} to checkpoint and stop" >&2
  if [ -n "$ranks" ]; then
    # shellcheck disable=SC2086  # one pid per word
    kill -TERM $ranks 2>/dev/null || true
  else
    kill -TERM "$launcher" 2>/dev/null || true
  fi
}
trap forward USR1 TERM INT

while kill -0 "$launcher" 2>/dev/null; do
  wait "$launcher"  # returns early when a trap runs: wait again until the command is done
done
wait "$launcher"
status=$?
if [ "$stopping" = 1 ]; then
  echo "run_ranks: stopped after checkpointing (status $status); rerun the same command to resume" >&2
fi
exit "$status"
