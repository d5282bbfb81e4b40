"""Score carded ONNX models on simulated events of whole families, beside change-index baselines.

    python benchmarks/score_families.py --models A.onnx B.onnx --calibrate EVENT ... --held-out EVENT ... --json out.json

Events are folders written by ``python -m training simulate --family NAME`` (pre, post, dem, inventory,
clouds). Each model maps each event with the plugin's own core (``model.pipeline.map_landslides``, the event's
recorded radiometry, its cloud/snow polygons as the mask without a buffer, the card's scene normalisation) and its probability is scored pixel by pixel
against the rasterised inventory over the mapped pixels, for thresholds 0.05 to 0.99.

- The threshold is the best-MCC threshold pooled over the ``--calibrate`` events (families used in training,
  seeds never used in training); the ``--held-out`` events (families never used in training) are scored at
  that threshold, pooled and per family. The same is reported at the card's own threshold.
- Baselines on the same pixels: post-event brightening (mean of R, G, B post minus pre, after each image is
  normalised by its own median, so that 8-bit and reflectance events compare), greenness loss (GRVI pre
  minus GRVI post) and darkening (brightening's opposite: scars darker than the slope they strip), all off on
  slopes under 10 degrees, each at its own best-MCC threshold per family
  (an oracle threshold: the baseline's best case).
- Per event as well: each model's scores at its calibrated threshold and each baseline at its best threshold on
  that event alone (``per_event`` and ``baselines_per_event`` in the JSON), since one pooled figure can hide
  events where everything fails.

Imports numpy, GDAL, onnxruntime and the repository's model/ only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np
from osgeo import gdal, ogr

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from model.grid import RasterInput  # noqa: E402
from model.masks import VectorInput  # noqa: E402
from model.metrics import mcc_of_counts as mcc, threshold_counts as confusions  # noqa: E402
from model.pipeline import MappingRequest, map_landslides  # noqa: E402
from model.session import LandslideModel  # noqa: E402

gdal.UseExceptions()
THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.01), 2)
BASELINE_SLOPE_DEG = 10.0
BASELINES = ("brightening", "greenness_loss", "darkening")
MASK_BUFFER_M = 0.0  # the cloud polygons as they are (the plugin's default buffer is 100 m; see the README)


def prf(c: np.ndarray) -> Dict[str, float]:
    tp, fp, fn, _ = (float(v) for v in c)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"mcc": float(mcc(np.asarray(c))), "f1": f1, "precision": precision, "recall": recall}


def rasterize_inventory(event_dir: str, like: gdal.Dataset) -> np.ndarray:
    target = gdal.GetDriverByName("MEM").Create("", like.RasterXSize, like.RasterYSize, 1, gdal.GDT_Byte)
    target.SetGeoTransform(like.GetGeoTransform())
    target.SetProjection(like.GetProjection())
    source = ogr.Open(os.path.join(event_dir, "inventory.gpkg"))
    gdal.RasterizeLayer(target, [1], source.GetLayerByName("landslides"), burn_values=[1])
    return target.ReadAsArray().astype(bool)


def warp_like(path: str, like: gdal.Dataset, bands=None, algorithm: str = "bilinear") -> np.ndarray:
    gt = like.GetGeoTransform()
    bounds = (gt[0], gt[3] + like.RasterYSize * gt[5], gt[0] + like.RasterXSize * gt[1], gt[3])
    warped = gdal.Warp("", path, format="MEM", outputBounds=bounds, width=like.RasterXSize, height=like.RasterYSize,
                       dstSRS=like.GetProjection(), resampleAlg=algorithm, outputType=gdal.GDT_Float32,
                       dstNodata=float("nan"))
    return warped.ReadAsArray().astype(np.float32)


def change_indices(event_dir: str, like: gdal.Dataset) -> Dict[str, np.ndarray]:
    pre = warp_like(os.path.join(event_dir, "pre.tif"), like)
    post = warp_like(os.path.join(event_dir, "post.tif"), like)
    dem = warp_like(os.path.join(event_dir, "dem.tif"), like)
    gsd = like.GetGeoTransform()[1]
    gy, gx = np.gradient(dem, gsd)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    pre = np.where(pre > 0, pre, np.nan)
    post = np.where(post > 0, post, np.nan)
    pre_n = pre / np.nanmedian(pre, axis=(1, 2))[:, None, None]
    post_n = post / np.nanmedian(post, axis=(1, 2))[:, None, None]

    def grvi(image):
        return (image[1] - image[0]) / np.maximum(image[1] + image[0], 1e-6)

    steep = slope >= BASELINE_SLOPE_DEG
    change = post_n.mean(axis=0) - pre_n.mean(axis=0)
    brightening = np.where(steep, change, -10.0)
    darkening = np.where(steep, -change, -10.0)
    greenness = np.where(steep, grvi(pre) - grvi(post), -10.0)
    return {name: np.nan_to_num(index, nan=-10.0) for name, index in
            (("brightening", brightening), ("greenness_loss", greenness), ("darkening", darkening))}


def event_probability(model_path: str, event_dir: str, work_dir: str):
    """The model's probability over an event, mapped by the plugin's pipeline, and the inventory on its grid.

    Returns (probability, truth, dataset of the probability GeoTIFF in ``work_dir``); -1 where nothing was mapped.
    """
    probability_path = os.path.join(work_dir, "probability.tif")
    with open(os.path.join(event_dir, "event.json"), encoding="utf-8") as handle:
        radiometry = json.load(handle)["radiometry"]  # e.g. s2_l2a_offset, which "auto" cannot tell
    request = MappingRequest(model_path, RasterInput(os.path.join(event_dir, "pre.tif"), (1, 2, 3)),
                             RasterInput(os.path.join(event_dir, "post.tif"), (1, 2, 3)),
                             RasterInput(os.path.join(event_dir, "dem.tif"), (1,)),
                             mask_polygons=VectorInput(os.path.join(event_dir, "clouds.gpkg")), radiometry=radiometry,
                             probability_path=probability_path, work_dir=work_dir, min_area_m2=0.0,
                             mask_buffer_m=MASK_BUFFER_M)
    map_landslides(request)
    like = gdal.Open(probability_path)
    return like.GetRasterBand(1).ReadAsArray(), rasterize_inventory(event_dir, like), like


def score_event(model_path: str, event_dir: str, work_dir: str) -> Dict[str, np.ndarray]:
    probability, truth, like = event_probability(model_path, event_dir, work_dir)
    probability_path = like.GetDescription()
    valid = probability >= 0
    indices = change_indices(event_dir, like)
    out = {"model": confusions(probability[valid], truth[valid], THRESHOLDS)}
    for name, index in indices.items():
        values = index[valid]
        grid = np.unique(np.quantile(values, np.linspace(0.5, 0.999, 120)))
        out[name] = (grid, values, truth[valid])
    like = None
    os.remove(probability_path)
    return out


def family_of(event_dir: str) -> str:
    with open(os.path.join(event_dir, "event.json"), encoding="utf-8") as handle:
        return json.load(handle)["style"]


def baseline_best(parts: List[tuple]) -> Dict[str, float]:
    """Best-MCC threshold of a change index pooled over events (an oracle threshold)."""
    values = np.concatenate([p[1] for p in parts])
    truth = np.concatenate([p[2] for p in parts])
    grid = np.unique(np.quantile(values, np.linspace(0.5, 0.9995, 300)))
    c = confusions(values, truth, grid)
    best = int(np.argmax(mcc(c)))
    return dict(prf(c[best]), threshold=float(grid[best]))


def calibrated_scores(counts: Dict[str, np.ndarray], calibrate: List[str], held_out: List[str]):
    """One model's threshold, calibrated on ``calibrate`` (best pooled MCC), and its scores there and on
    ``held_out``, pooled and per family. ``counts``: per event, its confusion counts at every threshold.

    Returns the index of that threshold in :data:`THRESHOLDS` and the scores.
    """
    calibration = sum(counts[e] for e in calibrate)
    best = int(np.argmax(mcc(calibration)))
    families: Dict[str, List[str]] = {}
    for event_dir in held_out:
        families.setdefault(family_of(event_dir), []).append(event_dir)
    return best, {"calibrated_threshold": float(THRESHOLDS[best]), "calibration": prf(calibration[best]),
                  "held_out_pooled": prf(sum(counts[e] for e in held_out)[best]),
                  "held_out_per_family": {f: prf(sum(counts[e] for e in events)[best])
                                          for f, events in families.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--calibrate", nargs="+", required=True, help="events of families used in training")
    parser.add_argument("--held-out", nargs="+", required=True, help="events of families never used in training")
    parser.add_argument("--json", default=None)
    parser.add_argument("--write-card", action="store_true",
                        help="store in each model's card the calibrated threshold and the held-out scores, "
                             "with the baselines beside them (the card's real-event scores are kept)")
    args = parser.parse_args(argv)
    report: Dict[str, object] = {"what": "simulated events of whole families (training.simulate_families); "
                                         "calibration events are of training families with seeds never trained on",
                                 "calibrate_events": args.calibrate, "held_out_events": args.held_out,
                                 "baseline_slope_deg": BASELINE_SLOPE_DEG, "models": {}}
    baselines: Dict[str, Dict[str, list]] = {}
    per_event_baselines: Dict[str, Dict[str, Dict[str, float]]] = {}
    for model_path in args.models:
        card = LandslideModel(model_path, 1).card
        started = time.time()
        per_event = {}
        with tempfile.TemporaryDirectory(prefix="families_") as work:
            for event_dir in args.calibrate + args.held_out:
                scored = score_event(model_path, event_dir, work)
                per_event[event_dir] = scored["model"]
                if model_path == args.models[0]:
                    for name in BASELINES:
                        baselines.setdefault(family_of(event_dir), {}).setdefault(name, []).append(scored[name])
                        per_event_baselines.setdefault(_event_names([event_dir]), {})[name] = \
                            baseline_best([scored[name]])
        best, scores = calibrated_scores(per_event, args.calibrate, args.held_out)
        threshold = scores["calibrated_threshold"]
        card_index = int(np.argmin(np.abs(THRESHOLDS - card.threshold)))
        entry = {"card_threshold": card.threshold, "calibrated_threshold": threshold,
                 "calibration": scores["calibration"],
                 "held_out_pooled": scores["held_out_pooled"],
                 "held_out_pooled_at_card_threshold": prf(sum(per_event[e] for e in args.held_out)[card_index]),
                 "held_out_per_family": scores["held_out_per_family"],
                 "per_event": {_event_names([e]): dict(prf(c[best]), positive_pixels=int(c[best][0] + c[best][2]))
                               for e, c in per_event.items()},
                 "seconds": round(time.time() - started, 1)}
        report["models"][os.path.basename(model_path)] = entry
        print(f"{os.path.basename(model_path)}: threshold {threshold:.2f} (calibration MCC "
              f"{entry['calibration']['mcc']:.3f}); held-out pooled MCC {entry['held_out_pooled']['mcc']:.3f}; "
              + "; ".join(f"{f} {v['mcc']:.3f}" for f, v in entry["held_out_per_family"].items())
              + f"; at the card's {card.threshold:g}: {entry['held_out_pooled_at_card_threshold']['mcc']:.3f}", flush=True)
    held_families = {family_of(e) for e in args.held_out}
    report["baselines"] = {}
    for family, indices in baselines.items():
        if family in held_families:
            report["baselines"][family] = {name: baseline_best(parts) for name, parts in indices.items()}
    pooled = {name: baseline_best([p for f, ind in baselines.items() if f in held_families for p in ind[name]])
              for name in BASELINES}
    report["baselines"]["held_out_pooled"] = pooled
    report["baselines_per_event"] = per_event_baselines
    for family, values in report["baselines"].items():
        print(f"baseline {family}: " + "; ".join(f"{n} MCC {v['mcc']:.3f} (threshold {v['threshold']:.3g})"
                                                for n, v in values.items()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    if args.write_card:
        for model_path in args.models:
            store_in_card(model_path, report, report["models"][os.path.basename(model_path)])
            print(f"stored the threshold and the held-out scores in the card of {model_path}")
    return 0


def _event_names(paths: List[str]) -> str:
    return ", ".join(os.path.basename(os.path.normpath(p)) for p in paths)


def store_in_card(model_path: str, report: Dict[str, object], entry: Dict[str, object]) -> None:
    """The card's threshold becomes the calibrated one; its metrics, the held-out scores beside the baselines."""
    import dataclasses

    from model.card import write_card_to_file
    from model.session import read_card

    def rounded(scores):
        return {k: round(float(scores[k]), 4) for k in ("mcc", "f1", "precision", "recall")}

    card = read_card(model_path)
    threshold = entry["calibrated_threshold"]
    baselines = report["baselines"]
    metrics = dict(rounded(entry["held_out_pooled"]))
    metrics["evaluated_on"] = (
        f"{len(report['held_out_events'])} simulated events of families no training event came from "
        f"({_event_names(report['held_out_events'])}; training.simulate_families, whole events, "
        f"each read with its recorded radiometry, cloud polygons as mask without buffer); "
        f"pixel counts pooled, threshold {threshold:g}")
    metrics["per_family"] = {family: rounded(scores) for family, scores in entry["held_out_per_family"].items()}
    metrics["baseline"] = {
        "what": f"post-event brightening on slopes >= {BASELINE_SLOPE_DEG:g} degrees at its best threshold on the "
                "same events (an oracle threshold)",
        "mcc": round(baselines["held_out_pooled"]["brightening"]["mcc"], 4),
        "per_family": {family: round(values["brightening"]["mcc"], 4)
                       for family, values in baselines.items() if family != "held_out_pooled"}}
    metrics["threshold_calibration"] = {
        "on": f"{len(report['calibrate_events'])} simulated events of the training families with seeds never "
              f"trained on ({_event_names(report['calibrate_events'])}); best pooled MCC",
        "chosen": threshold, "mcc": round(float(entry["calibration"]["mcc"]), 4)}
    if "real_events" in card.metrics:
        metrics["real_events"] = card.metrics["real_events"]
    write_card_to_file(model_path, dataclasses.replace(card, threshold=threshold, metrics=metrics))


if __name__ == "__main__":
    sys.exit(main())
