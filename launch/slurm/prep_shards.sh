#!/usr/bin/env bash
# Shard a dataset with a SLURM job array, then check every shard and write the manifest:
#   INPUT=data/raw/monet2photo OUT=data/shards/monet2photo JOBS=16 launch/slurm/prep_shards.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=${JOBS:-8}                                  # array tasks; each writes every JOBS-th shard
export INPUT=${INPUT:-data/raw/monet2photo} OUT=${OUT:-data/shards/monet2photo} SHARD_ARGS=${SHARD_ARGS:-}
mkdir -p logs
array=$(sbatch --parsable --array=0-$((JOBS - 1)) --export=ALL launch/slurm/prep_shards.sbatch)
final=$(sbatch --parsable --dependency=afterok:"${array%%;*}" --export=ALL launch/slurm/prep_shards.sbatch)
echo "submitted: shard array $array ($JOBS tasks), manifest job $final (after it)"
