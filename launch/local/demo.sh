#!/usr/bin/env bash
# The whole pipeline on the bundled samples, small enough for 2 CPU cores. Run by `make demo`.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
OUT=${DEMO_OUT:-demo_out}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"

step() { printf '\n== %s\n' "$*"; }

step "1. Sample data: bundled real images + a synthetic dataset with a known mapping"
"$PY" data_prep/synth.py --out "$OUT/synth" --n_train 16 --n_test 4 --size 64 --seed 0
"$PY" data_prep/check_images.py data_prep/samples "$OUT/synth"

step "2. Shards: validate and pack both datasets into WebDataset tars"
"$PY" data_prep/shard.py data_prep/samples/monet2photo --out "$OUT/shards/monet2photo" --samples_per_shard 4
"$PY" data_prep/shard.py "$OUT/synth" --out "$OUT/shards/synth" --samples_per_shard 2

step "Done. Outputs:"
echo "  real samples (validated):   data_prep/samples  (sources: data_prep/samples/SOURCES.md)"
echo "  synthetic dataset:          $OUT/synth"
echo "  shards + manifests:         $OUT/shards/monet2photo, $OUT/shards/synth"
