"""Score the mean probability of two or more carded ONNX models (an output ensemble) beside each model alone.

    python benchmarks/ensemble_probabilities.py --models A.onnx B.onnx --calibrate EVENT ... --held-out EVENT ... \
        --json out.json

Each model maps every simulated event and the real Hokkaido crop with the plugin's own pipeline, with its own
card (radiometry, normalisation, test-time augmentation), exactly as ``score_families.py`` and
``score_hokkaido.py`` do. The ensemble's probability is the weighted mean of the models' probabilities
(``--weights``, equal by default) where every model mapped the pixel. For every model and for the ensemble:

- the threshold is the best-MCC threshold pooled over the ``--calibrate`` events (training families, seeds never
  trained on), never over the held-out families or Hokkaido;
- at that threshold: pooled MCC of the calibration events, of the held-out events, per held-out family and per
  event; on the Hokkaido crop (whole crop, against ``benchmarks/hokkaido/reference.tif``) MCC, precision, recall;
- on the Hokkaido crop as well: recall at precision >= 0.8 and the best MCC of any threshold (an oracle);
- network runs per window: the sum of each model's test-time augmentation passes (speed falls with it: see the
  README's speed figures for one model with 1, 4 and 8 passes).

No plugin code is changed by this: the plugin runs one ONNX model. This script only measures whether an ensemble
would be worth building. Baselines for the same events are in the JSON of ``score_families.py`` and
``score_hokkaido.py`` (they do not depend on the model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Dict, List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
for path in (REPO_ROOT, HERE, os.path.join(HERE, "hokkaido")):
    if path not in sys.path:
        sys.path.insert(0, path)

import score_families as sf  # noqa: E402
import score_hokkaido as sh  # noqa: E402
from model.metrics import threshold_counts as confusions  # noqa: E402
from model.orientations import passes  # noqa: E402
from model.session import LandslideModel  # noqa: E402


def event_probabilities(models: List[str], events: List[str]) -> Dict[str, dict]:
    """Per event: each model's probability (float32, -1 where not mapped) and the inventory on the same grid."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="ensemble_") as work:
        for event_dir in events:
            probabilities, truth = [], None
            for model_path in models:
                probability, truth, like = sf.event_probability(model_path, event_dir, work)
                path = like.GetDescription()
                like = None
                os.remove(path)
                probabilities.append(probability.astype(np.float32))
            out[event_dir] = {"probabilities": probabilities, "truth": truth}
    return out


def hokkaido_probabilities(models: List[str], reference: dict) -> List[np.ndarray]:
    """Each model's probability over the Hokkaido crop, on the reference's grid."""
    with tempfile.TemporaryDirectory(prefix="ensemble_hokkaido_") as work:
        return [run["probability"].astype(np.float32)
                for run in sh.map_onto_reference(models, reference["dataset"], work)]


def mean_probability(probabilities: List[np.ndarray], weights: List[float]) -> np.ndarray:
    """The weighted mean where every probability is present, -1 elsewhere."""
    present = np.all([p >= 0 for p in probabilities], axis=0)
    total = sum(w * p for w, p in zip(weights, probabilities)) / float(sum(weights))
    return np.where(present, total, -1.0).astype(np.float32)


def score(name: str, probability_of, events: Dict[str, dict], calibrate: List[str], held_out: List[str],
          hokkaido: np.ndarray, reference: dict, runs: int) -> dict:
    """Scores of one probability source (``probability_of(event)`` gives its map of an event)."""
    counts = {}
    for event_dir, data in events.items():
        probability = probability_of(data)
        valid = probability >= 0
        counts[event_dir] = confusions(probability[valid], data["truth"][valid], sf.THRESHOLDS)
    best, scores = sf.calibrated_scores(counts, calibrate, held_out)
    truth, valid = reference["truth"], reference["assessed"] & (hokkaido >= 0)
    curve = sh.sweep(hokkaido[valid], truth[valid])
    at_threshold = sh.score_binary(truth, hokkaido >= sf.THRESHOLDS[best], valid, reference["labels"],
                                   reference["regions"]["whole_crop"])
    entry = {"network_runs_per_window": runs, **scores,
             "per_event": {os.path.basename(e): sf.prf(c[best]) for e, c in counts.items()},
             "hokkaido_whole_crop": {"at_calibrated_threshold": {k: at_threshold[k] for k in
                                                                 ("mcc", "precision", "recall")},
                                     "recall_at_precision_0.8": sh.recall_at_precision(curve),
                                     "best_mcc_any_threshold": round(float(curve["mcc"].max()), 4)}}
    hk = entry["hokkaido_whole_crop"]
    print(f"{name}: {runs} runs/window, threshold {entry['calibrated_threshold']:.2f}; calibration MCC "
          f"{entry['calibration']['mcc']:.3f}; held-out pooled {entry['held_out_pooled']['mcc']:.3f} ("
          + ", ".join(f"{f} {v['mcc']:.3f}" for f, v in entry["held_out_per_family"].items())
          + f"); Hokkaido MCC {hk['at_calibrated_threshold']['mcc']:.3f}, recall at P0.8 "
          f"{hk['recall_at_precision_0.8']['recall']:.3f}", flush=True)
    return entry


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="two or more carded ONNX models")
    parser.add_argument("--weights", nargs="+", type=float, default=None, help="one per model (default: equal)")
    parser.add_argument("--calibrate", nargs="+", required=True, help="events of families used in training")
    parser.add_argument("--held-out", nargs="+", required=True, help="events of families never used in training")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("--models needs two or more models")
    weights = args.weights or [1.0] * len(args.models)
    if len(weights) != len(args.models) or min(weights) < 0 or sum(weights) <= 0:
        parser.error("--weights needs one non-negative weight per model, not all zero")

    runs = [passes(LandslideModel(m, 1).card.test_time_augmentation) for m in args.models]
    events = event_probabilities(args.models, args.calibrate + args.held_out)
    reference = sh.load_reference()
    hokkaido = hokkaido_probabilities(args.models, reference)
    report = {"what": "output ensemble (weighted mean probability) beside each model alone; simulated events of "
                      "whole families and the real Hokkaido 2018 crop; thresholds calibrated on --calibrate only",
              "models": [os.path.relpath(os.path.abspath(m), REPO_ROOT) for m in args.models], "weights": weights,
              "calibrate_events": args.calibrate, "held_out_events": args.held_out, "scores": {}}
    for index, model_path in enumerate(args.models):
        report["scores"][os.path.basename(model_path)] = score(
            os.path.basename(model_path), lambda data, i=index: data["probabilities"][i], events, args.calibrate,
            args.held_out, hokkaido[index], reference, runs[index])
    report["scores"]["ensemble"] = score(
        "ensemble", lambda data: mean_probability(data["probabilities"], weights), events, args.calibrate,
        args.held_out, mean_probability(hokkaido, weights), reference, sum(runs))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
