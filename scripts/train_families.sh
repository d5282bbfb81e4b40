#!/usr/bin/env bash
# Train (or go on training) the ResUNet on generated events of the training families and real OSCD backgrounds,
# from the committed checkpoint, then export it with its card. Resumable: rerun to continue.
# Usage: bash scripts/train_families.sh [MINUTES] [WIDTH] [DRY_GRASSLAND_CHANCE]   (GPU machine: KERAS_BACKEND=jax)
# DRY_GRASSLAND_CHANCE (default 0): share of family events with pale dry grass, where scars can darken their slope.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
MINUTES="${1:-60}"
WIDTH="${2:-0.125}"
DRY="${3:-0}"
RUN=runs/families
mkdir -p "$RUN"
[ -d "$RUN/width_$WIDTH" ] || cp -r "training/checkpoints/families/width_$WIDTH" "$RUN/"
[ -f runs/oscd_rgb.npz ] || $PY -c "from training.real_backgrounds import pack_pairs; pack_pairs('../shared/data/oscd_s2_pairs', 'runs/oscd_rgb.npz')"
$PY -m training.train_generated --out "$RUN" --minutes "$MINUTES" --widths "$WIDTH" --pairs runs/oscd_rgb.npz \
  --dry-grassland-chance "$DRY"
$PY -m training export-weights "$RUN/width_$WIDTH" "$RUN/families_w$WIDTH.onnx" --overwrite
