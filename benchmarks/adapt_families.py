"""Adapting a model to an event from a partial mapping: simulated events of families the base model never saw.

For each event (``python -m training simulate --family ...``) an "analyst" maps
a strip along one edge covering at most ``--mapped-fraction`` of the event
(the west edge; another when the west strip holds fewer than 10 landslides;
the polygons that touch it, and the strip as the area where the mapping is complete). ``python -m training adapt`` fine-tunes the base model
there; the base and the adapted model then map the whole event and are scored
on the remaining part (everything outside the strip), pixel by pixel, both at
their card's threshold. Beside them, the change-index baseline (post-minus-pre
brightness on slopes of at least 10 degrees) at its best threshold on the same
pixels (an oracle threshold, which flatters it).

The wall time and the peak memory (maximum resident set of the adapt process)
are measured for every event, and kept in its work folder (``adapt_run.json``):
a rerun scores an event adapted earlier again without adapting it anew. The weights of every validation check
go to ``checks/`` there (``--save-checks``), for ``benchmarks/adapt_share_rule.py --checks``.

Usage::

    python benchmarks/adapt_families.py --events DIR [DIR ...] --out benchmarks/results/issue12/families.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from osgeo import gdal, ogr, osr  # noqa: E402

from model.metrics import confusion, mcc_of_counts, threshold_counts  # noqa: E402

gdal.UseExceptions()
ogr.UseExceptions()


def _strip(x0, y0, dx, dy, width, height, side, strip_px):
    """The strip of ``strip_px`` along one edge (west, east, north, south) as a polygon and a test for x, y."""
    x1, y1 = x0 + width * dx, y0 + height * dy  # dy < 0: y1 is the south edge
    if side == "west":
        box = (x0, y1, x0 + strip_px * dx, y0)
    elif side == "east":
        box = (x1 - strip_px * dx, y1, x1, y0)
    elif side == "north":
        box = (x0, y0 + strip_px * dy, x1, y0)
    else:
        box = (x0, y1, x1, y1 - strip_px * dy)
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3]), (box[0], box[1])):
        ring.AddPoint_2D(x, y)
    polygon = ogr.Geometry(ogr.wkbPolygon)
    polygon.AddGeometry(ring)
    return polygon, box


SIDES = ("west", "east", "north", "south")
MIN_MAPPED = 10
"""The west strip is mapped when it touches at least this many landslides; otherwise the edge whose strip
touches the most."""


def mapped_strip(event_dir: str, fraction: float):
    """The strip of ``fraction`` of the event along the west edge, or along the edge whose strip touches the most
    inventory polygons when the west one touches fewer than :data:`MIN_MAPPED`.

    Returns ``(side, polygon, box, polygons touching it, covered fraction)``; ``box`` is the strip's
    (x_min, y_min, x_max, y_max).
    """
    post = gdal.Open(os.path.join(event_dir, "post.tif"))
    x0, dx, _, y0, _, dy = post.GetGeoTransform()
    width, height = post.RasterXSize, post.RasterYSize
    inventory = ogr.Open(os.path.join(event_dir, "inventory.gpkg"))
    geometries = [feature.GetGeometryRef().Clone() for feature in inventory.GetLayer(0)]
    best = None
    for side in SIDES:
        across = width if side in ("west", "east") else height
        strip_px = int(np.floor(fraction * across))
        polygon, box = _strip(x0, y0, dx, dy, width, height, side, strip_px)
        touching = [g for g in geometries if g.Intersects(polygon)]
        if best is None or len(touching) > len(best[3]):
            best = (side, polygon, box, touching, strip_px / across)
        if side == "west" and len(touching) >= MIN_MAPPED:
            break
    return best


def write_partial_mapping(event_dir: str, fraction: float, out_dir: str):
    """``area.gpkg`` (the :func:`mapped_strip` of ``fraction``) and ``landslides.gpkg`` (the inventory polygons
    touching it).

    Returns ``(box, side, covered fraction, polygons kept)``; ``box`` is the strip's (x_min, y_min, x_max, y_max).
    """
    side, strip, box, touching, covered = mapped_strip(event_dir, fraction)
    post = gdal.Open(os.path.join(event_dir, "post.tif"))
    srs = osr.SpatialReference(wkt=post.GetProjection())
    inventory = ogr.Open(os.path.join(event_dir, "inventory.gpkg"))
    source = inventory.GetLayer(0)
    os.makedirs(out_dir, exist_ok=True)
    driver = ogr.GetDriverByName("GPKG")
    for name in ("area.gpkg", "landslides.gpkg"):
        if os.path.exists(os.path.join(out_dir, name)):
            driver.DeleteDataSource(os.path.join(out_dir, name))
    area = driver.CreateDataSource(os.path.join(out_dir, "area.gpkg"))
    layer = area.CreateLayer("area", srs=srs, geom_type=ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(strip)
    layer.CreateFeature(feature)
    area = None
    out = driver.CreateDataSource(os.path.join(out_dir, "landslides.gpkg"))
    out_layer = out.CreateLayer("landslides", srs=source.GetSpatialRef(), geom_type=ogr.wkbMultiPolygon)
    for geometry in touching:
        copy = ogr.Feature(out_layer.GetLayerDefn())
        copy.SetGeometry(ogr.ForceToMultiPolygon(geometry))
        out_layer.CreateFeature(copy)
    out = None
    return box, side, covered, len(touching)


def run_adapt(event_dir: str, work: str, base_model: str, minutes: float, python: str, seed: int):
    """Run ``python -m training adapt``; returns (result dict, wall seconds, peak RSS in MB)."""
    command = [python, "-m", "training", "adapt", "--pre", os.path.join(event_dir, "pre.tif"),
               "--post", os.path.join(event_dir, "post.tif"), "--dem", os.path.join(event_dir, "dem.tif"),
               "--landslides", os.path.join(work, "landslides.gpkg"), "--area", os.path.join(work, "area.gpkg"),
               "--mask-polygons", os.path.join(event_dir, "clouds.gpkg"),
               "--output", os.path.join(work, "adapted.onnx"), "--result-json", os.path.join(work, "result.json"),
               "--minutes", str(minutes), "--seed", str(seed), "--save-checks", os.path.join(work, "checks")]
    if base_model:
        command += ["--base-model", base_model]
    start = time.time()
    with open(os.path.join(work, "adapt.log"), "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, wait_status, usage = os.wait4(process.pid, 0)  # this child's own peak resident set
        process.returncode = status = os.waitstatus_to_exitcode(wait_status)
    wall = time.time() - start
    if status:
        raise RuntimeError(f"adapt failed on {event_dir}; see {work}/adapt.log")
    with open(os.path.join(work, "result.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    return result, wall, usage.ru_maxrss / 1024.0


def probability_map(model: str, event_dir: str, out_tif: str, mask_polygons: str) -> None:
    from model.grid import RasterInput
    from model.pipeline import MappingRequest, map_landslides
    from model.vectors import VectorInput

    request = MappingRequest(model_path=model, pre=RasterInput(os.path.join(event_dir, "pre.tif"), (1, 2, 3)),
                             post=RasterInput(os.path.join(event_dir, "post.tif"), (1, 2, 3)),
                             dem=RasterInput(os.path.join(event_dir, "dem.tif"), (1,)),
                             mask_polygons=VectorInput(mask_polygons), probability_path=out_tif)
    map_landslides(request)


def truth_on(probability_tif: str, event_dir: str) -> np.ndarray:
    dataset = gdal.Open(probability_tif)
    target = gdal.GetDriverByName("MEM").Create("", dataset.RasterXSize, dataset.RasterYSize, 1, gdal.GDT_Byte)
    target.SetGeoTransform(dataset.GetGeoTransform())
    target.SetProjection(dataset.GetProjection())
    inventory = ogr.Open(os.path.join(event_dir, "inventory.gpkg"))
    gdal.RasterizeLayer(target, [1], inventory.GetLayer(0), burn_values=[1])
    return target.ReadAsArray() == 1


def outside_box(probability_tif: str, box) -> np.ndarray:
    """Pixels whose centre lies outside the mapped strip: the rest of the event, where scores are measured."""
    dataset = gdal.Open(probability_tif)
    x0, dx, _, y0, _, dy = dataset.GetGeoTransform()
    xs = x0 + (np.arange(dataset.RasterXSize) + 0.5) * dx
    ys = y0 + (np.arange(dataset.RasterYSize) + 0.5) * dy
    inside = ((xs[None, :] > box[0]) & (xs[None, :] < box[2]) & (ys[:, None] > box[1]) & (ys[:, None] < box[3]))
    return ~inside


def baseline_mcc(event_dir: str, probability_tif: str, truth: np.ndarray, where: np.ndarray) -> float:
    """Best-threshold MCC of post-minus-pre brightness on slopes >= 10 degrees, on the probability's grid
    (images and DEM warped onto it: bilinear)."""
    like = gdal.Open(probability_tif)
    x0, dx, _, y0, _, dy = like.GetGeoTransform()
    bounds = (x0, y0 + like.RasterYSize * dy, x0 + like.RasterXSize * dx, y0)

    def on_grid(name, bands=None):
        warped = gdal.Warp("", os.path.join(event_dir, name), format="MEM", outputBounds=bounds,
                           width=like.RasterXSize, height=like.RasterYSize, dstSRS=like.GetProjection(),
                           resampleAlg="bilinear")
        return warped

    pre = on_grid("pre.tif").ReadAsArray().astype(np.float32).mean(0)
    post = on_grid("post.tif").ReadAsArray().astype(np.float32).mean(0)
    slope = gdal.DEMProcessing("", on_grid("dem.tif"), "slope", format="MEM").ReadAsArray()
    index = np.where(slope >= 10.0, post - pre, -1e9)
    thresholds = np.quantile(index[where & (slope >= 10.0)], np.linspace(0.5, 0.999, 200))
    counts = threshold_counts(index[where], truth[where], thresholds)
    return float(mcc_of_counts(counts).max())


def rest_counts(probability_tif: str, truth: np.ndarray, where: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Confusion counts (tp, fp, fn, tn) at each of ``thresholds`` on the pixels of ``where`` that have a
    probability."""
    probability = gdal.Open(probability_tif).ReadAsArray()
    scored = where & (probability >= 0)
    return threshold_counts(probability[scored], truth[scored], thresholds)


def saved_checks(checks_dir: str):
    """``(step, weights)`` of every ``step_<n>.npz`` the trainer saved in ``checks_dir`` (``--save-checks``), in
    step order."""
    names = sorted((f for f in os.listdir(checks_dir) if f.startswith("step_") and f.endswith(".npz")),
                   key=lambda f: int(f[5:-4]))
    if not names:
        raise FileNotFoundError(f"no step_<n>.npz in {checks_dir}")
    for name in names:
        with np.load(os.path.join(checks_dir, name)) as parts:
            yield int(name[5:-4]), [parts[f"arr_{i}"] for i in range(len(parts.files))]


def write_summary(path: str, summary: dict) -> None:
    """Write a benchmark's ``summary`` as JSON to ``path`` and print its pooled MCC."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    print(json.dumps(summary["pooled_mcc"]))


def pooled_mcc(count_rows) -> float:
    """MCC of the summed confusion counts (tp, fp, fn, tn) of several events, rounded as the JSONs keep it."""
    return round(float(mcc_of_counts(np.sum(count_rows, axis=0)[None])[0]), 4)


def score(probability_tif: str, threshold: float, truth: np.ndarray, where: np.ndarray) -> dict:
    probability = gdal.Open(probability_tif).ReadAsArray()
    valid = where & (probability >= 0)
    return {k: round(v, 4) if isinstance(v, float) else v
            for k, v in confusion(truth, probability >= threshold, valid).scores().items()}


def rescore_baselines(args) -> int:
    with open(args.out, encoding="utf-8") as handle:
        summary = json.load(handle)
    for row, event_dir in zip(summary["events"], args.events):
        assert row["event"] == os.path.basename(os.path.normpath(event_dir)), (row["event"], event_dir)
        base_tif = os.path.join(args.work, row["event"], "base.tif")
        truth, where = truth_on(base_tif, event_dir), outside_box(base_tif, row["mapped_box"])
        row["baseline_best_threshold_mcc"] = round(baseline_mcc(event_dir, base_tif, truth, where), 4)
        print(row["event"], row["baseline_best_threshold_mcc"])
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", nargs="+", required=True, help="simulated event folders")
    parser.add_argument("--out", required=True, help="JSON of the results")
    parser.add_argument("--work", default=os.path.join(ROOT, "benchmarks", ".cache", "adapt_families"))
    parser.add_argument("--base-model", default=os.path.join(ROOT, "model", "default_model.onnx"))
    parser.add_argument("--mapped-fraction", type=float, default=0.15)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--scored-fraction", type=float, default=None,
                        help="score outside the strip this fraction would map instead of outside the mapped one: with "
                             "--mapped-fraction 1 the trainer sees the scored pixels too, an upper bound of what "
                             "adapting can reach on the rest of a 15 %% mapping")
    parser.add_argument("--python", default=sys.executable, help="Python with TensorFlow for the adapt step")
    parser.add_argument("--rescore-baselines", action="store_true",
                        help="only recompute the baselines of the events already in --out (their work folders kept)")
    args = parser.parse_args(argv)
    if args.rescore_baselines:
        return rescore_baselines(args)
    from model.session import read_card

    base_threshold = read_card(args.base_model).threshold
    rows = []
    for event_dir in args.events:
        name = os.path.basename(os.path.normpath(event_dir))
        work = os.path.join(args.work, name)
        box, side, covered, kept = write_partial_mapping(event_dir, args.mapped_fraction, work)
        if args.scored_fraction is not None:  # scored outside the strip that fraction would map
            box = mapped_strip(event_dir, args.scored_fraction)[2]
        measured = os.path.join(work, "adapt_run.json")
        if os.path.exists(measured) and os.path.exists(os.path.join(work, "adapted.onnx")):  # adapted earlier
            with open(measured, encoding="utf-8") as handle:
                run = json.load(handle)
        else:
            result, wall, peak_mb = run_adapt(event_dir, work, args.base_model, args.minutes, args.python, seed=0)
            run = {"result": result, "wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb)}
            with open(measured, "w", encoding="utf-8") as handle:
                json.dump(run, handle, indent=1)
        result = run["result"]
        base_tif, adapted_tif = os.path.join(work, "base.tif"), os.path.join(work, "adapted.tif")
        clouds = os.path.join(event_dir, "clouds.gpkg")
        probability_map(args.base_model, event_dir, base_tif, clouds)
        probability_map(os.path.join(work, "adapted.onnx"), event_dir, adapted_tif, clouds)
        truth = truth_on(base_tif, event_dir)
        where = outside_box(base_tif, box)
        row = {"event": name, "mapped_side": side, "mapped_box": [round(v, 2) for v in box],
               "mapped_fraction": round(covered, 4), "mapped_landslides": kept,
               "adapt_wall_s": run["wall_s"], "adapt_peak_rss_mb": run["peak_rss_mb"],
               "adapt_steps": result["steps"], "validation": result["scores"],
               "base": score(base_tif, base_threshold, truth, where),
               "adapted": score(adapted_tif, result["threshold"], truth, where),
               "baseline_best_threshold_mcc": round(baseline_mcc(event_dir, base_tif, truth, where), 4)}
        rows.append(row)
        print(f"{name}: mapped the {side} {covered:.1%} ({kept} landslides); base MCC {row['base']['mcc']:.3f} -> "
              f"adapted {row['adapted']['mcc']:.3f} on the rest (baseline {row['baseline_best_threshold_mcc']:.3f}); "
              f"{run['wall_s']:.0f} s, peak {run['peak_rss_mb']:.0f} MB", flush=True)
    pooled = {which: pooled_mcc([[r[which][k] for k in ("tp", "fp", "fn", "tn")] for r in rows])
              for which in ("base", "adapted")}
    summary = {"what": "adapting a model to an event from a partial mapping; scored on the rest of each event",
               "base_model": os.path.basename(args.base_model), "events": rows, "pooled_mcc": pooled,
               "minutes": args.minutes, "mapped_fraction": args.mapped_fraction,
               "scored": "outside the mapped strip" if args.scored_fraction is None else
               f"outside the strip of {args.scored_fraction:g} of the event (the trainer saw it too)"}
    write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
