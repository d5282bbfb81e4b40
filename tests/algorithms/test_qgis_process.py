"""landslidemapper:mapeventlandslides through the qgis_process command line tool.

qgis_process loads the plugin as QGIS would: from QGIS_PLUGINPATH (a folder
holding the repository as ``landslide_mapper``), enabled in a throw-away
profile, with the venv's packages (onnxruntime) on PYTHONPATH.
"""

import os
import subprocess
import sysconfig

import numpy as np
import pytest
from osgeo import gdal

from tests.conftest import PLUGIN_PACKAGE, plugin_parent_dir

QGIS_PROCESS = "/usr/bin/qgis_process.bin"
ALG_ID = "landslidemapper:mapeventlandslides"

pytestmark = [
    pytest.mark.qgis,
    pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason=f"{QGIS_PROCESS} is not installed"),
]


@pytest.fixture()
def qgis_process_env(tmp_path):
    """Environment for qgis_process with the plugin enabled in a fresh profile."""
    config = tmp_path / "qgis_config"
    ini = config / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text(f"[PythonPlugins]\n{PLUGIN_PACKAGE}=true\n")
    env = dict(os.environ)
    site_packages = sysconfig.get_paths()["purelib"]
    env.update(
        QGIS_PLUGINPATH=plugin_parent_dir(),
        QGIS_CUSTOM_CONFIG_PATH=str(config),
        PYTHONPATH=os.pathsep.join(p for p in (site_packages, env.get("PYTHONPATH")) if p),
        QT_QPA_PLATFORM="offscreen",
    )
    return env


def qgis_process(env, *arguments, timeout=120):
    return subprocess.run([QGIS_PROCESS, *arguments], env=env, capture_output=True, text=True, timeout=timeout)


def test_list_shows_the_provider(qgis_process_env):
    done = qgis_process(qgis_process_env, "list")
    assert done.returncode == 0, done.stderr
    assert "Landslide Mapper" in done.stdout
    assert ALG_ID in done.stdout


def test_help(qgis_process_env):
    done = qgis_process(qgis_process_env, "help", ALG_ID)
    assert done.returncode == 0, done.stderr
    for name in ("PRE_IMAGE", "POST_IMAGE", "DEM", "MODEL", "OUTPUT_MASK", "OUTPUT_PROBABILITY", "OUTPUT_POLYGONS"):
        assert name in done.stdout
    assert "Map event landslides" in done.stdout


def test_run(qgis_process_env, event_scene, red_model, tmp_path):
    mask_path = tmp_path / "mask.tif"
    probability_path = tmp_path / "probability.tif"
    polygons_path = tmp_path / "polygons.gpkg"
    done = qgis_process(
        qgis_process_env, "run", ALG_ID, "--",
        f"PRE_IMAGE={event_scene.pre}", f"POST_IMAGE={event_scene.post}", f"DEM={event_scene.dem}",
        f"MODEL={red_model}", f"OUTPUT_MASK={mask_path}", f"OUTPUT_PROBABILITY={probability_path}",
        f"OUTPUT_POLYGONS={polygons_path}", "WINDOW_SIZE=64",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    np.testing.assert_array_equal(gdal.Open(str(mask_path)).ReadAsArray(), event_scene.expected_mask())
    assert probability_path.exists() and polygons_path.exists()
    assert f"LANDSLIDE_COUNT:\t{len(event_scene.slides)}" in done.stdout


def test_run_reports_refusal(qgis_process_env, event_scene, tmp_path):
    done = qgis_process(
        qgis_process_env, "run", ALG_ID, "--",
        f"PRE_IMAGE={event_scene.pre}", f"POST_IMAGE={event_scene.post}", f"DEM={event_scene.dem}",
        f"MODEL={tmp_path / 'missing.onnx'}", f"OUTPUT_MASK={tmp_path / 'mask.tif'}",
    )
    assert done.returncode != 0
    assert "Model file not found" in done.stdout + done.stderr
    assert not (tmp_path / "mask.tif").exists()


def test_continental_geographic_dem_and_swapped_extent_give_messages_not_aborts(qgis_process_env, red_model, tmp_path):
    from tests.helpers.scenes import make_event_scene, write_raster

    scene = make_event_scene(str(tmp_path / "scene"), epsg=32654, origin=(500000.0, 3952000.0))  # 35.7 N 141 E
    dem = write_raster(str(tmp_path / "asia.tif"), np.full((240, 480), 400.0, np.float32) + np.arange(480)[None, :],
                       (60.0, 0.25, 0, 60.0, 0, -0.25), 4326, gdal.GDT_Float32)  # 60-180 E, 0-60 N
    common = [f"PRE_IMAGE={scene.pre}", f"POST_IMAGE={scene.post}", f"DEM={dem}", f"MODEL={red_model}"]
    done = qgis_process(qgis_process_env, "run", ALG_ID, "--", *common, f"OUTPUT_MASK={tmp_path / 'mask.tif'}")
    assert done.returncode == 0, done.stdout + done.stderr  # aborted with exit 134 before
    assert gdal.Open(str(tmp_path / "mask.tif")).RasterXSize == 120
    swapped = qgis_process(qgis_process_env, "run", ALG_ID, "--", *common, "EXTENT=35.70,35.71,141.0,141.01 [EPSG:4326]",
                           f"OUTPUT_MASK={tmp_path / 'swapped.tif'}")
    assert swapped.returncode not in (0, 134)
    assert "beyond ±90°" in swapped.stdout + swapped.stderr and "swapped" in swapped.stdout + swapped.stderr
    assert not (tmp_path / "swapped.tif").exists()


def test_adapt_model_to_event_and_the_shipped_model_are_listed_and_refuse_bad_input(qgis_process_env, event_scene,
                                                                                   tmp_path):
    from tests.helpers.scenes import write_polygons

    done = qgis_process(qgis_process_env, "list")
    assert "landslidemapper:adaptmodeltoevent" in done.stdout and "landslidemapper:adaptthenmap" in done.stdout
    x0, dx, _, y0, _, dy = event_scene.geotransform
    box = f"POLYGON(({x0} {y0},{x0 + 50 * dx} {y0},{x0 + 50 * dx} {y0 + 50 * dy},{x0} {y0 + 50 * dy},{x0} {y0}))"
    area = write_polygons(str(tmp_path / "area.gpkg"), [box], event_scene.epsg)
    done = qgis_process(
        qgis_process_env, "run", "landslidemapper:adaptmodeltoevent", "--",
        f"PRE_IMAGE={event_scene.pre}", f"POST_IMAGE={event_scene.post}", f"DEM={event_scene.dem}",
        f"LANDSLIDES={area}", f"AREA={area}", f"OUTPUT={tmp_path / 'adapted.onnx'}")
    assert done.returncode != 0
    assert "less than one adaptation tile" in done.stdout + done.stderr
    assert not (tmp_path / "adapted.onnx").exists()
