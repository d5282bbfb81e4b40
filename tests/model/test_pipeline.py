"""The streaming run: stitching, nodata, skipping, cancel, atomic outputs."""

import os

import numpy as np
import onnxruntime as ort
import pytest
from osgeo import gdal

from model.card import TerrainRecipe
from model.errors import CancelledError, GridError, InputDataError
from model.grid import RasterInput
from model.masks import VectorInput
from model.pipeline import MappingRequest, check_request, map_landslides
from model.preprocess import model_inputs
from model.terrain import terrain_features
from tests.helpers.scenes import make_event_scene, write_polygons, write_raster
from tests.helpers.tiny_models import CONV_MODEL_RADIUS_PX, conv_model, expected_red_difference

gdal.UseExceptions()


def request_for(scene, model, tmp_path, **kwargs):
    kwargs.setdefault("probability_path", str(tmp_path / "probability.tif"))
    kwargs.setdefault("mask_path", str(tmp_path / "mask.tif"))
    return MappingRequest(model, RasterInput(scene.pre, (1, 2, 3)), RasterInput(scene.post, (1, 2, 3)),
                          RasterInput(scene.dem, (1,)), work_dir=str(tmp_path), **kwargs)


def read(path):
    return gdal.Open(path).ReadAsArray()


def whole_scene_prediction(scene, model_path):
    """The conv graph run once on the whole scene, inputs prepared by hand.

    Pixels beyond the scene are invalid, i.e. zero after scaling, in the
    windows' context too: pad with zeros beyond the receptive field.
    """
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    pre, post = read(scene.pre).astype(float), read(scene.post).astype(float)
    dem = np.pad(read(scene.dem).astype(float), 1, constant_values=np.nan)
    hillshade, slope = terrain_features(dem, 10.0, 10.0, TerrainRecipe())
    from tests.helpers.tiny_models import tiny_card

    inputs = model_inputs(pre, post, hillshade, slope, np.ones(pre.shape[1:], bool), tiny_card())
    pad = 2 * CONV_MODEL_RADIUS_PX
    padded = {k: np.pad(v, ((pad, pad), (pad, pad), (0, 0)))[None] for k, v in inputs.items()}
    (out,) = session.run(["prediction"], padded)
    return out[0, pad:-pad, pad:-pad, 0]


@pytest.mark.parametrize("window_px, batch_size", [(32, 1), (64, 3), (64, 2)])
def test_stitched_windows_equal_one_whole_scene_run(tmp_path, window_px, batch_size):
    scene = make_event_scene(str(tmp_path / "scene"), rows=130, cols=150)
    model = conv_model(str(tmp_path / "conv.onnx"))
    result = map_landslides(request_for(scene, model, tmp_path, window_px=window_px, batch_size=batch_size,
                                        margin_px=CONV_MODEL_RADIUS_PX + 4))
    assert result.windows_total > 4
    np.testing.assert_allclose(read(result.probability_path), whole_scene_prediction(scene, model), atol=1e-5)


def test_red_difference_mask_and_polygons_are_exact(tmp_path, event_scene, red_model):
    result = map_landslides(request_for(event_scene, red_model, tmp_path, window_px=32))
    np.testing.assert_array_equal(read(result.mask_path), event_scene.expected_mask())
    np.testing.assert_allclose(read(result.probability_path),
                               expected_red_difference(event_scene.pre_red, event_scene.post_red), atol=1e-5)
    assert sorted(p.area_m2 for p in result.polygons) == sorted(100.0 * h * w for _, _, h, w in event_scene.slides)


def test_polygons_handed_over_as_they_come(tmp_path, event_scene, red_model):
    handed = []
    result = map_landslides(request_for(event_scene, red_model, tmp_path, window_px=32), on_polygon=handed.append)
    assert result.polygons == []  # nothing held by the result
    assert sorted(p.area_m2 for p in handed) == sorted(100.0 * h * w for _, _, h, w in event_scene.slides)
    assert result.landslide_count == len(handed)
    assert result.landslide_area_m2 == pytest.approx(sum(p.area_m2 for p in handed))


def test_a_failing_polygon_receiver_leaves_no_output(tmp_path, event_scene, red_model):
    def refuse(polygon):
        raise OSError("disk full")

    out = tmp_path / "out"
    out.mkdir()
    request = request_for(event_scene, red_model, out, window_px=32)
    with pytest.raises(OSError, match="disk full"):
        map_landslides(request, on_polygon=refuse)
    assert os.listdir(out) == []  # no raster, no .partial, no scratch folder


def test_nodata_and_masks_become_nodata_everywhere(tmp_path, event_scene, red_model):
    pre = read(event_scene.pre)
    pre[:, 40:52, 70:80] = 0  # over part of a slide
    nodata_pre = write_raster(str(tmp_path / "pre0.tif"), pre, event_scene.geotransform, event_scene.epsg, nodata=0)
    cloud = np.zeros(pre.shape[1:], np.uint8)
    cloud[8:20, 10:20] = 1  # covers the first slide
    cloud_path = write_raster(str(tmp_path / "cloud.tif"), cloud, event_scene.geotransform, event_scene.epsg)
    x0, y0 = event_scene.geotransform[0], event_scene.geotransform[3]
    box = f"POLYGON(({x0} {y0 - 800},{x0 + 100} {y0 - 800},{x0 + 100} {y0 - 900},{x0} {y0 - 900},{x0} {y0 - 800}))"
    polygons = write_polygons(str(tmp_path / "snow.gpkg"), [box], event_scene.epsg)
    request = request_for(event_scene, red_model, tmp_path, mask_raster=RasterInput(cloud_path),
                          mask_polygons=VectorInput(polygons))
    request = MappingRequest(**{**request.__dict__, "pre": RasterInput(nodata_pre, (1, 2, 3))})
    result = map_landslides(request)
    mask, probability = read(result.mask_path), read(result.probability_path)
    invalid = np.zeros(mask.shape, bool)
    invalid[40:52, 70:80] = True
    invalid[8:20, 10:20] = True
    invalid[80:90, 0:10] = True
    assert (mask[invalid] == 255).all() and (probability[invalid] == -1).all()
    assert (mask[~invalid] != 255).all() and (probability[~invalid] >= 0).all()
    assert 3000.0 not in [p.area_m2 for p in result.polygons]  # the clouded slide is gone


def test_windows_below_the_valid_fraction_are_skipped(tmp_path, event_scene, red_model):
    pre = read(event_scene.pre)
    pre[:, :, :64] = 0
    nodata_pre = write_raster(str(tmp_path / "pre0.tif"), pre, event_scene.geotransform, event_scene.epsg, nodata=0)
    request = request_for(event_scene, red_model, tmp_path, window_px=48, min_valid_fraction=0.5)
    request = MappingRequest(**{**request.__dict__, "pre": RasterInput(nodata_pre, (1, 2, 3))})
    result = map_landslides(request)
    assert result.windows_skipped > 0 and result.windows_run + result.windows_skipped == result.windows_total
    mask = read(result.mask_path)
    assert (mask[:, :64] == 255).all()


def test_cancel_leaves_no_output_and_no_scratch(tmp_path, event_scene, red_model):
    calls = []

    def cancel_after_three():
        calls.append(1)
        return len(calls) > 3

    request = request_for(event_scene, red_model, tmp_path, window_px=32)
    before = set(os.listdir(tmp_path))
    with pytest.raises(CancelledError):
        map_landslides(request, is_cancelled=cancel_after_three)
    assert set(os.listdir(tmp_path)) == before


def test_failure_midway_leaves_no_output(tmp_path, event_scene, red_model):
    progress = []

    def explode(fraction):
        progress.append(fraction)
        if len(progress) == 2:
            raise RuntimeError("disk full")

    before = set(os.listdir(tmp_path))
    with pytest.raises(RuntimeError):
        map_landslides(request_for(event_scene, red_model, tmp_path, window_px=32), progress=explode)
    assert set(os.listdir(tmp_path)) == before


def test_progress_moves_per_window_and_ends_at_one(tmp_path, event_scene, red_model):
    seen = []
    result = map_landslides(request_for(event_scene, red_model, tmp_path, window_px=32), progress=seen.append)
    assert len(seen) >= result.windows_total and seen == sorted(seen) and seen[-1] == 1.0


def test_too_many_windows_are_refused_before_running(tmp_path, event_scene, red_model):
    with pytest.raises(GridError, match=r"needs \d+ windows of 32 px, more than the limit of 3"):
        check_request(request_for(event_scene, red_model, tmp_path, window_px=32, max_windows=3))


def test_wrong_band_count_is_refused(tmp_path, event_scene, red_model):
    request = request_for(event_scene, red_model, tmp_path)
    request = MappingRequest(**{**request.__dict__, "pre": RasterInput(event_scene.pre, (1, 2))})
    with pytest.raises(InputDataError, match="needs 3 bands"):
        check_request(request)


def test_outputs_are_tiled_compressed_geotiffs_with_nodata(tmp_path, event_scene, red_model):
    result = map_landslides(request_for(event_scene, red_model, tmp_path))
    for path, data_type, nodata in ((result.probability_path, gdal.GDT_Float32, -1), (result.mask_path, gdal.GDT_Byte, 255)):
        dataset = gdal.Open(path)
        band = dataset.GetRasterBand(1)
        assert band.DataType == data_type and band.GetNoDataValue() == nodata
        assert dataset.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
        assert band.GetBlockSize() == [256, 256]
        assert dataset.GetGeoTransform() == event_scene.geotransform


def test_cancel_while_writing_the_rasters_leaves_nothing(tmp_path, event_scene, red_model):
    seen = []
    cancel = lambda: bool(seen) and seen[-1] >= 0.95  # noqa: E731
    before = set(os.listdir(tmp_path))
    with pytest.raises(CancelledError):
        map_landslides(request_for(event_scene, red_model, tmp_path), progress=seen.append, is_cancelled=cancel)
    assert set(os.listdir(tmp_path)) == before
