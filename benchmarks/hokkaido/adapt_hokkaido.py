"""Adapt models to the real Hokkaido 2018 crop from the reference scars of its ``adapt`` part; score on the rest.

    python benchmarks/hokkaido/adapt_hokkaido.py [BASE.onnx ...] --out DIR [--minutes 10]

For each base model (default: the shipped one): the reference scars (``reference.gpkg``, layer ``scars``, UTM 54N)
that touch the ``adapt`` part (``parts.gpkg``, EPSG:4326) are the analyst's landslides and that part is the area
where the mapping is complete; ``python -m training adapt`` fine-tunes the base model there (images as the scorer
stacks them, radiometry ``s2_l2a``, the AW3D30 DSM). Then ``score_hokkaido.py`` scores the base and the adapted
models, with the change-index baselines, in the ``test`` part, which no adaptation saw.

Writes ``DIR/<base>_adapted.onnx``, ``DIR/<base>_adapt.log``, ``DIR/scores.json`` and the overview PNGs, and keeps
the weights of every validation check in ``DIR/<base>_checks/`` (``step_<n>.npz``, about 1.5 MB each; not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from osgeo import gdal, ogr, osr

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
for path in (REPO_ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import build_reference as br  # noqa: E402
import score_hokkaido as sh  # noqa: E402

gdal.UseExceptions()
ogr.UseExceptions()

REFERENCE_GPKG = os.path.join(HERE, "reference.gpkg")


def adapt_landslides(out_path: str, parts: str = sh.DEFAULT_PARTS, reference: str = REFERENCE_GPKG) -> int:
    """Write the reference scars that touch the ``adapt`` part; returns how many."""
    part_source = ogr.Open(parts)
    part_layer = part_source.GetLayerByName("adapt")
    scar_source = ogr.Open(reference)
    scars = scar_source.GetLayerByName("scars")
    part_feature = part_layer.GetNextFeature()  # kept: its geometry lives only as long as the feature
    part = part_feature.GetGeometryRef().Clone()
    transform = osr.CoordinateTransformation(part_layer.GetSpatialRef(), scars.GetSpatialRef())
    part.Transform(transform)
    driver = ogr.GetDriverByName("GPKG")
    if os.path.exists(out_path):
        driver.DeleteDataSource(out_path)
    out = driver.CreateDataSource(out_path)
    layer = out.CreateLayer("landslides", srs=scars.GetSpatialRef(), geom_type=ogr.wkbMultiPolygon)
    kept = 0
    for feature in scars:
        if feature.GetGeometryRef().Intersects(part):
            copy = ogr.Feature(layer.GetLayerDefn())
            copy.SetGeometry(ogr.ForceToMultiPolygon(feature.GetGeometryRef().Clone()))
            layer.CreateFeature(copy)
            kept += 1
    out = None
    return kept


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=[sh.DEFAULT_MODEL], help="base models (default: the shipped one)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--data-dir", default=br.DEFAULT_DATA_DIR)
    parser.add_argument("--python", default=sys.executable, help="Python with TensorFlow")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="hokkaido_adapt_")
    pre_vrt, post_vrt = sh.stack_rgb(args.data_dir, "pre", work), sh.stack_rgb(args.data_dir, "post", work)
    landslides = os.path.join(args.out, "adapt_landslides.gpkg")
    count = adapt_landslides(landslides)
    runs = {}
    scored = []
    for base in args.models:
        stem = os.path.splitext(os.path.basename(base))[0]
        adapted = os.path.join(args.out, f"{stem}_adapted.onnx")
        command = [args.python, "-m", "training", "adapt", "--pre", pre_vrt, "--post", post_vrt,
                   "--dem", os.path.join(args.data_dir, "dsm_AW3D30.tif"), "--radiometry", "s2_l2a",
                   "--landslides", landslides, "--area", f"{sh.DEFAULT_PARTS}|layername=adapt",
                   "--base-model", os.path.abspath(base), "--output", adapted, "--minutes", str(args.minutes),
                   "--result-json", os.path.join(args.out, f"{stem}_adapt.json"),
                   "--save-checks", os.path.join(args.out, f"{stem}_checks")]
        start = time.time()
        with open(os.path.join(args.out, f"{stem}_adapt.log"), "w", encoding="utf-8") as log:
            status = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
        if status:
            raise SystemExit(f"adapt failed for {base}; see {args.out}/{stem}_adapt.log")
        runs[stem] = {"base": sh._rel(os.path.abspath(base)), "adapted": sh._rel(adapted),
                      "wall_s": round(time.time() - start, 1), "adapt_landslides": count}
        scored += [os.path.abspath(base), adapted]
    scores_path = os.path.join(args.out, "scores.json")
    sh.main(scored + ["--json", scores_path, "--png-dir", args.out])
    with open(scores_path, encoding="utf-8") as handle:
        report = json.load(handle)
    report["adaptation"] = {"what": "adapted on the reference scars touching the adapt part (parts.gpkg); scored in "
                                    "the test part, which the adaptation never saw", "minutes": args.minutes,
                            "runs": runs}
    with open(scores_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
