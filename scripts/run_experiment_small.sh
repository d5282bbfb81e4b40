#!/usr/bin/env bash
# The small experiment of training/recipes/experiment_small.toml: simulate its four events
# (three training styles and the unseen style, 384 px at 10 m, with train/test areas), then train,
# export and score conventional, combined and jackknife models (at 10 m; see the recipe).
# Resumable: run it again after an interruption. Results: runs/experiment_small/results.csv and
# runs/experiment_small/spider_<res>m.png. Usage: bash scripts/run_experiment_small.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=".venv/bin/python"
EVENTS=runs/experiment_small/events
mkdir -p "$EVENTS"

UNSEEN_STYLE=$($PY -c "from training.simulate_styles import UNSEEN_STYLE; print(UNSEEN_STYLE)")
if [ "$UNSEEN_STYLE" != dissected_plateau ]; then
  echo "error: training.simulate_styles.UNSEEN_STYLE is now '$UNSEEN_STYLE'; update the [[unseen]] event of" \
       "training/recipes/experiment_small.toml and this script." >&2
  exit 2
fi

simulate() {  # folder name, style, seed, radiometry
  local folder="$EVENTS/$1"
  if [ -f "$folder/areas.gpkg" ]; then
    return
  fi
  # a folder without areas.gpkg predates the train/test areas: simulate it again
  $PY -m training simulate "$folder" --style "$2" --seeds "$3" --size 384 --gsd 10 --radiometry "$4" --overwrite
}
simulate temperate_mountains_101 temperate_mountains 101 8bit
simulate tropical_hills_102 tropical_hills 102 s2_l2a
simulate dry_ranges_103 dry_ranges 103 s2_l2a_offset
simulate dissected_plateau_901 "$UNSEEN_STYLE" 901 8bit

$PY -m training experiment training/recipes/experiment_small.toml
