#!/usr/bin/env bash
# Reproduce model/default_model.onnx from its two committed checkpoints, averaged in one graph (an output ensemble,
# training.ensemble): training/checkpoints/default_model (the width-0.125 ResUNet after 4,109 steps on generated
# events of the training families and real OSCD backgrounds) and training/checkpoints/dry_grassland (the same
# network trained on to 7,118 steps with a share of the family events drawn with pale dry grass):
#   1. simulate the calibration events (training families, seeds never trained on) and the held-out events
#      (families no training event came from), 768 px, in the encodings below;
#   2. export the mean of the two networks to ONNX with its card (test-time augmentation: the window and its three
#      flips, each run through both networks: 8 network runs per window);
#   3. choose the threshold on the calibration events and store it, with the held-out scores beside the
#      brightening baseline's, in the card (benchmarks/score_families.py --write-card);
#   4. when the real Hokkaido crop is here (../shared/data/hokkaido_2018), store its scores in the card too
#      (benchmarks/hokkaido/score_hokkaido.py --write-card).
# Usage: bash scripts/reproduce_default_model.sh [OUT.onnx]      (about 20 minutes on two cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
OUT="${1:-runs/default_model/default_model.onnx}"
RUN=runs/default_model
EVENTS="$RUN/events"
CHECKPOINTS=(training/checkpoints/default_model training/checkpoints/dry_grassland)
mkdir -p "$EVENTS/calibrate" "$EVENTS/held_out" "$(dirname "$OUT")"

simulate() {  # folder family seed radiometry
  [ -f "$1/event.json" ] || $PY -m training simulate "$1" --family "$2" --seeds "$3" --size 768 \
    --radiometry "$4" --overwrite
}
for family in forested_mountains tropical_hills agricultural_hills; do
  simulate "$EVENTS/calibrate/${family}_801" "$family" 801 s2_l2a
  simulate "$EVENTS/calibrate/${family}_802" "$family" 802 8bit
done
for family in semi_arid_ranges volcanic_plateau; do
  simulate "$EVENTS/held_out/${family}_901" "$family" 901 s2_l2a
  simulate "$EVENTS/held_out/${family}_902" "$family" 902 s2_l2a_offset
  simulate "$EVENTS/held_out/${family}_903" "$family" 903 8bit
  simulate "$EVENTS/held_out/${family}_904" "$family" 904 s2_l2a
done

FAMILIES="simulated events of the families forested_mountains, tropical_hills and agricultural_hills \
(training.simulate_families, each event with its own terrain, land cover, seasons, sun, haze, clouds, sensor and file \
encoding), and simulated landslides rendered into the six real Sentinel-2 OSCD pairs (real_backgrounds)"
$PY -m training export-ensemble "$OUT" "${CHECKPOINTS[@]}" --overwrite --name landslide-resunet-families-mean2 \
  --test-time-augmentation flips \
  --member-trained-on "$FAMILIES; 4,109 steps, 40,136 tiles" \
    "the same network trained on from 4,109 to 7,118 steps with 35 % of the family events drawn with pale dry grass \
and part of their forest (--dry-grassland-chance 0.35; 64,208 tiles in all)" \
  --trained-on "generated events only (training.generated, no two tiles from one event draw), no real landslide \
imagery: the mean probability of two width-0.125 ResUNets, one trained 4,109 steps on $FAMILIES, the other the same \
network trained on to 7,118 steps with a share of dry grassland events. semi_arid_ranges and volcanic_plateau were held \
out of training of both (but dry grassland was designed after looking at semi_arid_ranges' failures)" \
  --chosen-because "by a rule written before it was scored (session 20): the mean of the two networks with the four \
flips had scored, in session 18, 0.756 pooled on the held-out families and on the real Hokkaido crop MCC 0.715 at its \
calibrated threshold and recall 0.674 at precision 0.8, against 0.737, 0.702 and 0.680 for the 4,109-step network \
alone; it was not shipped because two separate models were thought too slow. Exported as one graph it maps about \
540 to 600 km2/min on 2 cores in four runs (the single network: 950 to 1,030). The rule: adopt it if, exported with its parity check and \
scored through the plugin's pipeline, it keeps held-out pooled >= 0.75, Hokkaido MCC >= 0.692 and recall at precision \
0.8 >= 0.670, and maps >= 500 km2/min in two benchmark runs. The Hokkaido crop took part in choosing the first \
network (the best of four checkpoints there, with its flips chosen there too; README), so its Hokkaido figures are \
optimistic."
$PY benchmarks/score_families.py --models "$OUT" --calibrate "$EVENTS"/calibrate/* --held-out "$EVENTS"/held_out/* \
  --json "$RUN/families.json" --write-card
if [ -d ../shared/data/hokkaido_2018 ]; then
  $PY benchmarks/hokkaido/score_hokkaido.py "$OUT" --json "$RUN/hokkaido.json" --write-card
else
  echo "../shared/data/hokkaido_2018 is not here: the card gets no real-event scores" >&2
fi
