"""The trainer maps events in-process after loading TensorFlow: making polygons must not crash there.

OGR's SQL on a GeoPackage segfaulted in such a process (TensorFlow ships its own SQLite); the polygons
of ``model/polygons.py`` are now made without ``ExecuteSQL``. Run in a fresh interpreter, so a crash
fails this test instead of the test process.
"""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = """
import sys, tempfile
import tensorflow  # noqa: F401  (loaded first, as in the trainer)
import numpy as np
sys.path.insert(0, {repo!r})
from tests.helpers.scenes import write_raster
from model.polygons import iter_landslide_polygons
with tempfile.TemporaryDirectory() as folder:
    mask = np.zeros((40, 50), np.uint8); mask[5:10, 5:12] = 1; mask[20:30, 30:45] = 1; mask[0, :] = 255
    gt = (500000.0, 10.0, 0.0, 5200000.0, 0.0, -10.0)
    mask_path = write_raster(folder + "/mask.tif", mask, gt, 32633, nodata=255)
    probability_path = write_raster(folder + "/p.tif", mask.astype(np.float32) * 0.9, gt, 32633)
    found = sorted(round(p.area_m2) for p in iter_landslide_polygons(mask_path, probability_path, 0.0, folder,
                                                                     lambda: False, lambda f: None))
    print(found)
"""


def test_polygons_are_made_in_a_process_that_loaded_tensorflow():
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(repo=REPO)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[3500, 15000]"
