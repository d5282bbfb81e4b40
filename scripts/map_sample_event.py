"""Map landslides on the bundled sample event through the Processing algorithm, headless.

Usage (after scripts/setup_debian.sh; scripts/map_sample_event.sh does both):
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/map_sample_event.py [--out out/sample_event]

Runs ``landslidemapper:mapeventlandslides`` with the default model on
resources/sample_event (a simulated Sentinel-2 event, see its event.json),
writes the probability raster, the mask, a GeoPackage of polygons and a PNG
overview (the post image with the polygons outlined), then scores the mask
against the sample's inventory with ``landslidemapper:evaluatelandslidemap``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_PACKAGE = "landslide_mapper"


def start_qgis():
    """A headless QGIS with Processing and this repository's provider; returns (app, plugin)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    # QGIS loads plugins as packages: expose the repository under the plugin's package name.
    parent = tempfile.mkdtemp(prefix="landslide_mapper_plugin_")
    os.symlink(REPO, os.path.join(parent, PLUGIN_PACKAGE))
    sys.path.insert(0, parent)
    import importlib

    plugin = importlib.import_module(PLUGIN_PACKAGE).classFactory(None)
    plugin.initProcessing()
    return app, plugin


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--event", default=os.path.join(REPO, "resources", "sample_event"),
                        help="event folder with pre.tif, post.tif, dem.tif, clouds.gpkg (default: the sample)")
    parser.add_argument("--out", default=os.path.join(REPO, "out", "sample_event"), help="output folder")
    parser.add_argument("--model", default="", help="carded ONNX model (default: the plugin's default model)")
    args = parser.parse_args(argv)

    app, plugin = start_qgis()
    import processing
    from qgis.core import QgsProcessingFeedback

    from landslide_mapper.model.grid import RasterInput
    from landslide_mapper.model.masks import VectorInput
    from landslide_mapper.model.overview import write_overview_png

    event, out = os.path.abspath(args.event), os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    paths = {"probability": os.path.join(out, "probability.tif"), "mask": os.path.join(out, "mask.tif"),
             "polygons": os.path.join(out, "landslides.gpkg"), "overview": os.path.join(out, "overview.png"),
             "confusion": os.path.join(out, "confusion.tif"), "report": os.path.join(out, "evaluation.html")}
    for path in paths.values():
        if os.path.exists(path):
            os.remove(path)
    feedback = QgsProcessingFeedback()
    result = processing.run("landslidemapper:mapeventlandslides", {
        "PRE_IMAGE": os.path.join(event, "pre.tif"),
        "POST_IMAGE": os.path.join(event, "post.tif"),
        "DEM": os.path.join(event, "dem.tif"),
        "MASK_POLYGONS": os.path.join(event, "clouds.gpkg"),
        "MODEL": args.model,
        "OUTPUT_PROBABILITY": paths["probability"],
        "OUTPUT_MASK": paths["mask"],
        "OUTPUT_POLYGONS": paths["polygons"],
    }, feedback=feedback)
    write_overview_png(RasterInput(os.path.join(event, "post.tif"), (1, 2, 3)), paths["overview"],
                       VectorInput(paths["polygons"]))

    print(f"Mapped {event} on a {result['GRID_CRS']} grid:")
    for key in ("probability", "mask", "polygons", "overview"):
        print(f"  {key:<12} {paths[key]}")
    print(f"Landslides found: {int(result['LANDSLIDE_COUNT'])}, "
          f"total area {result['LANDSLIDE_AREA_M2'] / 1e6:.3f} km2")

    inventory = os.path.join(event, "inventory.gpkg")
    if os.path.exists(inventory):
        scores = processing.run("landslidemapper:evaluatelandslidemap", {
            "PREDICTION_RASTER": paths["mask"], "INVENTORY": inventory,
            "OUTPUT_CONFUSION": paths["confusion"], "OUTPUT_REPORT": paths["report"],
        }, feedback=feedback)
        truth = ""
        record = os.path.join(event, "event.json")
        if os.path.exists(record):
            with open(record, encoding="utf-8") as handle:
                truth = f" (the inventory has {json.load(handle)['landslides']} polygons)"
        print(f"Against the event's inventory{truth}: MCC {scores['MCC']:.3f}, F1 {scores['F1']:.3f}, "
              f"precision {scores['PRECISION']:.3f}, recall {scores['RECALL']:.3f}")
        print(f"  confusion    {paths['confusion']}\n  report       {paths['report']}")
    plugin.unload()
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
