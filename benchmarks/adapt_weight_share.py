"""How far back towards the base model the adapted weights should go: scored on the rest of each event.

Uses work folders of ``benchmarks/adapt_families.py`` whose ``adapted.onnx`` holds the weights as trained (runs
made before the trainer moved them back, or with ``python -m training adapt --base-weight-share 0``), and the
base model they came from. For every share ``s`` in
``--shares``, each weight becomes ``(1 - s) * adapted + s * base`` (``training.adapt.interpolated_weights``, the
function the trainer uses), the model keeps the adapted card's threshold (the trainer recalibrates it on the
validation blocks; this script has no validation blocks, so it does not), maps the whole event with the
plugin's pipeline, and is scored on the part outside the mapped strip at that threshold, with the best
threshold's MCC beside it. Share 1 is the base model itself at its own threshold.

Usage::

    python benchmarks/adapt_weight_share.py --base-model BASE.onnx --work benchmarks/.cache/adapt_families \\
        --events EVENT_DIR ... --shares 0,0.25,0.5,0.75,1 --out benchmarks/results/issue12/weight_share.json

Needs TensorFlow (the weights are read back into Keras and exported again).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


import adapt_families as af  # noqa: E402
from model.metrics import mcc_of_counts  # noqa: E402
from model.session import read_card  # noqa: E402
from score_families import THRESHOLDS  # noqa: E402  (0.05 to 0.99, the families benchmark's)


def share_model(base: str, adapted: str, share: float, out: str, base_weights_cache: dict) -> str:
    """The adapted model with its weights ``share`` of the way back to the base's (the adapted card)."""
    from training.adapt import interpolated_weights
    from training.export import export_onnx
    from training.onnx_weights import rebuild_network

    if share == 0.0:
        return adapted
    if share == 1.0:
        return base
    if base not in base_weights_cache:
        base_weights_cache[base] = rebuild_network(base, read_card(base))[0].get_weights()
    network = rebuild_network(adapted, read_card(adapted))[0]
    network.set_weights(interpolated_weights(network.get_weights(), base_weights_cache[base], share))
    export_onnx(network, read_card(adapted), out, overwrite=True, sizes_px=(96,), tolerance=1e-3)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", required=True)
    parser.add_argument("--work", required=True, help="adapt_families.py work folder (one sub-folder per event)")
    parser.add_argument("--events", nargs="+", required=True)
    parser.add_argument("--shares", default="0,0.5,1")
    parser.add_argument("--mapped-fraction", type=float, default=0.15)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    shares = [float(v) for v in args.shares.split(",")]
    cache: dict = {}
    rows, pooled = [], {share: [] for share in shares}
    for event_dir in args.events:
        name = os.path.basename(os.path.normpath(event_dir))
        folder = os.path.join(args.work, name)
        box = af.write_partial_mapping(event_dir, args.mapped_fraction, folder)[0]
        adapted = os.path.join(folder, "adapted.onnx")
        row = {"event": name, "by_share": {}}
        truth = where = None
        for share in shares:
            model = share_model(args.base_model, adapted, share, os.path.join(folder, f"share_{share:g}.onnx"), cache)
            tif = os.path.join(folder, f"share_{share:g}.tif")
            af.probability_map(model, event_dir, tif, os.path.join(event_dir, "clouds.gpkg"))
            if truth is None:
                truth, where = af.truth_on(tif, event_dir), af.outside_box(tif, box)
            counts = af.rest_counts(tif, truth, where, THRESHOLDS)
            mcc = mcc_of_counts(counts)
            threshold = read_card(model).threshold
            index = int(np.argmin(np.abs(THRESHOLDS - threshold)))
            pooled[share].append(counts[index])
            row["by_share"][f"{share:g}"] = {"threshold": threshold, "mcc": round(float(mcc[index]), 4),
                                             "best_threshold_mcc": round(float(mcc.max()), 4)}
        rows.append(row)
        print(name, " | ".join(f"share {k}: {v['mcc']:.3f} (best {v['best_threshold_mcc']:.3f})"
                               for k, v in row["by_share"].items()), flush=True)
    summary = {"what": "adapted weights moved back towards the base model's by a share; scored on the rest of each "
                       "event at the adapted card's threshold (share 1: the base model at its own)",
               "base_model": os.path.basename(args.base_model), "events": rows,
               "pooled_mcc": {f"{share:g}": af.pooled_mcc(c) for share, c in pooled.items()}}
    af.write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
