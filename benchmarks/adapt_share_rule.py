"""A rule for how far back towards the base model the adapted weights go, chosen on the validation blocks,
against fixed shares, on the same adapted weights: scored on the rest of each event.

The rule (tried in the trainer in session 15, then dropped: it helped in two runs and lost 0.147 pooled MCC in a
third): the largest share of ``RULE_SHARES`` whose validation MCC is within ``SHARE_TOLERANCE`` of the best.

For each work folder of ``benchmarks/adapt_families.py`` the weights as trained are read back from
``adapted.onnx`` (its card says how far they were moved back: ``w = (1 - s) * trained + s * base``, so
``trained = (w - s * base) / (1 - s)``; cards from before the move record nothing and hold them as trained).
Then, with the trainer's own validation functions (``training.adapt``), each share of ``RULE_SHARES`` (and
the weights as trained, share 0) is scored on the same validation blocks of the analyst's strip (same request, same seed), its threshold calibrated there,
and the rule picks one. Every share's model maps the whole event with the plugin's pipeline and
is scored on the part outside the strip at its validation threshold. Pooled MCC is given for each fixed share
and for the rule, so the rule is compared with fixed shares without the run-to-run spread of training.

With ``--checks`` (work folders of a run that saved the weights of every validation check), a second set of
weights is scored the same way beside the trainer's: the **mean of all the checks' weights** (uniform weight
averaging of one run's checkpoints, as stochastic weight averaging, Izmailov et al. 2018), to see whether it
steadies what one run gives.

Usage::

    python benchmarks/adapt_share_rule.py --base-model BASE.onnx --work benchmarks/.cache/adapt_gap \\
        --events EVENT_DIR ... --out benchmarks/results/issue12/share_rule_gap.json

Needs TensorFlow (the weights are read back into Keras and exported again).
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
from model.adaptation_inputs import AdaptationRequest, check_adaptation, read_mapped_area  # noqa: E402
from model.grid import RasterInput  # noqa: E402
from model.metrics import mcc_of_counts  # noqa: E402
from model.session import read_card  # noqa: E402
from model.vectors import VectorInput  # noqa: E402
from training.adapt import THRESHOLDS, AreaPredictor, interpolated_weights, validation_counts  # noqa: E402

RULE_SHARES = (0.5, 0.25)
"""The shares the rule chooses among, the most preferred first (commit c79af0b also offered 0: the weights as
trained; in the third run it kept them for semi-arid 902 and marked half of that event)."""
SHARE_TOLERANCE = 0.05
"""The validation MCC a move back towards the base may cost before the rule takes a smaller share."""


def chosen_base_share(validation_mcc, tolerance: float = SHARE_TOLERANCE) -> float:
    """The largest share of the base weights whose validation MCC is within ``tolerance`` of the best share's."""
    best = max(validation_mcc.values())
    return max(share for share, mcc in validation_mcc.items() if mcc >= best - tolerance)


def request_of(event_dir: str, folder: str, base_model: str, seed: int) -> AdaptationRequest:
    """The request ``adapt_families.py`` gave the trainer for this event."""
    return AdaptationRequest(
        base_model=base_model, pre=RasterInput(os.path.join(event_dir, "pre.tif"), (1, 2, 3)),
        post=RasterInput(os.path.join(event_dir, "post.tif"), (1, 2, 3)),
        dem=RasterInput(os.path.join(event_dir, "dem.tif"), (1,)),
        landslides=VectorInput.parse(os.path.join(folder, "landslides.gpkg")),
        area=VectorInput.parse(os.path.join(folder, "area.gpkg")),
        mask_polygons=VectorInput.parse(os.path.join(event_dir, "clouds.gpkg")), seed=seed)


def trained_weights(adapted: str, base_weights):
    """The network of ``adapted``, its weights as trained (before the card's move back towards the base), the
    share it was moved and its card."""
    from training.onnx_weights import rebuild_network

    card = read_card(adapted)
    network = rebuild_network(adapted, card)[0]
    share = float(card.provenance.get("adaptation", {}).get("base_weight_share", 0.0))
    if share >= 1.0:
        raise ValueError(f"{adapted} holds the base model's weights (share 1): nothing to read back")
    weights = [(w - share * b) / (1.0 - share) for w, b in zip(network.get_weights(), base_weights)]
    return network, weights, share, card


SCORED_SHARES = tuple(sorted(set(RULE_SHARES) | {0.0}, reverse=True))
"""Scored beside the rule's candidates: the weights as trained too."""


def score_weights(trained, base_weights, network, predictor, area, card, folder, tag, event_dir, box):
    """Each share of ``SCORED_SHARES`` of ``trained``: validation MCC and threshold, counts on the rest."""
    from training.export import export_onnx

    by_share, rest_counts = {}, {}
    truth = where = None
    for share in SCORED_SHARES:
        network.set_weights(interpolated_weights(trained, base_weights, share))
        validation = validation_counts(predictor.probability(network), area, predictor.valid)
        best = int(np.argmax(mcc_of_counts(validation)))
        threshold = float(THRESHOLDS[best])
        model = os.path.join(folder, f"{tag}_share_{share:g}.onnx")
        export_onnx(network, dataclasses.replace(card, threshold=threshold), model,
                    overwrite=True, sizes_px=(96,), tolerance=1e-3)
        tif = os.path.join(folder, f"{tag}_share_{share:g}.tif")
        af.probability_map(model, event_dir, tif, os.path.join(event_dir, "clouds.gpkg"))
        if truth is None:
            truth, where = af.truth_on(tif, event_dir), af.outside_box(tif, box)
        rest_counts[share] = af.rest_counts(tif, truth, where, np.array([threshold]))[0]
        by_share[f"{share:g}"] = {"validation_mcc": round(float(mcc_of_counts(validation)[best]), 4),
                                  "threshold": threshold,
                                  "rest_mcc": round(float(mcc_of_counts(rest_counts[share][None])[0]), 4)}
    kept = chosen_base_share({share: by_share[f"{share:g}"]["validation_mcc"] for share in RULE_SHARES})
    return {"by_share": by_share, "rule_share": kept}, rest_counts, kept


def mean_of_checks(checks_dir: str):
    """The uniform mean of the weights saved at every validation check of one run."""
    total, steps = None, []
    for step, saved in af.saved_checks(checks_dir):
        weights = [w.astype(np.float64) for w in saved]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
        steps.append(step)
    return [(t / len(steps)).astype(np.float32) for t in total], steps


def main(argv=None) -> int:
    from training.onnx_weights import rebuild_network

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", required=True)
    parser.add_argument("--work", required=True, help="adapt_families.py work folder (one sub-folder per event)")
    parser.add_argument("--events", nargs="+", required=True)
    parser.add_argument("--mapped-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0, help="the seed adapt_families.py gave the trainer")
    parser.add_argument("--checks", action="store_true",
                        help="also score the mean of the weights of every validation check (<event>/checks/)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    base_weights = rebuild_network(args.base_model, read_card(args.base_model))[0].get_weights()
    sets = ("trainer", "mean_of_checks") if args.checks else ("trainer",)
    pooled = {tag: {share: [] for share in (*SCORED_SHARES, "rule")} for tag in sets}
    rows = []
    for event_dir in args.events:
        name = os.path.basename(os.path.normpath(event_dir))
        folder = os.path.join(args.work, name)
        box = af.write_partial_mapping(event_dir, args.mapped_fraction, folder)[0]
        request = request_of(event_dir, folder, args.base_model, args.seed)
        plan = check_adaptation(request)
        area = read_mapped_area(request, plan)
        predictor = AreaPredictor(area, plan.card, plan.grid.gsd_m)
        adapted = os.path.join(folder, "adapted.onnx")
        network, trained, moved, card = trained_weights(adapted, base_weights)
        row = {"event": name, "adapted_card_share": moved}
        candidates = {"trainer": trained}
        if args.checks:
            candidates["mean_of_checks"], row["check_steps"] = mean_of_checks(os.path.join(folder, "checks"))
        for tag in sets:
            row[tag], rest_counts, kept = score_weights(candidates[tag], base_weights, network, predictor, area,
                                                        card, folder, f"rule_{tag}", event_dir, box)
            for share in SCORED_SHARES:
                pooled[tag][share].append(rest_counts[share])
            pooled[tag]["rule"].append(rest_counts[kept])
            print(name, tag, " | ".join(f"share {k}: validation {v['validation_mcc']:.3f}, rest {v['rest_mcc']:.3f}"
                                        for k, v in row[tag]["by_share"].items()), f"| rule keeps {kept:g}", flush=True)
        if not args.checks:
            row.update(row.pop("trainer"))
        rows.append(row)
    summary = {"what": "adapted weights (as trained) moved back towards the base model's by fixed shares and by "
                       f"a rule (the furthest share of {RULE_SHARES} within {SHARE_TOLERANCE:g} validation MCC of the "
                       "best); each share's threshold calibrated on the validation blocks; scored on the rest of "
                       "each event" + ("; beside the trainer's weights, the mean of every validation check's weights"
                                       if args.checks else ""),
               "base_model": os.path.basename(args.base_model), "work": os.path.relpath(args.work, ROOT),
               "events": rows,
               "pooled_mcc": {tag: {(k if k == "rule" else f"{k:g}"): af.pooled_mcc(c) for k, c in by.items()}
                              for tag, by in pooled.items()}}
    if not args.checks:
        summary["pooled_mcc"] = summary["pooled_mcc"]["trainer"]
    af.write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
