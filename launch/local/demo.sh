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
"$PY" data_prep/synth.py --out "$OUT/synth" --n_train 16 --n_test 4 --image_size 64 --seed 0
"$PY" data_prep/check_images.py data_prep/samples "$OUT/synth"

step "2. Shards: validate and pack both datasets into WebDataset tars"
"$PY" data_prep/shard.py data_prep/samples/monet2photo --out "$OUT/shards/monet2photo" --overwrite   # default shards
"$PY" data_prep/shard.py "$OUT/synth" --out "$OUT/shards/synth" --overwrite

step "3. CycleGAN: 2 gloo processes x 1 loader worker on one shard per domain, tiny generator; stop at step 60, then resume to 90"
export OMP_NUM_THREADS=1 CUDA_VISIBLE_DEVICES=""
ACC=$(dirname "$PY")/accelerate
GAN=(train/cyclegan.py --dataset monet --data "$OUT/shards/monet2photo" --run_dir "$OUT/runs/cyclegan-monet"
     --ngf 16 --ndf 16 --n_blocks 6 --load_size 143 --crop_size 128 --num_workers 1
     --checkpoint_every 30 --sample_every 30 --log_every 10)
LAUNCH=("$ACC" launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no
        --main_process_port "${DEMO_PORT:-29571}")
rm -rf "$OUT/runs/cyclegan-monet"   # a run dir belongs to one run: the demo starts afresh
"${LAUNCH[@]}" "${GAN[@]}" --max_steps 60
"${LAUNCH[@]}" "${GAN[@]}" --max_steps 90 --resume auto
"$PY" eval/translate.py "$OUT/runs/cyclegan-monet" --input data_prep/samples/monet2photo/testA \
    --out "$OUT/translated/monet_to_photo" --direction AtoB --overwrite
"$PY" eval/translate.py "$OUT/runs/cyclegan-monet" --input data_prep/samples/monet2photo/testB \
    --out "$OUT/translated/photo_to_monet" --direction BtoA --results_html --reconstruct --overwrite

step "4. Fast style: one network for two styles (tiny width, random VGG-16: no weights offline), then stylise"
rm -rf "$OUT/runs/fast-style"
"$PY" train/fast_style.py --style data_prep/samples/gatys/style/starry_night.jpg,data_prep/samples/gatys/style/the_scream.jpg \
    --data "$OUT/shards/monet2photo" --run_dir "$OUT/runs/fast-style" --random_vgg --width 8 --size 64 --style_size 128 \
    --max_steps 40 --num_workers 1 --log_every 10 --sample_every 20 --checkpoint_every 20
"$PY" eval/stylize.py "$OUT/runs/fast-style" --input data_prep/samples/monet2photo/testB --out "$OUT/stylized/mix" \
    --style_mix 0.5,0.5 --overwrite --results_html --onnx "$OUT/stylized/fast_style_mix.onnx"

step "4b. Arbitrary style (AdaIN): one decoder trained on photos (B) and paintings (A) of the shards, then any painting"
rm -rf "$OUT/runs/adain"
"$PY" train/adain.py --data "$OUT/shards/monet2photo" --run_dir "$OUT/runs/adain" --random_vgg --size 64 --load_size 72 \
    --batch_size 4 --max_steps 30 --num_workers 1 --log_every 10 --sample_every 15 --checkpoint_every 15
"$PY" eval/stylize.py "$OUT/runs/adain" --input data_prep/samples/monet2photo/testB --out "$OUT/stylized/adain" \
    --style data_prep/samples/gatys/style/shipwreck.jpg,data_prep/samples/gatys/style/starry_night.jpg \
    --style_weights 0.7,0.3 --alpha 0.8 --style_size 128 --overwrite --results_html --onnx "$OUT/stylized/adain.onnx"

step "5. Gatys: every bundled content x style pair in one batched run (random VGG: no weights offline), Fig. 3 and 4"
"$PY" train/gatys.py --content data_prep/samples/gatys/content --style data_prep/samples/gatys/style \
    --out "$OUT/gatys" --random_vgg --image_size 128 --iterations 40 --batch_size 4 --overwrite
"$PY" train/gatys.py --content data_prep/samples/monet2photo/testB --style data_prep/samples/gatys/style/starry_night.jpg \
    --out "$OUT/gatys_photos" --random_vgg --image_size 96 --iterations 20 --batch_size 4 --overwrite
"$PY" eval/gatys_figures.py fig3 --content data_prep/samples/gatys/content/tubingen.jpg \
    --style data_prep/samples/gatys/style/the_scream.jpg --out "$OUT/gatys_figures" --random_vgg --image_size 96 --iterations 30 \
    --overwrite
"$PY" eval/gatys_figures.py fig4 "$OUT/gatys/tubingen__the_scream.json" "$OUT/gatys/dancing__starry_night.json" \
    --out "$OUT/gatys_figures"

step "6. Eval: grids (and the four methods side by side), loss plot, FID/KID (random features offline), a survey"
"$PY" eval/grids.py "$OUT/runs/cyclegan-monet" --out "$OUT/eval/grids" --rows 4 --cell_size 128
"$PY" eval/grids.py --compare "$OUT/gatys_photos" "$OUT/runs/fast-style" "$OUT/runs/adain" "$OUT/runs/cyclegan-monet" \
    --content data_prep/samples/monet2photo/testB --out "$OUT/eval/grids" --rows 4 --cell_size 128
"$PY" eval/plots.py "$OUT/runs/cyclegan-monet" --out "$OUT/eval"
"$PY" eval/fid.py --fakes "$OUT/translated/monet_to_photo" --reals data_prep/samples/monet2photo/testB --random_inception \
    --out "$OUT/eval"
rm -rf "$OUT/eval/survey" "$OUT/eval/survey_answers" "$OUT/eval/survey.zip" "$OUT/eval/survey_responses"
"$PY" eval/survey.py build --fakes "$OUT/stylized/mix" --reals data_prep/samples/monet2photo/testA \
    --out "$OUT/eval/survey" --n 4 --zip
"$PY" eval/survey.py simulate "$OUT/eval/survey_answers/key.json" --raters 14 --out "$OUT/eval/survey_responses"
"$PY" eval/survey.py score "$OUT/eval/survey_answers/key.json" "$OUT"/eval/survey_responses/*.json --out "$OUT/eval/survey_results"

step "Done. Outputs:"
echo "  real samples (validated):   data_prep/samples  (sources: data_prep/samples/SOURCES.md)"
echo "  synthetic dataset:          $OUT/synth"
echo "  shards + manifests:         $OUT/shards/monet2photo, $OUT/shards/synth"
echo "  CycleGAN run dir:           $OUT/runs/cyclegan-monet (checkpoints/, samples/, export/, tb/: tensorboard --logdir $OUT/runs)"
echo "  translated test images:     $OUT/translated/monet_to_photo, $OUT/translated/photo_to_monet (index.html)"
echo "  fast-style run dir:         $OUT/runs/fast-style (2 styles in one network)"
echo "  stylised photos + ONNX:     $OUT/stylized/mix (index.html), $OUT/stylized/fast_style_mix.onnx"
echo "  AdaIN run dir, any style:   $OUT/runs/adain; $OUT/stylized/adain (index.html), $OUT/stylized/adain.onnx"
echo "  Gatys renders (+ .json):    $OUT/gatys"
echo "  Gatys Fig. 3 / Fig. 4:      $OUT/gatys_figures/fig3.png, $OUT/gatys_figures/fig4.png"
echo "  CycleGAN grids, loss plot:  $OUT/eval/grids, $OUT/eval/losses.png (FID/KID: $OUT/eval/fid.json)"
echo "  four methods side by side:  $OUT/eval/grids/compare_methods.png"
echo "  survey package (send it):   $OUT/eval/survey/index.html, $OUT/eval/survey.zip"
echo "  survey key (keep it):       $OUT/eval/survey_answers/key.json"
echo "  survey scores + chart:      $OUT/eval/survey_results/results.md, $OUT/eval/survey_results/survey_chart.png"
