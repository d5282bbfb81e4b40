"""Score output ensembles that share the four flips between two models, at the cost of one model's flips.

    python benchmarks/ensemble_orientations.py --models A.onnx B.onnx --calibrate EVENT ... --held-out EVENT ... \
        --json out.json

The default model runs its network four times per window (the window and its three flips, ``flips``), and the
mean of two models' probabilities with their four flips each (``ensemble_probabilities.py``) costs eight. This
script asks whether the ensemble survives on four runs: model A on two of the flips and model B on the other
two. Every model maps every event and the real Hokkaido crop once per flip, through the plugin's own pipeline
(``score_families.event_probability`` and ``score_hokkaido.map_onto_reference``), with only the network call
restricted to that one flip (:func:`single_orientation`); the maps of a combination are then averaged exactly
as ``model.orientations.predict_oriented`` averages them inside one window.

Scored combinations, all with the threshold calibrated on the ``--calibrate`` events only
(``ensemble_probabilities.score``):

- each model with its four flips (checks: these must equal the models' own scores with ``flips``);
- both models with their four flips (eight runs);
- the six ways to give two flips to A and the other two to B (four runs; ``best_split``);
- the four ways to give three flips to A and the last one to B (four runs; ``best_three_one_split``).

``best_split`` and ``best_three_one_split`` name the splits of each kind best on the calibration events; the
held-out families and Hokkaido are only reported for them, never used to choose.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import tempfile
from typing import Dict, List, Sequence, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
for path in (REPO_ROOT, HERE, os.path.join(HERE, "hokkaido")):
    if path not in sys.path:
        sys.path.insert(0, path)

import ensemble_probabilities as ep  # noqa: E402
import score_families as sf  # noqa: E402
import score_hokkaido as sh  # noqa: E402
from model import session  # noqa: E402
from model.orientations import FLIPS, predict_oriented  # noqa: E402

FLIP_NAMES = ("as_is", "up_down", "left_right", "both")
Combination = List[Tuple[int, int]]  # (model index, flip index) pairs


@contextlib.contextmanager
def single_orientation(flip: int):
    """Within the block, every :class:`model.session.LandslideModel` runs its network once per window, on the
    window turned by ``FLIPS[flip]``, whatever its card's test-time augmentation says."""
    original = session.LandslideModel.predict

    def predict(self, inputs):
        return predict_oriented(self._run_once, inputs, [FLIPS[flip]])

    session.LandslideModel.predict = predict
    try:
        yield
    finally:
        session.LandslideModel.predict = original


def oriented_maps(models: Sequence[str], events: Sequence[str], reference: dict):
    """``(events, hokkaido)``: per event ``{"maps": {(model, flip): probability}, "truth": ...}`` and the Hokkaido
    crop's ``{(model, flip): probability}`` on the reference grid."""
    out = {event_dir: {"maps": {}, "truth": None} for event_dir in events}
    hokkaido = {}
    with tempfile.TemporaryDirectory(prefix="ensemble_orientations_") as work:
        for flip in range(len(FLIPS)):
            with single_orientation(flip):
                for event_dir in events:
                    for index, model_path in enumerate(models):
                        probability, truth, like = sf.event_probability(model_path, event_dir, work)
                        path = like.GetDescription()
                        like = None
                        os.remove(path)
                        out[event_dir]["maps"][(index, flip)] = probability.astype(np.float32)
                        out[event_dir]["truth"] = truth
                runs = sh.map_onto_reference(list(models), reference["dataset"], work)
                for index, run in enumerate(runs):
                    hokkaido[(index, flip)] = run["probability"].astype(np.float32)
            print(f"flip {FLIP_NAMES[flip]} mapped", flush=True)
    return out, hokkaido


def combinations(model_count: int) -> Dict[str, Combination]:
    """The scored combinations (see the module's docstring), by name."""
    every = range(len(FLIPS))
    combos: Dict[str, Combination] = {f"model_{m}_flips": [(m, f) for f in every] for m in range(model_count)}
    combos["all_models_all_flips"] = [(m, f) for m in range(model_count) for f in every]
    if model_count == 2:
        for first in itertools.combinations(every, 2):
            second = [f for f in every if f not in first]
            name = "split_0:" + "+".join(FLIP_NAMES[f] for f in first) + "_1:" + "+".join(FLIP_NAMES[f] for f in second)
            combos[name] = [(0, f) for f in first] + [(1, f) for f in second]
        for single in every:  # the second model on one flip only: closer to the first model alone
            rest = [f for f in every if f != single]
            name = "split_0:" + "+".join(FLIP_NAMES[f] for f in rest) + "_1:" + FLIP_NAMES[single]
            combos[name] = [(0, f) for f in rest] + [(1, single)]
    return combos


def mean_of(maps: Dict[Tuple[int, int], np.ndarray], combination: Combination) -> np.ndarray:
    return ep.mean_probability([maps[key] for key in combination], [1.0] * len(combination))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs=2, required=True, help="two carded ONNX models")
    parser.add_argument("--calibrate", nargs="+", required=True, help="events of families used in training")
    parser.add_argument("--held-out", nargs="+", required=True, help="events of families never used in training")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    reference = sh.load_reference()
    events, hokkaido = oriented_maps(args.models, args.calibrate + args.held_out, reference)
    report = {"what": "output ensembles sharing the four flips between two models; simulated events of whole "
                      "families and the real Hokkaido 2018 crop; thresholds calibrated on --calibrate only",
              "models": [os.path.relpath(os.path.abspath(m), REPO_ROOT) for m in args.models],
              "flips": list(FLIP_NAMES), "calibrate_events": args.calibrate, "held_out_events": args.held_out,
              "scores": {}}
    combos = combinations(len(args.models))
    for name, combination in combos.items():
        entry = ep.score(name, lambda data, c=combination: mean_of(data["maps"], c), events, args.calibrate,
                         args.held_out, mean_of(hokkaido, combination), reference, len(combination))
        entry["passes"] = [[args.models[m], FLIP_NAMES[f]] for m, f in combination]
        report["scores"][name] = entry
    for key, share in (("best_split", 2), ("best_three_one_split", 3)):
        splits = {k: v for k, v in report["scores"].items()
                  if k.startswith("split_") and sum(m == 0 for m, _ in combos[k]) == share}
        if splits:
            report[key] = max(splits, key=lambda k: splits[k]["calibration"]["mcc"])
            print(f"{key} on the calibration events: {report[key]}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
