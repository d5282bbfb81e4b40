"""Adapt model to event through processing.run: end to end with a short budget, cancel, and bad inputs.

The trainer runs in the repository's .venv (a separate process: TensorFlow never loads into this QGIS process).
"""

import glob
import json
import os
import time

import pytest
from osgeo import ogr, osr

from tests.helpers.scenes import make_event_scene, write_polygons
from tests.helpers.tiny_models import red_difference_model

pytestmark = pytest.mark.qgis

ALG_ID = "landslidemapper:adaptmodeltoevent"
ROWS = COLS = 300
AREA_COLS = 160
# Bright scars in the red band, spread over the scene so that the area holds some for validation too.
SLIDES = [(r, c, 6 + (r + c) % 7, 5 + (r * 3 + c) % 9) for r in range(12, 290, 37) for c in range(10, 290, 41)]


def _box(scene, row, col, height, width):
    x0, dx, _, y0, _, dy = scene.geotransform
    return (x0 + col * dx, y0 + (row + height) * dy, x0 + (col + width) * dx, y0 + row * dy)


def _wkt(bounds):
    x0, y0, x1, y1 = bounds
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def _reprojected(path, wkts, source_epsg, target_epsg):
    """Polygons given in ``source_epsg`` written in ``target_epsg`` (densified so that the shapes hold)."""
    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromEPSG(source_epsg)
    target.ImportFromEPSG(target_epsg)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(source, target)
    out = []
    for wkt in wkts:
        geometry = ogr.CreateGeometryFromWkt(wkt)
        geometry.Segmentize(10.0)
        geometry.Transform(transform)
        out.append(geometry.ExportToWkt())
    return write_polygons(path, out, target_epsg)


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("adapt_event"))
    scene = make_event_scene(folder, rows=ROWS, cols=COLS, slides=SLIDES, seed=3)
    in_area = [s for s in SLIDES if s[1] + s[3] <= AREA_COLS]
    landslide_wkts = [_wkt(_box(scene, *s)) for s in in_area]
    area_wkt = _wkt(_box(scene, 0, 0, ROWS, AREA_COLS))
    return {
        "scene": scene,
        "folder": folder,
        "landslide_wkts": landslide_wkts,
        "area_wkt": area_wkt,
        # other CRSs than the images' (UTM 33N): these must work
        "landslides": _reprojected(os.path.join(folder, "landslides_3857.gpkg"), landslide_wkts, scene.epsg, 3857),
        "area": _reprojected(os.path.join(folder, "area_4326.gpkg"), [area_wkt], scene.epsg, 4326),
    }


def params(event, out_dir, **overrides):
    scene = event["scene"]
    values = {"PRE_IMAGE": scene.pre, "POST_IMAGE": scene.post, "DEM": scene.dem,
              "LANDSLIDES": event["landslides"], "AREA": event["area"], "MINUTES": 0.5,
              "OUTPUT": os.path.join(str(out_dir), "adapted.onnx")}
    values.update(overrides)
    return values


def _feedback(cancel_on_progress=False):
    from qgis.core import QgsProcessingFeedback

    class Feedback(QgsProcessingFeedback):
        cancelled_at = None
        log = []

        def setProgress(self, value):  # noqa: N802 (QGIS API name)
            super().setProgress(value)
            if cancel_on_progress and value > 0 and self.cancelled_at is None:
                self.cancelled_at = time.time()
                self.cancel()

        def pushInfo(self, info):  # noqa: N802 (QGIS API name)
            self.log.append(info)
            super().pushInfo(info)

    return Feedback()


def _run(parameters, feedback=None):
    import processing
    from qgis.core import QgsProcessingContext

    return processing.run(ALG_ID, parameters, context=QgsProcessingContext(), feedback=feedback or _feedback())


def _refused(parameters, *fragments):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException) as caught:
        _run(parameters)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def _scratch_dirs():
    from qgis.core import QgsProcessingUtils

    return set(glob.glob(os.path.join(os.path.dirname(os.path.normpath(QgsProcessingUtils.tempFolder())),
                                      "landslide_adapt_*")))


@pytest.fixture()
def trainer_setting():
    """Set the trainer's Python for one test, then clear it (empty: the .venv beside the plugin)."""
    from processing.core.ProcessingConfig import ProcessingConfig

    from landslide_mapper.algorithms.trainer_process import SETTING_PYTHON

    def set_value(value):
        ProcessingConfig.setSettingValue(SETTING_PYTHON, value)

    yield set_value
    ProcessingConfig.setSettingValue(SETTING_PYTHON, "")


def test_end_to_end_writes_an_adapted_model_with_its_card_and_scores(qgis_app, event, tmp_path):
    from landslide_mapper.model.session import read_card

    before = _scratch_dirs()
    feedback = _feedback()
    result = _run(params(event, tmp_path), feedback)
    output = result["OUTPUT"]
    assert os.path.isfile(output) and output.endswith("adapted.onnx")
    card = read_card(output)
    assert card.provenance["adapted_from"]["name"] == read_card(
        os.path.join(os.path.dirname(__file__), "..", "..", "model", "default_model.onnx")).name
    assert card.provenance["adapted_on"]["landslides"] == len([s for s in SLIDES if s[1] + s[3] <= AREA_COLS])
    assert card.provenance["adapted_on"]["area_km2"] == pytest.approx(ROWS * AREA_COLS * 100 / 1e6, rel=0.02)
    assert card.threshold == result["THRESHOLD"]
    for name, key in (("MCC", "mcc"), ("F1", "f1"), ("PRECISION", "precision"), ("RECALL", "recall")):
        assert result[name] == pytest.approx(card.metrics[key])
        assert -1.0 <= result[name] <= 1.0
    assert "validation blocks" in card.metrics["evaluated_on"]
    assert result["BASE_MCC"] == pytest.approx(card.metrics["base_model_on_same_pixels"]["mcc"])
    assert any("Adapted model" in line for line in feedback.log), feedback.log[-5:]
    assert sorted(os.listdir(str(tmp_path))) == ["adapted.onnx"]
    assert _scratch_dirs() == before

    import processing  # the adapted model maps the event

    mapped = processing.run("landslidemapper:mapeventlandslides", {
        "PRE_IMAGE": event["scene"].pre, "POST_IMAGE": event["scene"].post, "DEM": event["scene"].dem,
        "MODEL": output, "OUTPUT_MASK": os.path.join(str(tmp_path), "mask.tif")})
    assert os.path.isfile(mapped["OUTPUT_MASK"])


def test_cancel_stops_the_trainer_within_seconds_and_leaves_no_file(qgis_app, event, tmp_path):
    from qgis.core import QgsProcessingException

    before = _scratch_dirs()
    feedback = _feedback(cancel_on_progress=True)
    with pytest.raises(QgsProcessingException) as caught:
        _run(params(event, tmp_path, MINUTES=5.0), feedback)
    assert feedback.cancelled_at is not None, "the trainer never reported progress"
    assert time.time() - feedback.cancelled_at < 6.0
    assert "ancel" in str(caught.value)
    assert os.listdir(str(tmp_path)) == []
    assert _scratch_dirs() == before


def test_landslides_outside_the_area_are_refused_before_training(qgis_app, event, tmp_path):
    scene = event["scene"]
    outside = _wkt(_box(scene, 20, 250, 8, 8))
    path = write_polygons(os.path.join(str(tmp_path), "landslides.gpkg"), event["landslide_wkts"] + [outside],
                          scene.epsg)
    _refused(params(event, tmp_path, LANDSLIDES=path), "1 of the", "wholly outside the area")


def test_no_landslide_polygon_is_refused(qgis_app, event, tmp_path):
    path = write_polygons(os.path.join(str(tmp_path), "empty.gpkg"), [], event["scene"].epsg)
    _refused(params(event, tmp_path, LANDSLIDES=path), "have no polygon")


def test_an_area_without_mapped_landslide_pixels_is_refused(qgis_app, event, tmp_path):
    scene = event["scene"]
    # the area touches one landslide's edge only: no landslide pixel lies inside it
    slide = SLIDES[0]
    area = _wkt(_box(scene, slide[0] + slide[2], 0, 200, 160))
    landslide = _wkt(_box(scene, *slide))
    _refused(params(event, tmp_path,
                    LANDSLIDES=write_polygons(os.path.join(str(tmp_path), "l.gpkg"), [landslide], scene.epsg),
                    AREA=write_polygons(os.path.join(str(tmp_path), "a.gpkg"), [area], scene.epsg)),
             "holds no mapped landslide")


def test_an_area_smaller_than_one_tile_is_refused(qgis_app, event, tmp_path):
    scene = event["scene"]
    area = write_polygons(os.path.join(str(tmp_path), "small.gpkg"), [_wkt(_box(scene, 0, 0, 60, 60))], scene.epsg)
    landslides = write_polygons(os.path.join(str(tmp_path), "l.gpkg"), [_wkt(_box(scene, *SLIDES[0]))], scene.epsg)
    _refused(params(event, tmp_path, AREA=area, LANDSLIDES=landslides), "less than one adaptation tile")


def test_a_python_without_tensorflow_is_refused_with_what_to_install(qgis_app, event, tmp_path, trainer_setting):
    if os.system("/usr/bin/python3 -c 'import tensorflow' 2>/dev/null") == 0:
        pytest.skip("the system Python has TensorFlow")
    trainer_setting("/usr/bin/python3")
    _refused(params(event, tmp_path), "/usr/bin/python3 lacks", "tensorflow", "requirements-training.txt")
    not_a_program = tmp_path / "python"
    not_a_program.write_text("not a program")
    trainer_setting(str(not_a_program))
    _refused(params(event, tmp_path), "cannot be run", "requirements-training.txt")
    assert os.listdir(str(tmp_path)) == ["python"]


def test_a_base_model_the_trainer_cannot_rebuild_is_refused(qgis_app, event, tmp_path):
    model = red_difference_model(os.path.join(str(tmp_path), "red.onnx"))
    out = tmp_path / "out"
    out.mkdir()
    _refused(params(event, out, MODEL=model), "cannot rebuild")
    assert os.listdir(str(out)) == []


def test_the_shipped_model_adapts_then_maps_the_whole_event(qgis_app, event, tmp_path):
    import processing
    from qgis.core import QgsApplication

    from landslide_mapper.model.session import read_card

    registry = QgsApplication.processingRegistry()
    listed = registry.algorithmById("landslidemapper:adaptthenmap")
    assert listed is not None and listed.displayName() == "Adapt model, then map the event"
    assert listed.group() == "Landslide mapping"
    assert sorted(o.name() for o in listed.outputDefinitions()) == [
        "adapt:adapted_model", "map:landslides_mapped", "map:mask", "map:probability"]
    scene = event["scene"]
    result = processing.run("landslidemapper:adaptthenmap", {
        "pre_image": scene.pre, "post_image": scene.post, "dem": scene.dem, "landslides": event["landslides"],
        "area": event["area"], "minutes": 0.5,
        "adapt:adapted_model": os.path.join(str(tmp_path), "adapted.onnx"),
        "map:landslides_mapped": os.path.join(str(tmp_path), "landslides.gpkg"),
        "map:probability": os.path.join(str(tmp_path), "probability.tif"),
        "map:mask": os.path.join(str(tmp_path), "mask.tif")})
    assert read_card(result["adapt:adapted_model"]).provenance["adapted_on"]["landslides"] > 0
    assert sorted(os.listdir(str(tmp_path))) == ["adapted.onnx", "landslides.gpkg", "mask.tif", "probability.tif"]
    from osgeo import gdal

    mask = gdal.Open(result["map:mask"])
    assert (mask.RasterYSize, mask.RasterXSize) == (ROWS, COLS)  # the whole event, not only the mapped area
