"""Which of the trainer's validation checks to ship, and at which threshold, compared on the same adapted weights:
scored on the rest of each event.

For work folders of ``benchmarks/adapt_families.py`` whose trainer saved the weights of every validation check
(``<event>/checks/step_<n>.npz``), each check's weights are moved back towards the base model's by the share the
run's card records, or ``--base-weight-share`` (``w = (1 - s) * trained + s * base``; halfway for the shipped
trainer), and scored with the
trainer's own functions (``training.adapt``) on the validation blocks of the analyst's strip (same request, same
seed), as trained and as moved. The moved weights then map the whole event with the plugin's pipeline, and the
part outside the strip is scored at every threshold. The base model (step 0: any move leaves it as it is) is a
candidate too, as in the trainer. Then these ways of choosing are compared, pooled over the events:

- ``before``: the check with the best validation MCC **as trained**, at the threshold with the best validation MCC
  of the moved weights (the trainer up to session 15);
- ``shipped``: the check with the best validation MCC **as moved** (what is shipped is what is validated), at the
  middle of the thresholds within ``THRESHOLD_TOLERANCE`` of the best (``training.adapt.calibrated_threshold_index``);
- each check choice with the other threshold rule, and the last check, for the two parts of the change apart.

No training happens here, so the comparison is free of training's run-to-run spread (README, *Adapt model to
event*). Usage::

    python benchmarks/adapt_check_choice.py --work benchmarks/.cache/adapt_checks \\
        --events EVENT_DIR ... --out benchmarks/results/issue12/check_choice_checks.json

Needs TensorFlow (the weights are loaded into the rebuilt Keras network and exported to ONNX for mapping).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import adapt_families as af  # noqa: E402
from adapt_share_rule import request_of  # noqa: E402
from model.adaptation_inputs import check_adaptation, read_mapped_area  # noqa: E402
from model.metrics import mcc_of_counts  # noqa: E402
from model.session import read_card  # noqa: E402
from training.adapt import (  # noqa: E402
    THRESHOLD_TOLERANCE,
    THRESHOLDS,
    AreaPredictor,
    calibrated_threshold_index,
    interpolated_weights,
    validation_counts,
)

THRESHOLD_RULES = {"best": lambda counts: int(np.argmax(mcc_of_counts(counts))),
                   "middle": calibrated_threshold_index}
"""The threshold with the best validation MCC (before), and the middle of those near it (shipped)."""
CHECK_RULES = ("as_trained", "as_moved", "last")
"""The check with the best validation MCC of its weights as trained (before) or as moved (shipped), or the last."""
CHOICES = {"before": ("as_trained", "best"), "shipped": ("as_moved", "middle")}


def score_checks(event_dir, folder, base_model, base_weights, network, seed, fraction, share=None):
    """Per candidate (the base model as step 0, then every saved check): validation counts as trained and as
    moved, and the counts on the rest of the event at every threshold of the moved weights' map."""
    from training.export import export_onnx

    box = af.write_partial_mapping(event_dir, fraction, folder)[0]
    request = request_of(event_dir, folder, base_model, seed)
    plan = check_adaptation(request)
    area = read_mapped_area(request, plan)
    predictor = AreaPredictor(area, plan.card, plan.grid.gsd_m)
    card = read_card(os.path.join(folder, "adapted.onnx"))
    if share is None:
        share = float(card.provenance.get("adaptation", {}).get("base_weight_share", 0.0))
    clouds = os.path.join(event_dir, "clouds.gpkg")
    candidates = [(0, base_weights)] + list(af.saved_checks(os.path.join(folder, "checks")))
    truth = where = None
    scored = []
    for step, trained in candidates:
        network.set_weights(trained)
        as_trained = validation_counts(predictor.probability(network), area, predictor.valid)
        network.set_weights(interpolated_weights(trained, base_weights, share))
        as_moved = validation_counts(predictor.probability(network), area, predictor.valid)
        # step 0: adapt_families.py's map of the base model
        tif = os.path.join(folder, "base.tif" if step == 0 else f"check_{step}_moved_{share:g}.tif")
        if not os.path.exists(tif):
            model = tif[:-4] + ".onnx"
            export_onnx(network, dataclasses.replace(card, threshold=0.5), model, overwrite=True, sizes_px=(96,),
                        tolerance=1e-3)
            af.probability_map(model, event_dir, tif, clouds)
        if truth is None:
            truth, where = af.truth_on(tif, event_dir), af.outside_box(tif, box)
        scored.append({"step": step, "as_trained": as_trained, "as_moved": as_moved,
                       "rest": af.rest_counts(tif, truth, where, THRESHOLDS)})
    return scored, share


def choose(scored, check_rule: str, threshold_rule: str):
    """The candidate a check rule picks (first of equals, as the trainer keeps the earliest) and the index of its
    threshold."""
    if check_rule == "last":
        pick = scored[-1]
    else:
        pick = max(scored, key=lambda c: float(mcc_of_counts(c[check_rule]).max()))
    return pick, THRESHOLD_RULES[threshold_rule](pick["as_moved"])


def _mcc(row) -> float:
    return round(float(mcc_of_counts(np.asarray(row)[None])[0]), 4)


def _best(counts) -> float:
    """The best MCC over the thresholds."""
    return round(float(mcc_of_counts(counts).max()), 4)


def main(argv=None) -> int:
    from training.onnx_weights import rebuild_network

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", default=os.path.join(ROOT, "model", "default_model.onnx"))
    parser.add_argument("--work", required=True, help="adapt_families.py work folder (one sub-folder per event)")
    parser.add_argument("--events", nargs="+", required=True)
    parser.add_argument("--mapped-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0, help="the seed adapt_families.py gave the trainer")
    parser.add_argument("--base-weight-share", type=float, default=None,
                        help="move the checks this far back (default: the share each run's card records; the runs "
                             "made while commit c79af0b chose the share per event need 0.5, the trainer's)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    network = rebuild_network(args.base_model, read_card(args.base_model))[0]
    base_weights = network.get_weights()
    pooled = {f"{c}+{t}": [] for c in CHECK_RULES for t in THRESHOLD_RULES}
    rows = []
    for event_dir in args.events:
        name = os.path.basename(os.path.normpath(event_dir))
        scored, share = score_checks(event_dir, os.path.join(args.work, name), args.base_model, base_weights,
                                     network, args.seed, args.mapped_fraction, args.base_weight_share)
        row = {"event": name, "base_weight_share": share, "checks": [
            {"step": c["step"], "validation_mcc_as_trained": _best(c["as_trained"]),
             "validation_mcc_as_moved": _best(c["as_moved"]), "rest_mcc_oracle_threshold": _best(c["rest"])}
            for c in scored], "choices": {}}
        for key in pooled:
            pick, index = choose(scored, *key.split("+"))
            pooled[key].append(pick["rest"][index])
            row["choices"][key] = {"step": pick["step"], "threshold": float(THRESHOLDS[index]),
                                   "rest_mcc": _mcc(pick["rest"][index])}
        rows.append(row)
        print(name, " | ".join(f"{k}: step {v['step']} at {v['threshold']:g}, rest {v['rest_mcc']:.3f}"
                               for k, v in row["choices"].items()), flush=True)
    summary = {"what": "which validation check of one adaptation run to ship and at which threshold, on the same "
                       "weights: 'before' = best validation MCC as trained + best-MCC threshold (the trainer up to "
                       "session 15), 'shipped' = best validation MCC as moved back towards the base + the middle of "
                       f"the thresholds within {THRESHOLD_TOLERANCE:g} of the best; scored on the rest of each event",
               "base_model": os.path.basename(args.base_model), "work": os.path.relpath(args.work, ROOT),
               "events": rows,
               "pooled_mcc": {key: af.pooled_mcc(counts) for key, counts in pooled.items()}}
    for label, (check_rule, threshold_rule) in CHOICES.items():
        summary["pooled_mcc"][label] = summary["pooled_mcc"][f"{check_rule}+{threshold_rule}"]
    af.write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
