"""Where a model's misses and false alarms lie on the Hokkaido crop (a diagnosis beside ``score_hokkaido.py``).

    python benchmarks/hokkaido/where_errors_lie.py [MODEL.onnx ...] [--json out.json]

Each model maps the crop exactly as ``score_hokkaido.py`` does and is cut at its own best-MCC threshold on the
whole crop (so a badly calibrated card does not decide the answer). Then:

- **misses by scar brightness**: the reference regions (8-connected, >= 5 px) are split into quarters by their
  mean post-event brightness (mean of R, G, B, reflectance x 10000); for each quarter, the share of its scar
  pixels the model detects. Dim scars are small ones and the edges of shaded ones.
- **false alarms that darkened**: the share of the false-alarm pixels whose post-event brightness is below the
  pre-event one. Almost every scar of this event brightens its slope (3 % of the reference's scar pixels
  darkened, mostly at their edges), so false alarms that darkened come from what a model learned about dark scars, shade, snow
  melt or season, not from a scar it mislocated by a pixel.

Imports only numpy, GDAL, onnxruntime (through model/) and the scripts of this folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import build_reference as br  # noqa: E402
import score_hokkaido as sh  # noqa: E402


def misses_by_brightness(labels: np.ndarray, detected: np.ndarray, brightness: np.ndarray, quarters: int = 4,
                         min_px: int = sh.MIN_OBJECT_PX) -> list:
    """Per brightness quantile of the regions: regions, scar pixels, and the share of them ``detected``."""
    count = int(labels.max()) + 1
    pixels = np.bincount(labels.ravel(), minlength=count)
    found = np.bincount(labels.ravel(), weights=detected.ravel().astype(np.float64), minlength=count)
    mean_brightness = np.bincount(labels.ravel(), weights=brightness.ravel(), minlength=count) / np.maximum(pixels, 1)
    regions = np.flatnonzero(pixels >= min_px)
    regions = regions[regions > 0]
    edges = np.quantile(mean_brightness[regions], np.linspace(0, 1, quarters + 1))
    rows = []
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == quarters - 1
        inside = regions[(mean_brightness[regions] >= low) & ((mean_brightness[regions] <= high) if last
                                                              else (mean_brightness[regions] < high))]
        total = int(pixels[inside].sum())
        rows.append({"post_brightness": [round(float(low)), round(float(high))], "regions": int(inside.size),
                     "scar_px": total, "detected_share": round(float(found[inside].sum()) / total, 3) if total else None})
    return rows


def darkened_share(mask: np.ndarray, darkened: np.ndarray) -> float | None:
    return round(float(darkened[mask].mean()), 3) if mask.any() else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=[sh.DEFAULT_MODEL])
    parser.add_argument("--data-dir", default=br.DEFAULT_DATA_DIR)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    loaded = sh.load_reference()
    ref_ds, truth, assessed, labels = loaded["dataset"], loaded["truth"], loaded["assessed"], loaded["labels"]
    pre = br.read_image(args.data_dir, "pre")[0]
    post = br.read_image(args.data_dir, "post")[0]
    brightness = post.astype(np.float64).mean(axis=0)
    darkened = sh.change_indices(pre, post)["brightening"] < 0
    report = {"event": br.EVENT, "reference_scar_px_darkened_share": darkened_share(truth & assessed, darkened),
              "models": []}
    with tempfile.TemporaryDirectory(prefix="hokkaido_errors_") as work:
        for model_path, run in zip(args.models, sh.map_onto_reference(args.models, ref_ds, work, args.data_dir)):
            probability = run["probability"]
            valid = assessed & (probability >= 0)
            curve = sh.sweep(probability[valid], truth[valid])
            threshold = sh.best_mcc_threshold(curve)
            detected = valid & (probability >= threshold)
            false_alarms = detected & ~truth
            entry = {"file": sh._rel(os.path.abspath(model_path)), "best_mcc_threshold": threshold,
                     "mcc": round(float(curve["mcc"].max()), 4), "false_alarm_px": int(false_alarms.sum()),
                     "false_alarms_darkened_share": darkened_share(false_alarms, darkened),
                     "detections_on_scars_darkened_share": darkened_share(detected & truth, darkened),
                     "misses_by_scar_brightness": misses_by_brightness(labels, detected & truth, brightness)}
            report["models"].append(entry)
            quarters = ", ".join(f"{q['post_brightness'][0]}-{q['post_brightness'][1]}: {q['detected_share']}"
                                 for q in entry["misses_by_scar_brightness"])
            print(f"{os.path.basename(model_path)}: best-MCC threshold {threshold:.3g} (MCC {entry['mcc']}); "
                  f"false alarms {entry['false_alarm_px']} px, darkened {entry['false_alarms_darkened_share']}; "
                  f"scar pixels found by region brightness {quarters}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
