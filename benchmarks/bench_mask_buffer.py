"""What a buffer around the cloud/snow mask buys and costs: false alarms near clouds against recall.

For each event folder (``pre.tif``, ``post.tif``, ``dem.tif``, ``clouds.gpkg``, ``inventory.gpkg``) and each
buffer distance, maps the event with the default model (``model.pipeline.map_landslides``, the plugin's own
pipeline, cloud polygons as the mask) and scores the mask against the inventory **over one fixed area**: the
pixels left valid without a buffer. Pixels the buffer removes count as "no landslide" there, so recall shows
what the buffer costs, and false alarms within ``--near-m`` of a cloud show what it buys.

    .venv/bin/python benchmarks/bench_mask_buffer.py resources/sample_event /tmp/events/dissected_plateau_901 ...

Writes ``results/mask_buffer.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

from osgeo import gdal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from model.grid import RasterInput  # noqa: E402
from model.mask_buffer import dilate_disk  # noqa: E402
from model.masks import PolygonMask, VectorInput  # noqa: E402
from model.metrics import Confusion  # noqa: E402
from model.pipeline import MASK_NODATA, MappingRequest, map_landslides  # noqa: E402

DEFAULT_MODEL = os.path.join(REPO, "model", "default_model.onnx")


def score(event_dir, buffers_m, near_m, model_path):
    """One row per buffer for one event."""
    rows = []
    reference_valid = None
    with tempfile.TemporaryDirectory(prefix="mask_buffer_") as scratch:
        for buffer_m in buffers_m:
            mask_path = os.path.join(scratch, f"mask_{buffer_m:g}.tif")
            request = MappingRequest(
                model_path=model_path,
                pre=RasterInput(os.path.join(event_dir, "pre.tif"), (1, 2, 3)),
                post=RasterInput(os.path.join(event_dir, "post.tif"), (1, 2, 3)),
                dem=RasterInput(os.path.join(event_dir, "dem.tif"), (1,)),
                mask_polygons=VectorInput(os.path.join(event_dir, "clouds.gpkg")),
                mask_path=mask_path,
                mask_buffer_m=buffer_m,
                work_dir=scratch,
            )
            started = time.perf_counter()
            result = map_landslides(request)
            seconds = time.perf_counter() - started
            grid = result.grid
            mask = gdal.Open(mask_path).ReadAsArray()
            h, w = grid.height_px, grid.width_px
            clouds = PolygonMask(VectorInput(os.path.join(event_dir, "clouds.gpkg")), grid).read(0, 0, h, w)
            truth = PolygonMask(VectorInput(os.path.join(event_dir, "inventory.gpkg")), grid, "inventory").read(0, 0, h, w)
            near = dilate_disk(clouds, int(math.ceil(near_m / grid.gsd_m))) & ~clouds
            if reference_valid is None:
                reference_valid = mask != MASK_NODATA  # the area scored for every buffer
            area = reference_valid
            predicted = (mask == 1) & area
            fp = predicted & ~truth
            counts = Confusion(
                tp=int((predicted & truth).sum()), fp=int(fp.sum()),
                fn=int((~predicted & truth & area).sum()), tn=int((~predicted & ~truth & area).sum()))
            buffered_out = area & (mask == MASK_NODATA)
            rows.append({
                "event": os.path.basename(os.path.normpath(event_dir)),
                "buffer_m": buffer_m,
                "fp_px": counts.fp,
                "fp_near_clouds_px": int((fp & near).sum()),
                "fp_near_clouds_share": float((fp & near).sum() / max(counts.fp, 1)),
                "tp_px": counts.tp,
                "fn_px": counts.fn,
                "precision": counts.precision,
                "recall": counts.recall,
                "f1": counts.f1,
                "mcc": counts.mcc,
                "area_removed_share": float(buffered_out.sum() / area.sum()),
                "landslide_px_removed": int((buffered_out & truth).sum()),
                "landslides_found": result.landslide_count,
                "seconds": round(seconds, 2),
            })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", nargs="+", help="event folders")
    parser.add_argument("--buffers", default="0,20,50,100,150", help="buffer distances in metres")
    parser.add_argument("--near-m", type=float, default=150.0, help="'near a cloud' means within this distance")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "mask_buffer.json"))
    args = parser.parse_args(argv)
    buffers = [float(b) for b in args.buffers.split(",")]
    if buffers[0] != 0:
        buffers.insert(0, 0.0)
    rows = []
    for event in args.events:
        rows += score(event, buffers, args.near_m, args.model)
        for row in rows[-len(buffers):]:
            print(f"{row['event']:<24} buffer {row['buffer_m']:>5g} m  FP {row['fp_px']:>6} "
                  f"(near clouds {row['fp_near_clouds_px']:>5}, {100 * row['fp_near_clouds_share']:4.1f} %)  "
                  f"precision {row['precision']:.3f}  recall {row['recall']:.3f}  MCC {row['mcc']:.3f}  "
                  f"area removed {100 * row['area_removed_share']:4.1f} %", flush=True)
    pooled = {}
    for row in rows:
        p = pooled.setdefault(row["buffer_m"], {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "fp_near": 0})
        p["tp"] += row["tp_px"]
        p["fp"] += row["fp_px"]
        p["fn"] += row["fn_px"]
        p["fp_near"] += row["fp_near_clouds_px"]
    summary = []
    for buffer_m, p in pooled.items():
        precision = p["tp"] / max(p["tp"] + p["fp"], 1)
        recall = p["tp"] / max(p["tp"] + p["fn"], 1)
        summary.append({"buffer_m": buffer_m, "fp_px": p["fp"], "fp_near_clouds_px": p["fp_near"],
                        "precision": precision, "recall": recall,
                        "f1": 2 * precision * recall / max(precision + recall, 1e-12)})
        print(f"{'pooled':<24} buffer {buffer_m:>5g} m  FP {p['fp']:>6} (near clouds {p['fp_near']:>5})  "
              f"precision {precision:.3f}  recall {recall:.3f}  F1 {summary[-1]['f1']:.3f}")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump({"near_m": args.near_m, "model": os.path.relpath(args.model, REPO), "events": rows,
                   "pooled": summary}, handle, indent=1)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
