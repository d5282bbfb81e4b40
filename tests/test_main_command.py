"""The README's main command maps the bundled sample event through Processing and reports it."""

import os
import re
import subprocess
import sys

import pytest
from osgeo import gdal, ogr

from tests.conftest import qgis_installed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_map_sample_event_writes_the_four_outputs_and_a_summary(tmp_path):
    if not qgis_installed():  # QGIS runs in a subprocess: never import it here
        pytest.skip("QGIS is not installed")
    out = tmp_path / "out"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    run = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "map_sample_event.py"), "--out", str(out)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("probability.tif", "mask.tif", "landslides.gpkg", "overview.png", "confusion.tif",
                 "evaluation.html"):
        assert (out / name).exists(), name
        assert str(out / name) in run.stdout
    found = re.search(r"Landslides found: (\d+), total area ([\d.]+) km2", run.stdout)
    assert found, run.stdout
    polygons = ogr.Open(str(out / "landslides.gpkg"))
    assert polygons.GetLayer(0).GetFeatureCount() == int(found.group(1)) > 0
    assert gdal.Open(str(out / "overview.png")).RasterCount == 3
    assert re.search(r"MCC (\d\.\d+)", run.stdout)
    assert not [n for n in os.listdir(out) if "partial" in n]
