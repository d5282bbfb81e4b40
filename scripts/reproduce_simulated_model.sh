#!/usr/bin/env bash
# Reproduce the first default model (landslide-resunet-simulated, shipped until 2026-11-27 as
# model/default_model.onnx; in the git history): simulate the training and unseen events,
# build the tile stores, train (resumable: rerun to continue), export, and
# evaluate on the unseen style. Usage: bash scripts/reproduce_simulated_model.sh [OUT.onnx]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=".venv/bin/python"
OUT="${1:-runs/simulated_model/simulated_model.onnx}"
EVENTS=runs/simulated_model/events
CONFIG=runs/simulated_model/config.toml
TRAINING_STYLES="temperate_mountains tropical_hills dry_ranges agricultural_hills"
ENCODINGS=(8bit s2_l2a s2_l2a_offset)
mkdir -p "$EVENTS"

# 12 training events (3 seeds per style, the three encodings in turn), 3 unseen events.
cp training/recipes/simulated_model.toml "$CONFIG"
sed -i 's#^output_dir = .*#output_dir = "."#' "$CONFIG"
i=0
for style in $TRAINING_STYLES; do
  for k in 1 2 3; do
    seed=$((i * 10 + k)); enc=${ENCODINGS[$(((i + k) % 3))]}
    [ -d "$EVENTS/${style}_${seed}" ] || $PY -m training simulate "$EVENTS/${style}_${seed}" --style "$style" --seeds "$seed" --radiometry "$enc"
    printf '\n[[events]]\nname = "%s_%s"\npre = "events/%s_%s/pre.tif"\npost = "events/%s_%s/post.tif"\ndem = "events/%s_%s/dem.tif"\ninventory = "events/%s_%s/inventory.gpkg|layername=landslides"\ncloud_mask = "events/%s_%s/clouds.gpkg"\nradiometry = "%s"\n' \
      "$style" "$seed" "$style" "$seed" "$style" "$seed" "$style" "$seed" "$style" "$seed" "$style" "$seed" "$enc" >> "$CONFIG"
  done
  i=$((i + 1))
done
for seed in 901 902 903; do
  enc=${ENCODINGS[$((seed % 3))]}
  [ -d "$EVENTS/unseen/dissected_plateau_${seed}" ] || $PY -m training simulate "$EVENTS/unseen/dissected_plateau_${seed}" --style dissected_plateau --seeds "$seed" --radiometry "$enc"
done

$PY -m training build-dataset "$CONFIG"
$PY -m training train "$CONFIG"
$PY -m training export "$CONFIG" "$OUT" --overwrite --calibrate-threshold --name "landslide-resunet-simulated" \
  --trained-on "12 simulated events (training.simulate; styles ${TRAINING_STYLES// /, }; 3 seeds each; 768 x 768 px at 10 m); no real imagery"
$PY -m training evaluate "$OUT" "$EVENTS"/unseen/dissected_plateau_* --write-card \
  --label "3 unseen simulated events (768 x 768 px at 10 m, seeds 901-903) of the style dissected_plateau, which no training event had; whole events"
