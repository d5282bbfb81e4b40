"""Score carded ONNX models on the real Hokkaido 2018 crop against the reference of fresh scars (README.md here).

    python benchmarks/hokkaido/score_hokkaido.py [MODEL.onnx ...] --json out.json --png-dir out/

Each model maps the crop with the plugin's own core (``model.pipeline.map_landslides``: R, G, B = B4, B3, B2
stacked in VRTs, radiometry ``s2_l2a``, the AW3D30 DSM, the card's threshold) on its own metric grid; the
probability is then warped back onto the image grid of ``reference.tif`` with nearest neighbour (the mask is
``probability >= threshold``, exactly as the pipeline's mask) and scored over the assessed pixels
(reference != 255 and a probability present), in the whole crop and in the test part (``parts.gpkg``,
layer ``test``):

- pixel MCC, F1, precision, recall (and the counts) at the card's threshold;
- recall at precision >= 0.8: the largest recall of any threshold whose precision is >= 0.8, with that threshold;
- object recall: the share of reference scars (8-connected, >= 5 px inside the region) touched by a detection.

Beside every figure, two change-index baselines on the same pixels: post-event brightening (mean of R, G, B
post minus pre, reflectance x 10000) and greenness loss (GRVI pre minus GRVI post, GRVI = (G - R) / (G + R)),
each set to "no landslide" on slopes under ``--baseline-slope`` degrees, at its best-MCC threshold (in the
whole crop: the oracle threshold of the crop; in the test part: the threshold that is best on the adaptation
part, and the test part's own oracle threshold for comparison), and their recall at precision >= 0.8.

The baselines are computed twice: on the image grid of the reference (as the reference rule sees the pixels),
and ``..._on_model_grid``: from the images as the models read them (warped bilinearly onto the pipeline's 10 m
grid, slope too), brought back with nearest neighbour exactly like a model's probability, so that a model and
a baseline lose the same detail to the round trip. Each model is also scored at its own best-MCC threshold on
the region (an oracle, like the baselines'), beside its card's threshold.

Imports only numpy, GDAL, onnxruntime (through model/) and the repository's model/ package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from typing import Dict, Optional

import numpy as np
from osgeo import gdal, ogr

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
for path in (REPO_ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import build_reference as br  # noqa: E402  (numpy + GDAL only)
from model.grid import RasterInput  # noqa: E402
from model.metrics import Confusion, confusion  # noqa: E402
from model.pipeline import MappingRequest, map_landslides  # noqa: E402

gdal.UseExceptions()
ogr.UseExceptions()

DEFAULT_MODEL = os.path.join(REPO_ROOT, "model", "default_model.onnx")
DEFAULT_REFERENCE = os.path.join(HERE, "reference.tif")
DEFAULT_PARTS = os.path.join(HERE, "parts.gpkg")
TARGET_PRECISION = 0.8
MIN_OBJECT_PX = 5


# ----------------------------------------------------------------------------- scoring primitives

def sweep(score: np.ndarray, truth: np.ndarray) -> Dict[str, np.ndarray]:
    """Confusion counts for every threshold t in the scores (prediction = score >= t), ignoring -inf."""
    order = np.argsort(-score, kind="stable")
    s, t = score[order], truth[order].astype(bool)
    ctp, cfp = np.cumsum(t), np.cumsum(~t)
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    ends = ends[np.isfinite(s[ends])]
    positives, total = int(t.sum()), int(t.size)
    tp, fp = ctp[ends].astype(np.float64), cfp[ends].astype(np.float64)
    fn, tn = positives - tp, (total - positives) - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / positives if positives else np.zeros_like(tp)
        denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(denominator > 0, (tp * tn - fp * fn) / np.where(denominator > 0, denominator, 1), 0.0)
    return {"threshold": s[ends], "tp": tp, "fp": fp, "precision": precision, "recall": recall, "mcc": mcc}


def recall_at_precision(curve: Dict[str, np.ndarray], target: float = TARGET_PRECISION) -> dict:
    """The largest recall of any threshold with precision >= target (and that threshold)."""
    ok = np.flatnonzero(curve["precision"] >= target)
    if ok.size == 0:
        return {"recall": 0.0, "threshold": None, "precision": None, "note": f"no threshold reaches precision {target}"}
    best = ok[np.argmax(curve["recall"][ok])]
    return {"recall": round(float(curve["recall"][best]), 4), "threshold": float(curve["threshold"][best]),
            "precision": round(float(curve["precision"][best]), 4)}


def best_mcc_threshold(curve: Dict[str, np.ndarray]) -> Optional[float]:
    if curve["mcc"].size == 0:
        return None
    return float(curve["threshold"][int(np.argmax(curve["mcc"]))])


def object_recall(labels: np.ndarray, detected: np.ndarray, region: np.ndarray, min_px: int = MIN_OBJECT_PX) -> dict:
    """Share of reference scars with >= ``min_px`` pixels in ``region`` that a detection touches there."""
    inside = labels * region
    count = int(labels.max()) + 1
    sizes = np.bincount(inside.ravel(), minlength=count)
    hits = np.bincount(inside[detected & region].ravel(), minlength=count)
    eligible = np.flatnonzero(sizes >= min_px)
    eligible = eligible[eligible > 0]
    touched = int((hits[eligible] > 0).sum())
    return {"object_recall": round(touched / eligible.size, 4) if eligible.size else 0.0,
            "scars_touched": touched, "scars_ge_min_px": int(eligible.size), "min_px": min_px}


def _scores(c: Confusion) -> dict:
    out = c.scores()
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def score_binary(truth, predicted, valid, labels, region) -> dict:
    """Pixel scores and object recall of a binary prediction inside ``region & valid``."""
    use = valid & region
    out = _scores(confusion(truth, predicted, use))
    out.update(object_recall(labels, predicted & use, use))
    return out


def load_reference(reference_path: str = DEFAULT_REFERENCE, parts_path: str = DEFAULT_PARTS) -> dict:
    """The reference raster, its scars (bool), assessed pixels, 8-connected scar labels and the part masks."""
    dataset = gdal.Open(reference_path)
    reference = dataset.GetRasterBand(1).ReadAsArray()
    truth = reference == br.SCAR
    labels, _ = br.label_regions(truth)
    regions = {"whole_crop": np.ones(reference.shape, bool),
               "test_part": rasterize_layer(parts_path, "test", dataset),
               "adapt_part": rasterize_layer(parts_path, "adapt", dataset)}
    return {"dataset": dataset, "reference": reference, "truth": truth, "assessed": reference != br.NOT_ASSESSED,
            "labels": labels, "regions": regions}


def score_prediction(probability, threshold, truth, valid, labels, regions) -> dict:
    """A probability map (on the reference grid) scored per region: at ``threshold``, at the region's own
    best-MCC threshold (an oracle, like the baselines'), and recall at precision 0.8."""
    detected = probability >= threshold
    out = {}
    for name, region in regions.items():
        curve = sweep(probability[valid & region], truth[valid & region])
        oracle = best_mcc_threshold(curve)
        out[name] = {"at_card_threshold": score_binary(truth, detected, valid, labels, region),
                     "best_mcc_threshold": oracle,
                     "at_best_mcc_threshold": (score_binary(truth, probability >= oracle, valid, labels, region)
                                               if oracle is not None else None),
                     "recall_at_precision_0.8": recall_at_precision(curve)}
    return out


# ----------------------------------------------------------------------------- inputs

def stack_rgb(data_dir: str, when: str, folder: str) -> str:
    """An R, G, B VRT (B4, B3, B2) of the pre or post image's band files."""
    path = os.path.join(folder, f"{when}.vrt")
    files = [os.path.join(data_dir, f"{when}_S2_{band}.tif") for band in br.RGB_BANDS]
    gdal.BuildVRT(path, files, separate=True).FlushCache()
    return path


def rasterize_layer(path: str, layer_name: str, like: gdal.Dataset) -> np.ndarray:
    """Polygons of one layer burnt onto the grid of ``like`` (pixel-centre rule)."""
    source = ogr.Open(path)
    layer = source.GetLayerByName(layer_name)
    if layer is None:
        raise SystemExit(f"{path} has no layer '{layer_name}'")
    mem = gdal.GetDriverByName("MEM").Create("", like.RasterXSize, like.RasterYSize, 1, gdal.GDT_Byte)
    mem.SetGeoTransform(like.GetGeoTransform())
    mem.SetProjection(like.GetProjection())
    gdal.RasterizeLayer(mem, [1], layer, burn_values=[1])
    return mem.GetRasterBand(1).ReadAsArray().astype(bool)


def warp_to(path, like: gdal.Dataset, nodata: float) -> np.ndarray:
    """A raster (path or dataset) warped (nearest) onto the grid of ``like``."""
    gt, cols, rows = like.GetGeoTransform(), like.RasterXSize, like.RasterYSize
    out = gdal.Warp("", path, format="MEM", dstSRS=like.GetProjection(), resampleAlg="near",
                    outputBounds=(gt[0], gt[3] + gt[5] * rows, gt[0] + gt[1] * cols, gt[3]),
                    width=cols, height=rows, dstNodata=nodata)
    return out.GetRasterBand(1).ReadAsArray()


def _raster_like(bands: np.ndarray, grid_of: gdal.Dataset, data_type: int) -> gdal.Dataset:
    """An in-memory raster of ``bands`` (bands x rows x cols) on the grid of ``grid_of``."""
    raster = gdal.GetDriverByName("MEM").Create("", grid_of.RasterXSize, grid_of.RasterYSize, len(bands), data_type)
    raster.SetGeoTransform(grid_of.GetGeoTransform())
    raster.SetProjection(grid_of.GetProjection())
    for i, band in enumerate(bands):
        raster.GetRasterBand(i + 1).WriteArray(band)
    return raster


def on_grid_of(array: np.ndarray, like: gdal.Dataset, template_path: str) -> np.ndarray:
    """``array`` (bands x rows x cols on the grid of ``like``) warped bilinearly onto the grid of the raster at
    ``template_path``, as the pipeline's window reader reads images onto its grid; NaN outside ``like``."""
    bands = array.reshape((-1,) + array.shape[-2:]).astype(np.float32)
    source = _raster_like(bands, like, gdal.GDT_Float32)
    template = gdal.Open(template_path)
    gt, cols, rows = template.GetGeoTransform(), template.RasterXSize, template.RasterYSize
    out = gdal.Warp("", source, format="MEM", dstSRS=template.GetProjection(), resampleAlg="bilinear",
                    outputBounds=(gt[0], gt[3] + gt[5] * rows, gt[0] + gt[1] * cols, gt[3]), width=cols, height=rows,
                    errorThreshold=0, dstNodata=float("nan"), warpOptions=["INIT_DEST=NO_DATA"])
    return out.ReadAsArray().astype(np.float64).reshape((len(bands), rows, cols))


def back_from_grid_of(index: np.ndarray, template_path: str, like: gdal.Dataset) -> np.ndarray:
    """An index on the grid of ``template_path`` brought back onto the grid of ``like`` with nearest neighbour,
    exactly as a model's probability is (:func:`warp_to`); -inf where it had none."""
    missing = -1e300
    source = _raster_like(np.where(np.isfinite(index), index, missing)[None], gdal.Open(template_path), gdal.GDT_Float64)
    source.GetRasterBand(1).SetNoDataValue(missing)
    back = warp_to(source, like, missing).astype(np.float64)
    return np.where(back <= missing, -np.inf, back)


def _rel(path: str) -> str:
    """A path relative to the repository root when inside it (so results do not depend on the checkout)."""
    path = os.path.abspath(path)
    return os.path.relpath(path, REPO_ROOT) if path.startswith(REPO_ROOT + os.sep) else path


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def map_model(model_path: str, pre_vrt: str, post_vrt: str, dem: str, work_dir: str, threads: int) -> dict:
    """Run the plugin's pipeline; the probability GeoTIFF path, the threshold and the card's facts."""
    stem = os.path.splitext(os.path.basename(model_path))[0]
    out_dir = tempfile.mkdtemp(prefix=f"{stem}_", dir=work_dir)
    request = MappingRequest(
        model_path=model_path, pre=RasterInput(pre_vrt, (1, 2, 3)), post=RasterInput(post_vrt, (1, 2, 3)),
        dem=RasterInput(dem, (1,)), radiometry="s2_l2a", threads=threads, work_dir=out_dir,
        probability_path=os.path.join(out_dir, "probability.tif"), mask_path=os.path.join(out_dir, "mask.tif"),
    )
    started = time.time()
    result = map_landslides(request, on_polygon=lambda polygon: None)
    return {
        "probability_path": result.probability_path, "threshold": float(result.threshold),
        "seconds": round(time.time() - started, 1), "grid": f"{result.grid.width_px} x {result.grid.height_px} px "
        f"at {result.grid.gsd_m:g} m", "windows_run": result.windows_run,
        "landslide_count": result.landslide_count, "landslide_area_km2": round(result.landslide_area_m2 / 1e6, 4),
        "card": {"name": result.card.name, "version": result.card.version, "threshold": result.card.threshold,
                 "gsd_m": result.card.gsd_m, "trained_on": result.card.provenance.get("trained_on")},
    }


def map_onto_reference(model_paths, like: gdal.Dataset, work_dir: str, data_dir: str = br.DEFAULT_DATA_DIR,
                       threads: int = 0) -> list:
    """Map the crop with each model (:func:`map_model`) and add its probability warped onto the grid of ``like``
    (``probability``, -1 where it has none); ``probability_path`` (on the pipeline's grid) stays in ``work_dir``."""
    pre_vrt, post_vrt = stack_rgb(data_dir, "pre", work_dir), stack_rgb(data_dir, "post", work_dir)
    dem = os.path.join(data_dir, "dsm_AW3D30.tif")
    runs = []
    for model_path in model_paths:
        run = map_model(os.path.abspath(model_path), pre_vrt, post_vrt, dem, work_dir, threads)
        run["probability"] = warp_to(run["probability_path"], like, -1.0)
        runs.append(run)
    return runs


# ----------------------------------------------------------------------------- baselines

def change_indices(pre: np.ndarray, post: np.ndarray) -> Dict[str, np.ndarray]:
    """Post-event brightening and greenness (GRVI) loss, float64."""
    pre, post = pre.astype(np.float64), post.astype(np.float64)

    def grvi(image):
        red, green = image[0], image[1]
        return np.where(green + red > 0, (green - red) / np.maximum(green + red, 1e-9), 0.0)

    return {"brightening": post.mean(axis=0) - pre.mean(axis=0), "greenness_loss": grvi(pre) - grvi(post)}


def score_baseline(index, eligible, truth, valid, labels, regions, tune_region_for_test) -> dict:
    """A change index restricted to ``eligible`` (slope) pixels, scored per region."""
    score = np.where(eligible, index, -np.inf)
    out = {}
    curves = {name: sweep(score[valid & region], truth[valid & region]) for name, region in regions.items()}
    for name, region in regions.items():
        curve = curves[name]
        oracle = best_mcc_threshold(curve)
        entry = {"best_mcc_threshold": oracle,
                 "at_best_mcc_threshold": score_binary(truth, score >= oracle, valid, labels, region) if oracle is not None else None,
                 "recall_at_precision_0.8": recall_at_precision(curve)}
        if name == "test_part" and tune_region_for_test in curves:
            tuned = best_mcc_threshold(curves[tune_region_for_test])
            entry["threshold_from_adapt_part"] = tuned
            entry["at_adapt_part_threshold"] = (score_binary(truth, score >= tuned, valid, labels, region)
                                                if tuned is not None else None)
        out[name] = entry
    return out


# ----------------------------------------------------------------------------- main

def _fmt(value) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=[DEFAULT_MODEL], help="carded ONNX models (default: the default model)")
    parser.add_argument("--data-dir", default=br.DEFAULT_DATA_DIR)
    parser.add_argument("--reference", default=DEFAULT_REFERENCE)
    parser.add_argument("--parts", default=DEFAULT_PARTS)
    parser.add_argument("--baseline-slope", type=float, default=5.0, help="baselines: no landslide under this slope (deg)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = all cores)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--png-dir", help="write <model>_mask_over_post.png here")
    parser.add_argument("--work-dir", help="scratch folder (default: a temporary one)")
    parser.add_argument("--write-card", action="store_true",
                        help="store each model's whole-crop scores, beside the brightening baseline's, in its card "
                             "(metrics.real_events.hokkaido_2018; the card's other metrics are kept)")
    args = parser.parse_args(argv)

    loaded = load_reference(args.reference, args.parts)
    ref_ds, reference, truth, assessed = loaded["dataset"], loaded["reference"], loaded["truth"], loaded["assessed"]
    regions, labels = loaded["regions"], loaded["labels"]
    gt, wkt = ref_ds.GetGeoTransform(), ref_ds.GetProjection()
    rows, cols = reference.shape

    pre, pre_gt, _ = br.read_image(args.data_dir, "pre")
    post, post_gt, _ = br.read_image(args.data_dir, "post")
    if not (np.allclose(pre_gt, gt) and np.allclose(post_gt, gt) and pre.shape[1:] == reference.shape):
        raise SystemExit("The reference and the images are not on the same grid.")
    slope = br.slope_on_grid(args.data_dir, gt, wkt, rows, cols)

    work = tempfile.TemporaryDirectory(prefix="hokkaido_score_", dir=args.work_dir)
    mapped = map_onto_reference(args.models, ref_ds, work.name, args.data_dir, args.threads)
    # a probability raster on the pipeline's grid (the same for every 10 m model), for the baselines
    model_grid = mapped[0]["probability_path"] if mapped else None
    runs = []
    valid = assessed.copy()
    for model_path, run in zip(args.models, mapped):
        run.pop("probability_path")
        valid &= run["probability"] >= 0
        runs.append((os.path.abspath(model_path), run))

    report = {
        "event": br.EVENT, "data_dir": _rel(os.path.abspath(args.data_dir)),
        "reference": {"path": _rel(args.reference), "sha256": sha256(args.reference),
                      "method": "benchmarks/hokkaido/build_reference.py (post-image spectral rule on slopes + hand edits; "
                                "no change index)",
                      "scar_px_scored": {n: int((truth & valid & r).sum()) for n, r in regions.items()}},
        "scored_pixels": {n: int((valid & r).sum()) for n, r in regions.items()},
        "assessed_pixels_without_probability": int((assessed & ~valid).sum()),
        "target_precision": TARGET_PRECISION,
        "models": [], "baselines": {},
    }
    score_regions = {"whole_crop": regions["whole_crop"], "test_part": regions["test_part"],
                     "adapt_part": regions["adapt_part"]}
    for model_path, run in runs:
        probability, threshold = run.pop("probability"), run["threshold"]
        detected = probability >= threshold
        entry = {"file": _rel(model_path), "sha256": sha256(model_path), **run}
        entry.update(score_prediction(probability, threshold, truth, valid, labels,
                                      {n: score_regions[n] for n in ("whole_crop", "test_part")}))
        report["models"].append(entry)
        if args.png_dir:
            os.makedirs(args.png_dir, exist_ok=True)
            stem = os.path.splitext(os.path.basename(model_path))[0]
            adapt = regions["adapt_part"]
            adapt_edge = adapt & ~(np.roll(adapt, 1, 0) & np.roll(adapt, -1, 0) & np.roll(adapt, 1, 1) & np.roll(adapt, -1, 1))
            png = os.path.join(args.png_dir, f"{stem}_mask_over_post.png")
            br.outline_png(png, br.display_rgb(post), [(~assessed, (90, 90, 90)), (adapt_edge, (255, 255, 0)),
                                                        (detected & (probability >= 0), (255, 32, 208))])
            entry["png"] = _rel(png)

    indices = {name: (index, slope >= args.baseline_slope) for name, index in change_indices(pre, post).items()}
    if model_grid:
        with np.errstate(invalid="ignore"):
            on_model_grid = change_indices(on_grid_of(pre, ref_ds, model_grid), on_grid_of(post, ref_ds, model_grid))
            slope_there = on_grid_of(slope, ref_ds, model_grid)[0]
        for name, index in on_model_grid.items():
            eligible_there = np.where(slope_there >= args.baseline_slope, index, -np.inf)
            back = back_from_grid_of(eligible_there, model_grid, ref_ds)
            indices[f"{name}_on_model_grid"] = (back, np.isfinite(back))
    for name, (index, eligible) in indices.items():
        report["baselines"][name] = {
            "definition": ("mean(R,G,B) post - mean(R,G,B) pre, reflectance x 10000" if name.startswith("brightening")
                           else "GRVI pre - GRVI post, GRVI = (G - R) / (G + R)"),
            "grid": ("the models' 10 m grid (images warped bilinearly as the pipeline reads them), brought back "
                     "with nearest neighbour like a probability" if name.endswith("_on_model_grid")
                     else "the image grid of the reference"),
            "slope_cut_deg": args.baseline_slope,
            **score_baseline(index, eligible, truth, valid, labels,
                             {"whole_crop": regions["whole_crop"], "test_part": regions["test_part"],
                              "adapt_part": regions["adapt_part"]}, "adapt_part"),
        }
        report["baselines"][name].pop("adapt_part", None)

    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    _print_table(report)
    work.cleanup()
    if args.write_card:
        for model_path, entry in zip(args.models, report["models"]):
            store_in_card(model_path, report, entry)
            print(f"stored the Hokkaido scores in the card of {model_path}")
    return 0


def store_in_card(model_path: str, report: dict, entry: dict) -> None:
    """The whole-crop scores of one model, with the brightening baseline's, as the card's real-event metrics."""
    import dataclasses

    from model.card import write_card_to_file
    from model.session import read_card

    card = read_card(model_path)
    scores = entry["whole_crop"]["at_card_threshold"]
    baseline = report["baselines"]["brightening"]
    real = {
        **{k: scores[k] for k in ("mcc", "f1", "precision", "recall")},
        "recall_at_precision_0.8": entry["whole_crop"]["recall_at_precision_0.8"]["recall"],
        "evaluated_on": (
            f"{report['event']}: the real Sentinel-2 crop, {report['scored_pixels']['whole_crop']} pixels scored "
            f"against a reference of the fresh scars visible in the post-event image "
            f"({report['reference']['path']}, sha256 {report['reference']['sha256'][:12]}, "
            f"{report['reference']['method']}); threshold {entry['threshold']:g}"),
        "baseline": {
            "what": f"post-event brightening on slopes >= {baseline['slope_cut_deg']:g} degrees at its best "
                    "threshold on the crop (an oracle threshold)",
            "mcc": baseline["whole_crop"]["at_best_mcc_threshold"]["mcc"],
            "recall_at_precision_0.8": baseline["whole_crop"]["recall_at_precision_0.8"]["recall"]},
    }
    same_grid = report["baselines"].get("brightening_on_model_grid")
    if same_grid:
        real["baseline_on_model_grid"] = {
            "what": "the same index from the images as the model reads them (its 10 m grid, brought back like its "
                    "probability), at its best threshold on the crop",
            "mcc": same_grid["whole_crop"]["at_best_mcc_threshold"]["mcc"],
            "recall_at_precision_0.8": same_grid["whole_crop"]["recall_at_precision_0.8"]["recall"]}
        real["mcc_at_best_threshold"] = entry["whole_crop"]["at_best_mcc_threshold"]["mcc"]
    metrics = dict(card.metrics)
    metrics["real_events"] = dict(metrics.get("real_events", {}), hokkaido_2018=real)
    write_card_to_file(model_path, dataclasses.replace(card, metrics=metrics))


def _print_table(report: dict) -> None:
    print(f"{report['event']}")
    print(f"scored pixels: {report['scored_pixels']}; reference scar pixels: {report['reference']['scar_px_scored']}")
    head = f"{'':34s} {'MCC':>6s} {'F1':>6s} {'prec':>6s} {'recall':>6s} {'objrec':>6s} {'R@P.8':>6s} {'thr':>8s} {'thr@P.8':>8s}"
    for region in ("whole_crop", "test_part"):
        print(f"\n[{region}]\n{head}")
        rows = []
        for model in report["models"]:
            m = model[region]
            rows.append((os.path.basename(model["file"]), m["at_card_threshold"], m["recall_at_precision_0.8"], model["threshold"]))
            if m.get("at_best_mcc_threshold"):
                rows.append(("  same, best MCC", m["at_best_mcc_threshold"], m["recall_at_precision_0.8"],
                             m["best_mcc_threshold"]))
        for name, base in report["baselines"].items():
            b = base[region]
            rows.append((f"{name} (slope>={base['slope_cut_deg']:g}, best MCC)", b["at_best_mcc_threshold"],
                         b["recall_at_precision_0.8"], b["best_mcc_threshold"]))
            if region == "test_part" and b.get("at_adapt_part_threshold"):
                rows.append((f"{name} (thr from adapt part)", b["at_adapt_part_threshold"], b["recall_at_precision_0.8"],
                             b["threshold_from_adapt_part"]))
        for label, s, rap, thr in rows:
            s = s or {}
            print(f"{label[:34]:34s} {_fmt(s.get('mcc')):>6s} {_fmt(s.get('f1')):>6s} {_fmt(s.get('precision')):>6s} "
                  f"{_fmt(s.get('recall')):>6s} {_fmt(s.get('object_recall')):>6s} {_fmt(rap['recall']):>6s} "
                  f"{_fmt(thr):>8s} {_fmt(rap['threshold']):>8s}")


if __name__ == "__main__":
    sys.exit(main())
