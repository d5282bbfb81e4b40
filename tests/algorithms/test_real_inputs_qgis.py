"""Issue 13 through processing.run: what a user sees for 3857 inputs, layer mix-ups, output folders, busy outputs."""

import os

import numpy as np
import pytest
from osgeo import gdal

from tests.helpers.scenes import make_event_scene

pytestmark = pytest.mark.qgis

ALG_ID = "landslidemapper:mapeventlandslides"
EVALUATE_ID = "landslidemapper:evaluatelandslidemap"


def run(alg_id, parameters, feedback=None):
    import processing

    return processing.run(alg_id, parameters, feedback=feedback)


class LogFeedback:
    """A QgsProcessingFeedback that keeps every pushed line."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class _Feedback(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.lines = []
                self.progress_seen = []
                self.progressChanged.connect(self.progress_seen.append)

            def pushInfo(self, info):  # noqa: N802 (QGIS API name)
                self.lines.append(info)
                super().pushInfo(info)

        return _Feedback()


@pytest.fixture()
def scene_3857(tmp_path):
    scene = make_event_scene(str(tmp_path / "utm"), epsg=32654, origin=(500000.0, 3952000.0),
                             slides=[(10, 10, 20, 20), (50, 60, 30, 40)])
    paths = {}
    for name in ("pre", "post", "dem"):
        paths[name] = str(tmp_path / f"{name}_3857.tif")
        gdal.Warp(paths[name], getattr(scene, name), dstSRS="EPSG:3857", xRes=2.5 / 0.812, yRes=2.5 / 0.812,
                  resampleAlg="near")
    return scene, paths


def test_web_mercator_inputs_map_in_utm_with_true_areas_and_say_so(qgis_app, scene_3857, red_model, tmp_path):
    _, paths = scene_3857
    feedback = LogFeedback()
    result = run(ALG_ID, {"PRE_IMAGE": paths["pre"], "POST_IMAGE": paths["post"], "DEM": paths["dem"],
                          "MODEL": red_model, "OUTPUT_MASK": str(tmp_path / "mask.tif"),
                          "OUTPUT_POLYGONS": str(tmp_path / "slides.gpkg")}, feedback)
    assert result["GRID_CRS"] == "EPSG:32654"
    assert any("The grid is in EPSG:32654" in line and "EPSG:3857 is not in true ground metres" in line
               for line in feedback.lines)
    assert result["LANDSLIDE_AREA_M2"] == pytest.approx(160_000.0, rel=0.01)  # 243,000 m² on a 3857 grid


def test_the_same_layer_as_pre_and_post_image_is_refused(qgis_app, red_model, tmp_path):
    from qgis.core import QgsProcessingException

    scene = make_event_scene(str(tmp_path / "scene"))
    with pytest.raises(QgsProcessingException, match="Pre-event image and post-event image are the same layer"):
        run(ALG_ID, {"PRE_IMAGE": scene.post, "POST_IMAGE": scene.post, "DEM": scene.dem, "MODEL": red_model,
                     "OUTPUT_MASK": str(tmp_path / "mask.tif")})
    assert not os.path.exists(tmp_path / "mask.tif")


def test_a_missing_output_folder_is_reported_before_any_window(qgis_app, red_model, tmp_path):
    from qgis.core import QgsProcessingException

    scene = make_event_scene(str(tmp_path / "scene"))
    feedback = LogFeedback()
    with pytest.raises(QgsProcessingException, match="The folder of the landslide mask does not exist"):
        run(ALG_ID, {"PRE_IMAGE": scene.pre, "POST_IMAGE": scene.post, "DEM": scene.dem, "MODEL": red_model,
                     "OUTPUT_MASK": str(tmp_path / "missing" / "mask.tif"),
                     "OUTPUT_PROBABILITY": str(tmp_path / "probability.tif")}, feedback)
    assert max(feedback.progress_seen, default=0.0) == 0.0  # not one window ran
    assert not os.path.exists(tmp_path / "probability.tif")


def test_an_output_another_run_is_writing_is_refused_and_left_alone(qgis_app, red_model, tmp_path):
    from qgis.core import QgsProcessingException

    from model.commit import OutputCommit

    scene = make_event_scene(str(tmp_path / "scene"))
    mask = str(tmp_path / "mask.tif")
    with open(mask, "wb") as handle:
        handle.write(b"finished by the first run")
    with OutputCommit([("landslide mask", mask)], str(tmp_path / "work")):  # the first run, still running
        with pytest.raises(QgsProcessingException, match="Another run is writing the landslide mask"):
            run(ALG_ID, {"PRE_IMAGE": scene.pre, "POST_IMAGE": scene.post, "DEM": scene.dem, "MODEL": red_model,
                         "OUTPUT_MASK": mask})
    assert open(mask, "rb").read() == b"finished by the first run"
    result = run(ALG_ID, {"PRE_IMAGE": scene.pre, "POST_IMAGE": scene.post, "DEM": scene.dem, "MODEL": red_model,
                          "OUTPUT_MASK": mask})  # once the first run has finished, the last run wins
    np.testing.assert_array_equal(gdal.Open(result["OUTPUT_MASK"]).ReadAsArray(), scene.expected_mask())


def test_evaluation_of_a_web_mercator_mask_reports_true_areas(qgis_app, tmp_path):
    from tests.helpers.scenes import write_polygons, write_raster

    gt = (500000.0, 10.0, 0.0, 3952000.0, 0.0, -10.0)
    utm_mask = write_raster(str(tmp_path / "mask.tif"), np.ones((100, 100), np.uint8), gt, 32654, nodata=255)
    merc_mask = str(tmp_path / "mask_3857.tif")
    gdal.Warp(merc_mask, utm_mask, dstSRS="EPSG:3857", xRes=10 / 0.812, yRes=10 / 0.812, resampleAlg="near")
    x0, y0 = gt[0], gt[3]
    square = f"POLYGON(({x0} {y0},{x0 + 1000} {y0},{x0 + 1000} {y0 - 1000},{x0} {y0 - 1000},{x0} {y0}))"
    inventory = write_polygons(str(tmp_path / "inventory.gpkg"), [square], 32654)
    feedback = LogFeedback()
    result = run(EVALUATE_ID, {"PREDICTION_RASTER": merc_mask, "INVENTORY": inventory,
                               "OUTPUT_REPORT": str(tmp_path / "report.html")}, feedback)
    assert any("areas are reported in true ground m²" in line for line in feedback.lines)
    assert result["TP"] > 0 and result["FP"] + result["FN"] < 0.02 * result["TP"]
    report = open(result["OUTPUT_REPORT"], encoding="utf-8").read()
    tp_area = float(report.split("True positives (TP)</th><td>")[1].split("</td><td>")[1].split("<")[0].replace(",", ""))
    assert tp_area == pytest.approx(1e6, rel=0.01)  # 1.52e6 on the 3857 plane
