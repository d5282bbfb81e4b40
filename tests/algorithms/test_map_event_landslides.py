"""landslidemapper:mapeventlandslides through processing.run in a headless QGIS.

The scenes (tests/helpers/scenes.py) and the red-difference model
(tests/helpers/tiny_models.py) make every expected output computable: the
model gives p = sigmoid(gain * (post_red - pre_red)) in model-scaled units,
pixel by pixel, so masks and probabilities are known exactly.
"""

import glob
import math
import os
from dataclasses import replace

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from tests.helpers.scenes import make_event_scene, write_polygons, write_raster
from tests.helpers.tiny_models import expected_red_difference, red_difference_model, tiny_card

pytestmark = pytest.mark.qgis

ALG_ID = "landslidemapper:mapeventlandslides"
DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
POLYGON_FIELDS = ("id", "area_m2", "mean_prob", "max_prob")

gdal.UseExceptions()
ogr.UseExceptions()


# --------------------------------------------------------------------------- helpers


def params(scene, model, out_dir, **overrides):
    """Parameters for a run writing all three outputs into ``out_dir``."""
    values = {
        "PRE_IMAGE": scene.pre,
        "POST_IMAGE": scene.post,
        "DEM": scene.dem,
        "MODEL": model,
        "OUTPUT_PROBABILITY": os.path.join(str(out_dir), "probability.tif"),
        "OUTPUT_MASK": os.path.join(str(out_dir), "mask.tif"),
        "OUTPUT_POLYGONS": os.path.join(str(out_dir), "polygons.gpkg"),
    }
    values.update(overrides)
    return values


def run(parameters, **kwargs):
    import processing

    return processing.run(ALG_ID, parameters, **kwargs)


def read(path):
    """(array, dataset) of band 1."""
    dataset = gdal.Open(path)
    return dataset.GetRasterBand(1).ReadAsArray(), dataset


def read_polygons(path):
    """Features of the polygon GeoPackage as dicts (geometry as an ogr clone)."""
    source = ogr.Open(path)
    layer = source.GetLayer(0)
    names = [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(layer.GetLayerDefn().GetFieldCount())]
    features = []
    for feature in layer:
        item = {name: feature.GetField(name) for name in names}
        item["geometry"] = feature.GetGeometryRef().Clone()
        features.append(item)
    srs = layer.GetSpatialRef()
    return names, features, srs


def box_bounds(geotransform, row, col, height, width):
    """(x_min, y_min, x_max, y_max) of a pixel box."""
    x0, dx, _, y0, _, dy = geotransform
    return (x0 + col * dx, y0 + (row + height) * dy, x0 + (col + width) * dx, y0 + row * dy)


def box_wkt(bounds):
    x0, y0, x1, y1 = bounds
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def epsg_of(wkt):
    srs = osr.SpatialReference(wkt=wkt)
    srs.AutoIdentifyEPSG()
    return int(srs.GetAuthorityCode(None))


def processing_exception():
    from qgis.core import QgsProcessingException

    return QgsProcessingException


def output_leftovers(out_dir):
    """Every file left in an output folder."""
    return sorted(os.listdir(str(out_dir)))


@pytest.fixture()
def out_dir(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


# --------------------------------------------------------------------------- 1. exact outputs


def test_exact_outputs_rasters_polygons_and_counts(qgis_app, event_scene, red_model, out_dir):
    scene = event_scene
    result = run(params(scene, red_model, out_dir))

    expected_mask = scene.expected_mask()
    expected_probability = expected_red_difference(scene.pre_red, scene.post_red)
    assert expected_mask.any() and not expected_mask.all()

    # Rasters: whole grid, edges included.
    mask, mask_ds = read(result["OUTPUT_MASK"])
    probability, probability_ds = read(result["OUTPUT_PROBABILITY"])
    assert result["OUTPUT_MASK"] == str(out_dir / "mask.tif")
    assert result["OUTPUT_PROBABILITY"] == str(out_dir / "probability.tif")
    assert mask.shape == scene.shape and probability.shape == scene.shape
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_allclose(probability, expected_probability, rtol=0, atol=1e-5)

    for dataset, data_type, nodata in ((mask_ds, gdal.GDT_Byte, 255), (probability_ds, gdal.GDT_Float32, -1)):
        band = dataset.GetRasterBand(1)
        assert dataset.GetDriver().ShortName == "GTiff"
        assert dataset.RasterCount == 1
        assert band.DataType == data_type
        assert band.GetNoDataValue() == nodata
        assert dataset.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == "DEFLATE"
        block = band.GetBlockSize()
        # Tiled: square blocks wider than the 120 px image (a stripped file has blocks as wide as the image).
        assert block[0] == block[1] and block[0] % 16 == 0 and block[0] != dataset.RasterXSize
        assert dataset.GetGeoTransform() == pytest.approx(scene.geotransform, abs=1e-6)
        assert epsg_of(dataset.GetProjection()) == 32633

    # Polygons: one per slide, exact pixel rectangles with their statistics.
    names, features, srs = read_polygons(result["OUTPUT_POLYGONS"])
    for name in POLYGON_FIELDS:
        assert name in names
    srs.AutoIdentifyEPSG()
    assert srs.GetAuthorityCode(None) == "32633"
    assert len(features) == len(scene.slides)
    assert sorted(f["id"] for f in features) == list(range(1, len(scene.slides) + 1))
    unmatched = list(features)
    for row, col, height, width in scene.slides:
        bounds = box_bounds(scene.geotransform, row, col, height, width)
        matches = [f for f in unmatched if f["geometry"].GetEnvelope() == pytest.approx(
            (bounds[0], bounds[2], bounds[1], bounds[3]), abs=1e-6)]
        assert len(matches) == 1, f"no polygon with the bounds of slide {(row, col, height, width)}"
        feature = matches[0]
        unmatched.remove(feature)
        pixels = height * width
        box_area = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])
        assert feature["area_m2"] == pytest.approx(pixels * 100.0)
        assert feature["geometry"].GetArea() == pytest.approx(feature["area_m2"])
        assert feature["geometry"].GetArea() == pytest.approx(box_area)  # a polygon filling its box: a rectangle
        assert feature["geometry"].GetGeometryType() in (ogr.wkbPolygon, ogr.wkbMultiPolygon)
        slide_probability = expected_probability[row:row + height, col:col + width]
        assert feature["mean_prob"] == pytest.approx(slide_probability.mean(), abs=1e-5)
        assert feature["max_prob"] == pytest.approx(slide_probability.max(), abs=1e-5)

    # Numbers.
    assert result["LANDSLIDE_COUNT"] == len(scene.slides)
    assert result["LANDSLIDE_AREA_M2"] == pytest.approx(expected_mask.sum() * 100.0)
    assert result["LANDSLIDE_AREA_M2"] == pytest.approx(sum(f["area_m2"] for f in features))
    assert result["WINDOWS_RUN"] == 1  # the default 512 px window covers the 100 x 120 px scene
    assert result["WINDOWS_SKIPPED"] == 0
    assert result["GRID_CRS"] == "EPSG:32633"


# --------------------------------------------------------------------------- 2. minimum area, threshold


def test_minimum_area_drops_small_slides_only_from_polygons(qgis_app, event_scene, red_model, out_dir):
    scene = event_scene
    areas = sorted(h * w * 100.0 for _, _, h, w in scene.slides)
    # A limit equal to the second smallest slide: that one is kept (>=), the smallest dropped.
    min_area = areas[1]
    result = run(params(scene, red_model, out_dir, MIN_AREA_M2=min_area))

    kept = [a for a in areas if a >= min_area]
    assert len(kept) < len(areas)
    _, features, _ = read_polygons(result["OUTPUT_POLYGONS"])
    assert sorted(f["area_m2"] for f in features) == pytest.approx(kept)
    assert result["LANDSLIDE_COUNT"] == len(kept)
    assert result["LANDSLIDE_AREA_M2"] == pytest.approx(sum(kept))
    # The raster mask is not filtered by area (the help: "polygons smaller than the minimum area are dropped").
    np.testing.assert_array_equal(read(result["OUTPUT_MASK"])[0], scene.expected_mask())


def test_minimum_area_above_every_slide_leaves_no_polygon(qgis_app, event_scene, red_model, out_dir):
    largest = max(h * w * 100.0 for _, _, h, w in event_scene.slides)
    result = run(params(event_scene, red_model, out_dir, MIN_AREA_M2=largest + 100.0))
    assert result["LANDSLIDE_COUNT"] == 0
    assert result["LANDSLIDE_AREA_M2"] == 0
    assert read_polygons(result["OUTPUT_POLYGONS"])[1] == []


def test_minimum_area_defaults_to_the_card(qgis_app, event_scene, tmp_path, out_dir):
    areas = sorted(h * w * 100.0 for _, _, h, w in event_scene.slides)
    card_min_area = (areas[0] + areas[1]) / 2
    model = red_difference_model(str(tmp_path / "card_area.onnx"), card=tiny_card(min_area_m2=card_min_area))
    result = run(params(event_scene, model, out_dir))
    _, features, _ = read_polygons(result["OUTPUT_POLYGONS"])
    assert sorted(f["area_m2"] for f in features) == pytest.approx(areas[1:])
    # An explicit 0 overrides the card.
    (out_dir / "zero").mkdir()
    assert run(params(event_scene, model, out_dir / "zero", MIN_AREA_M2=0))["LANDSLIDE_COUNT"] == len(areas)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.6, 0.95])
def test_threshold_sets_the_mask(qgis_app, event_scene, tmp_path, out_dir, threshold):
    # gain 1: background p ~ 0.46 and slide p ~ 0.72, so thresholds select none, slides or all.
    gain = 1.0
    model = red_difference_model(str(tmp_path / "gain1.onnx"), gain=gain)
    probability = expected_red_difference(event_scene.pre_red, event_scene.post_red, gain=gain)
    expected = (probability >= threshold).astype(np.uint8)
    result = run(params(event_scene, model, out_dir, THRESHOLD=threshold))

    mask = read(result["OUTPUT_MASK"])[0]
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_allclose(read(result["OUTPUT_PROBABILITY"])[0], probability, atol=1e-5)
    if threshold > probability.max():
        assert result["LANDSLIDE_COUNT"] == 0 and not mask.any()
    if threshold <= probability.min():
        assert mask.all() and result["LANDSLIDE_COUNT"] == 1
    assert result["LANDSLIDE_AREA_M2"] == pytest.approx(expected.sum() * 100.0)


def test_threshold_defaults_to_the_card(qgis_app, event_scene, tmp_path, out_dir):
    gain = 1.0
    card_threshold = 0.7
    model = red_difference_model(str(tmp_path / "card07.onnx"), gain=gain, card=tiny_card(threshold=card_threshold))
    probability = expected_red_difference(event_scene.pre_red, event_scene.post_red, gain=gain)
    result = run(params(event_scene, model, out_dir))
    np.testing.assert_array_equal(read(result["OUTPUT_MASK"])[0], (probability >= card_threshold).astype(np.uint8))


# --------------------------------------------------------------------------- 3. windows


def test_small_windows_stitch_to_the_single_window_result(qgis_app, event_scene, red_model, tmp_path):
    big_dir, small_dir = tmp_path / "big", tmp_path / "small"
    big_dir.mkdir()
    small_dir.mkdir()
    big = run(params(event_scene, red_model, big_dir))
    small = run(params(event_scene, red_model, small_dir, WINDOW_SIZE=32, BATCH_SIZE=3, THREADS=1))

    card = tiny_card()
    step = 32 - 2 * card.context_px
    rows, cols = event_scene.shape
    assert big["WINDOWS_RUN"] == 1
    assert small["WINDOWS_RUN"] == math.ceil(rows / step) * math.ceil(cols / step)
    assert small["WINDOWS_SKIPPED"] == 0
    for key in ("OUTPUT_MASK", "OUTPUT_PROBABILITY"):
        np.testing.assert_array_equal(read(small[key])[0], read(big[key])[0])
    np.testing.assert_array_equal(read(small["OUTPUT_MASK"])[0], event_scene.expected_mask())
    assert small["LANDSLIDE_COUNT"] == big["LANDSLIDE_COUNT"] == len(event_scene.slides)
    assert small["LANDSLIDE_AREA_M2"] == big["LANDSLIDE_AREA_M2"]
    big_polygons = sorted(f["geometry"].GetEnvelope() for f in read_polygons(big["OUTPUT_POLYGONS"])[1])
    small_polygons = sorted(f["geometry"].GetEnvelope() for f in read_polygons(small["OUTPUT_POLYGONS"])[1])
    assert small_polygons == big_polygons


# --------------------------------------------------------------------------- 4. nodata and cloud masks


def _masked_scene(tmp_path):
    """The event scene plus a pre image with a nodata block, a mask raster and mask polygons (EPSG:4326)."""
    scene = make_event_scene(str(tmp_path / "scene"))
    gt = scene.geotransform
    boxes = {
        # (row, col, height, width) on the scene grid
        "pre_nodata": (5, 8, 16, 15),      # covers slide (10, 12, 6, 5) entirely
        "mask_raster": (75, 0, 18, 16),    # covers slide (80, 5, 3, 3) entirely
        "mask_polygon": (35, 60, 11, 40),  # covers the top 6 rows of slide (40, 70, 12, 20)
    }
    pre = gdal.Open(scene.pre).ReadAsArray()
    r, c, h, w = boxes["pre_nodata"]
    pre[:, r:r + h, c:c + w] = 0
    pre_path = write_raster(str(tmp_path / "pre_nodata.tif"), pre, gt, scene.epsg, nodata=0)

    cloud = np.zeros(scene.shape, np.uint8)
    r, c, h, w = boxes["mask_raster"]
    cloud[r:r + h, c:c + w] = 1
    cloud_path = write_raster(str(tmp_path / "cloud.tif"), cloud, gt, scene.epsg)

    utm = osr.SpatialReference()
    utm.ImportFromEPSG(scene.epsg)
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    for srs in (utm, wgs84):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    polygon = ogr.CreateGeometryFromWkt(box_wkt(box_bounds(gt, *boxes["mask_polygon"])))
    polygon.Segmentize(10.0)  # keep the edges straight in UTM after the round trip through degrees
    polygon.Transform(osr.CoordinateTransformation(utm, wgs84))
    polygons_path = write_polygons(str(tmp_path / "clouds.gpkg"), [polygon.ExportToWkt()], 4326)

    nodata = np.zeros(scene.shape, bool)
    for r, c, h, w in boxes.values():
        nodata[r:r + h, c:c + w] = True
    return scene, pre_path, cloud_path, polygons_path, nodata


def test_nodata_and_cloud_masks_are_nodata_everywhere(qgis_app, tmp_path, red_model, out_dir):
    scene, pre_path, cloud_path, polygons_path, nodata = _masked_scene(tmp_path)
    result = run(params(scene, red_model, out_dir, PRE_IMAGE=pre_path, MASK_RASTER=cloud_path,
                        MASK_POLYGONS=polygons_path, MASK_BUFFER=0))

    expected_mask = np.where(nodata, 255, scene.expected_mask()).astype(np.uint8)
    expected_probability = np.where(nodata, -1.0, expected_red_difference(scene.pre_red, scene.post_red))
    mask = read(result["OUTPUT_MASK"])[0]
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_allclose(read(result["OUTPUT_PROBABILITY"])[0], expected_probability, atol=1e-5)

    # Slides wholly under nodata disappear; the half-covered one keeps its visible part only.
    remaining = []
    for row, col, height, width in scene.slides:
        visible = ~nodata[row:row + height, col:col + width]
        if visible.any():
            remaining.append(visible.sum() * 100.0)
    assert len(remaining) < len(scene.slides)
    _, features, _ = read_polygons(result["OUTPUT_POLYGONS"])
    assert sorted(f["area_m2"] for f in features) == pytest.approx(sorted(remaining))
    assert result["LANDSLIDE_COUNT"] == len(remaining)

    rows, cols = np.nonzero(nodata)
    masked = ogr.Geometry(ogr.wkbMultiPolygon)
    for row, col in zip(rows, cols):
        masked.AddGeometry(ogr.CreateGeometryFromWkt(box_wkt(box_bounds(scene.geotransform, row, col, 1, 1))))
    masked = masked.UnionCascaded()
    for feature in features:
        assert feature["geometry"].Intersection(masked).GetArea() == pytest.approx(0.0, abs=1e-6)


def test_cloud_masks_are_buffered_by_default_and_image_nodata_is_not(qgis_app, tmp_path, red_model, out_dir):
    from landslide_mapper.algorithms.event_inputs import DEFAULT_MASK_BUFFER_M
    from landslide_mapper.model.mask_buffer import dilate_disk

    scene, pre_path, cloud_path, polygons_path, _ = _masked_scene(tmp_path)
    pre_nodata = gdal.Open(pre_path).ReadAsArray()[0] == 0
    clouds = np.zeros(scene.shape, bool)
    clouds[75:93, 0:16] = True   # the mask raster's box
    clouds[35:46, 60:100] = True  # the mask polygon's box
    for buffer_m, key in ((DEFAULT_MASK_BUFFER_M, None), (30.0, 30.0)):
        overrides = dict(PRE_IMAGE=pre_path, MASK_RASTER=cloud_path, MASK_POLYGONS=polygons_path)
        if key is not None:
            overrides["MASK_BUFFER"] = key
        folder = out_dir / f"buffer_{buffer_m:g}"
        folder.mkdir()
        result = run(params(scene, red_model, folder, **overrides))
        left_out = pre_nodata | dilate_disk(clouds, int(math.ceil(buffer_m / 10.0)))
        expected = np.where(left_out, 255, scene.expected_mask()).astype(np.uint8)
        np.testing.assert_array_equal(read(result["OUTPUT_MASK"])[0], expected)
    assert DEFAULT_MASK_BUFFER_M > 0


def test_windows_below_the_valid_fraction_are_skipped(qgis_app, tmp_path, red_model, out_dir):
    scene, pre_path, cloud_path, polygons_path, nodata = _masked_scene(tmp_path)
    window = 32
    step = window - 2 * tiny_card().context_px
    result = run(params(scene, red_model, out_dir, PRE_IMAGE=pre_path, MASK_RASTER=cloud_path,
                        MASK_POLYGONS=polygons_path, MASK_BUFFER=0, WINDOW_SIZE=window, MIN_VALID_FRACTION=1.0))

    # Every core holding a nodata pixel is skipped and left nodata as a whole.
    expected = scene.expected_mask().copy()
    skipped = 0
    for row in range(0, scene.shape[0], step):
        for col in range(0, scene.shape[1], step):
            if nodata[row:row + step, col:col + step].any():
                expected[row:row + step, col:col + step] = 255
                skipped += 1
    assert 0 < skipped < result["WINDOWS_RUN"]
    assert result["WINDOWS_SKIPPED"] == skipped
    assert result["WINDOWS_RUN"] + result["WINDOWS_SKIPPED"] == math.ceil(scene.shape[0] / step) * math.ceil(
        scene.shape[1] / step)
    np.testing.assert_array_equal(read(result["OUTPUT_MASK"])[0], expected)
    probability = read(result["OUTPUT_PROBABILITY"])[0]
    np.testing.assert_array_equal(probability[expected == 255], -1.0)


def test_mask_raster_nodata_masks_nothing_and_zero_masks_nothing(qgis_app, event_scene, red_model, tmp_path, out_dir):
    values = np.zeros(event_scene.shape, np.uint8)
    values[:10, :] = 200  # nodata of the mask raster: masks nothing
    cloud = write_raster(str(tmp_path / "cloud_nodata.tif"), values, event_scene.geotransform, event_scene.epsg,
                         nodata=200)
    result = run(params(event_scene, red_model, out_dir, MASK_RASTER=cloud))
    np.testing.assert_array_equal(read(result["OUTPUT_MASK"])[0], event_scene.expected_mask())


# --------------------------------------------------------------------------- 5. CRSs and resolutions


def test_inputs_in_other_crs_and_resolution(qgis_app, event_scene, red_model, tmp_path, out_dir):
    scene = event_scene
    pre_4326 = str(tmp_path / "pre_4326.tif")
    gdal.Warp(pre_4326, scene.pre, dstSRS="EPSG:4326", resampleAlg="near", dstNodata=0)
    dem_30 = str(tmp_path / "dem_30m.tif")
    gdal.Warp(dem_30, scene.dem, xRes=30, yRes=30, resampleAlg="average")
    assert gdal.Open(dem_30).GetGeoTransform()[1] == 30

    result = run(params(scene, red_model, out_dir, PRE_IMAGE=pre_4326, DEM=dem_30))

    assert result["GRID_CRS"] == "EPSG:32633"
    mask, dataset = read(result["OUTPUT_MASK"])
    assert epsg_of(dataset.GetProjection()) == 32633
    x0, dx, _, y0, _, dy = dataset.GetGeoTransform()
    assert (dx, dy) == (10.0, -10.0)
    # The grid is the post image's lattice over the common area: the scene cut to the 30 m DEM's
    # footprint (a whole number of 30 m rows may end above the scene's southern edge).
    dem_gt, dem_ds = gdal.Open(dem_30).GetGeoTransform(), gdal.Open(dem_30)
    dem_bottom = dem_gt[3] + dem_ds.RasterYSize * dem_gt[5]
    sx0, _, _, sy0, _, _ = scene.geotransform
    expected_rows = min(scene.shape[0], int((sy0 - dem_bottom) // 10))
    assert (x0, y0) == (sx0, sy0)
    assert mask.shape == (expected_rows, scene.shape[1])
    # The pre image's red band is constant, so the map is exact everywhere.
    truth = scene.expected_mask()[:expected_rows]
    np.testing.assert_array_equal(mask, truth)
    assert result["LANDSLIDE_AREA_M2"] == pytest.approx(truth.sum() * 100.0)
    assert result["LANDSLIDE_COUNT"] == sum(1 for r, _, _, _ in scene.slides if r < expected_rows)


def _lonlat_to(epsg, lon, lat):
    wgs84, target = osr.SpatialReference(), osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    target.ImportFromEPSG(epsg)
    for srs in (wgs84, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(wgs84, target).TransformPoint(lon, lat)[:2]


def test_geographic_post_image_maps_in_the_utm_zone_of_the_scene_centre(qgis_app, red_model, tmp_path, out_dir):
    # A scene stored in UTM 32N but lying at 15.2 E, i.e. in UTM zone 33: the grid must follow the
    # scene centre's zone, not the pre image's CRS.
    x, y = _lonlat_to(32632, 15.2, 47.0)
    scene = make_event_scene(str(tmp_path / "scene"), epsg=32632, origin=(round(x, -1), round(y, -1)))
    post_4326 = str(tmp_path / "post_4326.tif")
    gdal.Warp(post_4326, scene.post, dstSRS="EPSG:4326", resampleAlg="near", dstNodata=0)

    result = run(params(scene, red_model, out_dir, POST_IMAGE=post_4326))

    assert result["GRID_CRS"] == "EPSG:32633"
    for key in ("OUTPUT_MASK", "OUTPUT_PROBABILITY"):
        dataset = read(result[key])[1]
        assert epsg_of(dataset.GetProjection()) == 32633
        gt = dataset.GetGeoTransform()
        assert (gt[1], gt[5]) == (10.0, -10.0)
        assert gt[0] == pytest.approx(round(gt[0] / 10) * 10, abs=1e-6)  # on the 10 m lattice
        assert gt[3] == pytest.approx(round(gt[3] / 10) * 10, abs=1e-6)
    mask = read(result["OUTPUT_MASK"])[0]
    assert (mask != 255).mean() > 0.8  # the corners of the rotated footprint are nodata
    assert set(np.unique(mask)) <= {0, 1, 255}
    _, _, srs = read_polygons(result["OUTPUT_POLYGONS"])
    srs.AutoIdentifyEPSG()
    assert srs.GetAuthorityCode(None) == "32633"
    # Rotated by ~4.5 degrees and resampled twice, the slides are still found, with about their area.
    truth_area = scene.expected_mask().sum() * 100.0
    assert result["LANDSLIDE_COUNT"] == len(scene.slides)
    assert result["LANDSLIDE_AREA_M2"] == pytest.approx(truth_area, rel=0.25)


# --------------------------------------------------------------------------- 6. errors


def _assert_refused(parameters, *fragments, out_dir=None):
    """processing.run raises a QgsProcessingException naming the problem, and createAlgorithmById's
    checkParameterValues refuses the same parameters before anything runs."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback

    with pytest.raises(processing_exception()) as raised:
        run(dict(parameters))
    message = str(raised.value)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), message

    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG_ID)
    context = QgsProcessingContext()
    context.setFeedback(QgsProcessingFeedback())
    ok, check_message = alg.checkParameterValues(dict(parameters), context)
    assert not ok
    for fragment in fragments:
        assert fragment.lower() in check_message.lower(), check_message
    if out_dir is not None:
        assert output_leftovers(out_dir) == []
    return message


def test_valid_parameters_pass_the_check(qgis_app, event_scene, red_model, out_dir):
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG_ID)
    ok, message = alg.checkParameterValues(params(event_scene, red_model, out_dir), QgsProcessingContext())
    assert ok, message
    assert output_leftovers(out_dir) == []  # checking writes nothing


def test_refuses_inputs_that_do_not_overlap(qgis_app, event_scene, red_model, tmp_path, out_dir):
    far_dem = write_raster(str(tmp_path / "far_dem.tif"), gdal.Open(event_scene.dem).ReadAsArray(),
                           (600000.0, 10.0, 0.0, 5300000.0, 0.0, -10.0), event_scene.epsg, gdal.GDT_Float32)
    _assert_refused(params(event_scene, red_model, out_dir, DEM=far_dem), "do not overlap", "DEM", out_dir=out_dir)


def test_refuses_band_out_of_range(qgis_app, event_scene, red_model, out_dir):
    message = _assert_refused(params(event_scene, red_model, out_dir, PRE_RED_BAND=5), "band 5", out_dir=out_dir)
    assert "in pre," in message  # the layer (file pre.tif) is named
    assert "3 band" in message


def test_refuses_model_without_card(qgis_app, event_scene, tmp_path, out_dir):
    model = red_difference_model(str(tmp_path / "no_card.onnx"), with_card=False)
    _assert_refused(params(event_scene, model, out_dir), "model card", out_dir=out_dir)


def test_refuses_card_with_wrong_output_name(qgis_app, event_scene, tmp_path, out_dir):
    model = red_difference_model(str(tmp_path / "other_output.onnx"), card=tiny_card(output_name="other"))
    _assert_refused(params(event_scene, model, out_dir), "'other'", "output", out_dir=out_dir)


def test_refuses_card_with_wrong_input_tensor_name(qgis_app, event_scene, tmp_path, out_dir):
    card = tiny_card()
    renamed = tuple(replace(spec, tensor_name="before") if spec.role == "pre_image" else spec for spec in card.inputs)
    model = red_difference_model(str(tmp_path / "renamed_input.onnx"), card=replace(card, inputs=renamed))
    _assert_refused(params(event_scene, model, out_dir), "before", "pre_image", out_dir=out_dir)


def test_refuses_too_many_windows(qgis_app, event_scene, red_model, out_dir):
    step = 32 - 2 * tiny_card().context_px
    needed = math.ceil(event_scene.shape[0] / step) * math.ceil(event_scene.shape[1] / step)
    limit = needed - 1
    message = _assert_refused(params(event_scene, red_model, out_dir, WINDOW_SIZE=32, MAX_WINDOWS=limit),
                              "windows", f"limit of {limit}", out_dir=out_dir)
    assert str(needed) in message
    # One more window allowed: it runs.
    assert run(params(event_scene, red_model, out_dir, WINDOW_SIZE=32, MAX_WINDOWS=needed))["WINDOWS_RUN"] == needed


def test_refuses_extent_outside_the_inputs(qgis_app, event_scene, red_model, out_dir):
    extent = "700000,701000,5000000,5001000 [EPSG:32633]"
    _assert_refused(params(event_scene, red_model, out_dir, EXTENT=extent), "extent", "overlap", out_dir=out_dir)


def test_extent_in_another_crs_limits_the_grid(qgis_app, event_scene, red_model, out_dir):
    # The box of rows 30..70, cols 60..100 of the scene, given in degrees.
    gt = event_scene.geotransform
    x0, y0, x1, y1 = box_bounds(gt, 30, 60, 40, 40)
    utm, wgs84 = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(event_scene.epsg)
    wgs84.ImportFromEPSG(4326)
    for srs in (utm, wgs84):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(utm, wgs84)
    # Grown by 2 m: the degree box's UTM envelope then snaps inward to exactly the pixel box.
    lon0, lat0 = transform.TransformPoint(x0 - 2, y0 - 2)[:2]
    lon1, lat1 = transform.TransformPoint(x1 + 2, y1 + 2)[:2]
    extent = f"{lon0!r},{lon1!r},{lat0!r},{lat1!r} [EPSG:4326]"
    result = run(params(event_scene, red_model, out_dir, EXTENT=extent))
    mask, dataset = read(result["OUTPUT_MASK"])
    ox, _, _, oy, _, _ = dataset.GetGeoTransform()
    row0, col0 = int(round((gt[3] - oy) / 10)), int(round((ox - gt[0]) / 10))
    assert (row0, col0) == (30, 60)
    assert mask.shape == (40, 40)
    assert result["GRID_CRS"] == "EPSG:32633"
    np.testing.assert_array_equal(
        mask, event_scene.expected_mask()[row0:row0 + mask.shape[0], col0:col0 + mask.shape[1]])


# --------------------------------------------------------------------------- 7. cancel


def _cancelling_feedback(at_percent):
    """A feedback that cancels itself once progress reaches ``at_percent``."""
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    seen = []

    def on_progress(value):
        seen.append(value)
        if not feedback.isCanceled() and value >= at_percent:
            feedback.cancel()

    feedback.progressChanged.connect(on_progress)
    feedback.seen = seen
    return feedback


# Progress: windows 0..85 %, polygonising 85..88 %, polygon statistics 88..92 %, polygons handed to the
# sink 92..95 % (reported every 1000), 95 % the rasters are written and renamed, 100 % done.
@pytest.mark.parametrize("at_percent", [0.01, 50.0, 85.0, 90.0, 95.0])
def test_cancel_leaves_no_output(qgis_app, event_scene, red_model, out_dir, at_percent):
    feedback = _cancelling_feedback(at_percent)
    parameters = params(event_scene, red_model, out_dir, WINDOW_SIZE=32, BATCH_SIZE=2)
    with pytest.raises(processing_exception()) as raised:
        run(parameters, feedback=feedback)
    assert feedback.isCanceled()
    assert "cancel" in str(raised.value).lower()
    if at_percent < 85:
        assert max(feedback.seen) < 85  # stopped among the windows
    _assert_no_outputs(parameters, out_dir)


def test_progress_never_goes_back(qgis_app, tmp_path, red_model, out_dir):
    from qgis.core import QgsProcessingFeedback

    scene = _many_slides_scene(tmp_path)
    feedback = QgsProcessingFeedback()
    seen = []
    feedback.progressChanged.connect(seen.append)
    run(params(scene, red_model, out_dir, WINDOW_SIZE=32), feedback=feedback)
    assert seen and all(0 <= value <= 100 for value in seen)
    assert seen == sorted(seen), [b for a, b in zip(seen, seen[1:]) if b < a][:3]
    assert max(seen) == pytest.approx(100.0)


def _assert_no_outputs(parameters, out_dir):
    assert output_leftovers(out_dir) == []
    for key in ("OUTPUT_PROBABILITY", "OUTPUT_MASK", "OUTPUT_POLYGONS"):
        assert not os.path.exists(parameters[key])
        assert not glob.glob(parameters[key] + "*")  # no .partial, -journal, -wal...


def _many_slides_scene(tmp_path):
    """A scene with one-pixel slides on every other row and column: thousands of polygons."""
    slides = [(r, c, 1, 1) for r in range(0, 60, 2) for c in range(0, 120, 2)]
    return make_event_scene(str(tmp_path / "many"), rows=60, slides=slides)


POLYGONS_BEING_WRITTEN_PERCENT = 93.0
"""Reported after the first 1000 polygons went to the sink."""


def test_cancel_while_writing_polygons_leaves_no_output(qgis_app, tmp_path, red_model, out_dir):
    scene = _many_slides_scene(tmp_path)
    assert len(scene.slides) > 1000  # progress is reported every 1000 polygons
    feedback = _cancelling_feedback(POLYGONS_BEING_WRITTEN_PERCENT)
    parameters = params(scene, red_model, out_dir)
    with pytest.raises(processing_exception()) as raised:
        run(parameters, feedback=feedback)
    assert "cancel" in str(raised.value).lower()
    assert POLYGONS_BEING_WRITTEN_PERCENT <= max(feedback.seen) < 95.0  # the sink held polygons already
    _assert_no_outputs(parameters, out_dir)


def test_cancel_while_writing_polygons_keeps_other_layers_of_the_geopackage(qgis_app, tmp_path, red_model, out_dir):
    scene = _many_slides_scene(tmp_path)
    existing = str(out_dir / "project.gpkg")
    write_polygons(existing, ["POLYGON((0 0,1 0,1 1,0 0))"], 32633, layer="study_area")
    destination = f"ogr:dbname='{existing}' table=\"slides\" (geom)"
    parameters = params(scene, red_model, out_dir, OUTPUT_POLYGONS=destination)
    with pytest.raises(processing_exception()):
        run(parameters, feedback=_cancelling_feedback(POLYGONS_BEING_WRITTEN_PERCENT))
    assert output_leftovers(out_dir) == ["project.gpkg"]
    source = ogr.Open(existing)
    assert [source.GetLayer(i).GetName() for i in range(source.GetLayerCount())] == ["study_area"]
    assert source.GetLayer(0).GetFeatureCount() == 1


def test_failing_polygon_output_removes_the_rasters(qgis_app, event_scene, red_model, out_dir):
    parameters = params(event_scene, red_model, out_dir,
                        OUTPUT_POLYGONS=str(out_dir / "missing_folder" / "polygons.gpkg"))
    with pytest.raises(processing_exception()):
        run(parameters)
    assert output_leftovers(out_dir) == []


# --------------------------------------------------------------------------- 8. temporary outputs, GeoPackage layer


def test_temporary_outputs(qgis_app, event_scene, red_model):
    from qgis.core import QgsVectorLayer

    result = run(params(event_scene, red_model, "", OUTPUT_PROBABILITY="TEMPORARY_OUTPUT",
                        OUTPUT_MASK="TEMPORARY_OUTPUT", OUTPUT_POLYGONS="TEMPORARY_OUTPUT"))
    for key in ("OUTPUT_PROBABILITY", "OUTPUT_MASK"):
        assert isinstance(result[key], str) and os.path.isfile(result[key]), result[key]
        assert result[key].endswith(".tif")
    np.testing.assert_array_equal(read(result["OUTPUT_MASK"])[0], event_scene.expected_mask())
    polygons = result["OUTPUT_POLYGONS"]
    if isinstance(polygons, str):  # a path or a layer id, depending on the QGIS version
        polygons = QgsVectorLayer(polygons, "polygons", "ogr") if os.path.exists(polygons.split("|")[0]) else None
    assert isinstance(polygons, QgsVectorLayer) and polygons.isValid()
    assert polygons.featureCount() == len(event_scene.slides)
    assert polygons.crs().authid() == "EPSG:32633"


def test_polygons_to_a_geopackage_layer(qgis_app, event_scene, red_model, out_dir):
    from qgis.core import QgsVectorLayer, QgsWkbTypes

    destination = f"ogr:dbname='{out_dir / 'results.gpkg'}' table=\"slides\" (geom)"
    result = run(params(event_scene, red_model, out_dir, OUTPUT_POLYGONS=destination))
    layer = QgsVectorLayer(f"{out_dir / 'results.gpkg'}|layername=slides", "slides", "ogr")
    assert layer.isValid()
    assert layer.featureCount() == len(event_scene.slides)
    assert QgsWkbTypes.geometryType(layer.wkbType()) == QgsWkbTypes.PolygonGeometry
    assert [layer.fields().indexOf(name) >= 0 for name in POLYGON_FIELDS] == [True] * len(POLYGON_FIELDS)
    assert sum(f["area_m2"] for f in layer.getFeatures()) == pytest.approx(result["LANDSLIDE_AREA_M2"])
    assert all(f.geometry().isGeosValid() for f in layer.getFeatures())


def test_optional_outputs_can_be_skipped(qgis_app, event_scene, red_model, out_dir):
    result = run(params(event_scene, red_model, out_dir, OUTPUT_PROBABILITY=None, OUTPUT_POLYGONS=None))
    assert not result.get("OUTPUT_PROBABILITY")
    assert not result.get("OUTPUT_POLYGONS")
    assert output_leftovers(out_dir) == ["mask.tif"]
    np.testing.assert_array_equal(read(result["OUTPUT_MASK"])[0], event_scene.expected_mask())
    assert result["LANDSLIDE_COUNT"] == len(event_scene.slides)


# --------------------------------------------------------------------------- 9. styles


def test_loaded_outputs_get_the_plugin_styles(qgis_app, event_scene, red_model, out_dir):
    import processing
    from qgis.core import QgsProject

    project = QgsProject.instance()
    project.removeAllMapLayers()
    try:
        result = processing.runAndLoadResults(ALG_ID, params(event_scene, red_model, out_dir))
        layers = {os.path.normpath(layer.source().split("|")[0]): layer for layer in project.mapLayers().values()}
        mask = layers[os.path.normpath(result["OUTPUT_MASK"])]
        probability = layers[os.path.normpath(result["OUTPUT_PROBABILITY"])]
        polygons = layers[os.path.normpath(str(out_dir / "polygons.gpkg"))]
        assert mask.renderer().type() == "paletted"
        assert sorted(entry.value for entry in mask.renderer().classes()) == [0, 1]
        assert probability.renderer().type() == "singlebandpseudocolor"
        assert polygons.featureCount() == len(event_scene.slides)
        assert polygons.renderer() is not None
        # Read at a glance: outlines (no fill) on top, the probability under them, the mask loaded but switched off.
        symbol_layers = polygons.renderer().symbol().symbolLayers()
        assert [layer.layerType() for layer in symbol_layers] == ["SimpleLine", "SimpleLine"]
        assert [item.color.alpha() for item in probability.renderer().shader().rasterShaderFunction().colorRampItemList()
                if item.value <= 0.5] == [0, 0]
        root = project.layerTreeRoot()
        order = [node.layerId() for node in root.findLayers()]
        assert order == [polygons.id(), probability.id(), mask.id()]
        assert root.findLayer(polygons.id()).isVisible() and root.findLayer(probability.id()).isVisible()
        assert not root.findLayer(mask.id()).isVisible()
        assert [polygons.name(), probability.name(), mask.name()] == ["Landslides", "Landslide probability",
                                                                      "Landslide mask"]
    finally:
        project.removeAllMapLayers()


def test_load_order_leaves_other_layers_where_they_are(qgis_app, event_scene, red_model, out_dir):
    import processing
    from qgis.core import QgsProject, QgsRasterLayer

    project = QgsProject.instance()
    project.removeAllMapLayers()
    try:
        user_layer = QgsRasterLayer(event_scene.post, "my post image")
        project.addMapLayer(user_layer)
        renderer_before = user_layer.renderer().type()
        processing.runAndLoadResults(ALG_ID, params(event_scene, red_model, out_dir))
        names = [node.name() for node in project.layerTreeRoot().findLayers()]
        assert names == ["Landslides", "Landslide probability", "Landslide mask", "my post image"]
        assert user_layer.renderer().type() == renderer_before
        assert project.layerTreeRoot().findLayer(user_layer.id()).isVisible()
    finally:
        project.removeAllMapLayers()


def test_style_on_load_post_processor_on_fresh_layers(qgis_app, event_scene, red_model, out_dir):
    import importlib

    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsRasterLayer

    styling = importlib.import_module("landslide_mapper.algorithms.styling")
    result = run(params(event_scene, red_model, out_dir))
    for key, qml, renderer in (("OUTPUT_MASK", "mask.qml", "paletted"),
                               ("OUTPUT_PROBABILITY", "probability.qml", "singlebandpseudocolor")):
        layer = QgsRasterLayer(result[key], key)
        assert layer.isValid()
        assert layer.renderer().type() != renderer  # QGIS's own default: single-band grey
        styling.StyleOnLoad(qml).postProcessLayer(layer, QgsProcessingContext(), QgsProcessingFeedback())
        assert layer.renderer().type() == renderer


# --------------------------------------------------------------------------- 9b. the dialog: layout, defaults, bands


def test_dialog_layout_defaults_and_discoverability(qgis_app):
    from qgis.core import QgsApplication, QgsProcessingParameterDefinition

    algorithm = QgsApplication.processingRegistry().algorithmById(ALG_ID)
    definitions = {d.name(): d for d in algorithm.parameterDefinitions()}
    advanced = {name for name, d in definitions.items() if d.flags() & QgsProcessingParameterDefinition.FlagAdvanced}
    hidden = {name for name, d in definitions.items() if d.flags() & QgsProcessingParameterDefinition.FlagHidden}
    assert {"PRE_BANDS", "POST_BANDS", "DEM_BAND", "EXECUTION_PROVIDER", "WINDOW_SIZE", "THREADS", "MASK_RASTER",
            "MASK_BUFFER"} <= advanced
    assert hidden == {"PRE_RED_BAND", "PRE_GREEN_BAND", "PRE_BLUE_BAND", "POST_RED_BAND", "POST_GREEN_BAND",
                      "POST_BLUE_BAND"}
    visible = [name for name, d in definitions.items() if name not in advanced | hidden and not d.isDestination()]
    assert len(visible) <= 9 and "band" not in " ".join(visible).lower()
    assert definitions["PRE_BANDS"].defaultValue() == "1,2,3" == definitions["POST_BANDS"].defaultValue()
    # the default model's card values are the shown defaults
    from model.session import read_card

    shipped = read_card(algorithm.parameterDefinition("MODEL").defaultValue())
    assert shipped.threshold == pytest.approx(0.5)  # today's default model (a new one changes this line only)
    assert definitions["THRESHOLD"].defaultValue() == pytest.approx(shipped.threshold)
    assert definitions["MIN_AREA_M2"].defaultValue() == pytest.approx(100.0)
    assert definitions["MASK_BUFFER"].defaultValue() == 100.0
    assert "Image values" not in [d.description() for d in definitions.values()]
    # outputs first among destinations, polygons first
    destinations = [d.name() for d in algorithm.destinationParameterDefinitions()]
    assert destinations == ["OUTPUT_POLYGONS", "OUTPUT_PROBABILITY", "OUTPUT_MASK"]
    # discoverable
    assert "earthquake" in algorithm.shortDescription()
    assert {"earthquake", "onnx", "landslide", "sentinel-2"} <= set(algorithm.tags())
    assert algorithm.helpUrl().endswith("README.md#map-event-landslides") or \
        algorithm.helpUrl().endswith("#map-event-landslides")
    with open(os.path.join(os.path.dirname(DATA_DIR), "..", "README.md"), encoding="utf-8") as handle:
        assert "\n## Map event landslides\n" in handle.read()


def test_bands_in_one_field_per_image_in_any_order(qgis_app, event_scene, red_model, tmp_path, out_dir):
    post = gdal.Open(event_scene.post).ReadAsArray()
    shuffled = write_raster(str(tmp_path / "post_gbr.tif"), post[[1, 2, 0]], event_scene.geotransform,
                            event_scene.epsg)  # bands: green, blue, red
    result = run(params(event_scene, red_model, out_dir, POST_IMAGE=shuffled, POST_BANDS="3,1,2"))
    np.testing.assert_array_equal(read(result["OUTPUT_MASK"])[0], event_scene.expected_mask())
    wrong = run(params(event_scene, red_model, tmp_path, POST_IMAGE=shuffled,
                       OUTPUT_MASK=str(tmp_path / "wrong.tif"), OUTPUT_PROBABILITY=None, OUTPUT_POLYGONS=None))
    assert not np.array_equal(read(wrong["OUTPUT_MASK"])[0], event_scene.expected_mask())


@pytest.mark.parametrize("value, fragment", [("1,2", "give 3 band"), ("1,2,x", "not a list of band numbers"),
                                             ("1,2,9", "band 9 does not exist in post"), ("0,1,2", "from 1 up")])
def test_band_field_messages_name_the_parameter(qgis_app, event_scene, red_model, out_dir, value, fragment):
    message = _assert_refused(params(event_scene, red_model, out_dir, POST_BANDS=value), fragment, out_dir=out_dir)
    assert "(POST_BANDS)" in message


def test_shown_card_defaults_follow_another_model(qgis_app, red_model):
    from qgis.core import QgsApplication, QgsProcessingContext

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALG_ID)
    context = QgsProcessingContext()
    default = algorithm.parameterDefinition("MODEL").defaultValue()
    # the default model's shown value: used as given with the default model, the chosen model's card otherwise
    from model.session import read_card

    shown = read_card(default).threshold
    assert algorithm._card_value({"THRESHOLD": shown}, context, "THRESHOLD", default, 0) == pytest.approx(shown)
    assert algorithm._card_value({"THRESHOLD": shown}, context, "THRESHOLD", red_model, 0) is None
    assert algorithm._card_value({"THRESHOLD": 0.6}, context, "THRESHOLD", red_model, 0) == pytest.approx(0.6)
    assert algorithm._card_value({}, context, "THRESHOLD", red_model, 0) is None


def test_execution_provider_cpu_runs_and_a_missing_gpu_is_refused_naming_the_parameter(
        qgis_app, event_scene, red_model, out_dir, tmp_path):
    import onnxruntime

    for choice in (0, 1):  # automatic, CPU: here both run on the CPU
        result = run(params(event_scene, red_model, out_dir, EXECUTION_PROVIDER=choice))
        np.testing.assert_array_equal(read(result["OUTPUT_MASK"])[0], event_scene.expected_mask())
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        refused = tmp_path / "refused"
        refused.mkdir()
        message = _assert_refused(params(event_scene, red_model, refused, EXECUTION_PROVIDER=2),
                                  "CUDAExecutionProvider", out_dir=refused)
        assert "(EXECUTION_PROVIDER)" in message


def test_post_processors_of_a_long_batch_all_survive_until_they_run(qgis_app, event_scene):
    import gc
    import importlib

    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsRasterLayer

    styling = importlib.import_module("landslide_mapper.algorithms.styling")
    context = QgsProcessingContext()
    ids = [f"output_{index}.tif" for index in range(40)]  # more outputs than any fixed-size cache would hold
    for layer_id in ids:
        context.addLayerToLoadOnCompletion(layer_id, QgsProcessingContext.LayerDetails(layer_id, None, "OUTPUT"))
        styling.apply_style_on_load(context, layer_id, "mask.qml")
    gc.collect()
    processors = [context.layerToLoadOnCompletionDetails(layer_id).postProcessor() for layer_id in ids]
    assert all(isinstance(processor, styling.StyleOnLoad) for processor in processors)  # the Python side is alive
    layer = QgsRasterLayer(event_scene.pre, "first")
    processors[0].postProcessLayer(layer, context, QgsProcessingFeedback())
    assert layer.renderer().type() == "paletted"
    assert processors[0] not in styling._KEEP_ALIVE and processors[-1] in styling._KEEP_ALIVE  # released once run


# --------------------------------------------------------------------------- 10. graphical modeler


def _split_bands(path, folder, prefix):
    """Write each band of ``path`` to its own single-band GeoTIFF; returns the paths (band order)."""
    dataset = gdal.Open(path)
    paths = []
    for band in range(1, dataset.RasterCount + 1):
        out = os.path.join(folder, f"{prefix}_b{band}.tif")
        gdal.Translate(out, dataset, bandList=[band])
        paths.append(out)
    return paths


def test_model3_builds_vrts_then_maps(qgis_app, event_scene, red_model, tmp_path, out_dir):
    import processing
    from qgis.core import QgsProcessingModelAlgorithm

    model_file = os.path.join(DATA_DIR, "vrt_then_map.model3")
    assert os.path.isfile(model_file)
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(model_file)
    assert model.validate()[0], model.validate()[1]
    names = {p.name() for p in model.parameterDefinitions()}
    assert {"pre_red", "pre_green", "pre_blue", "post_red", "post_green", "post_blue", "dem", "onnx_model"} <= names

    bands = tmp_path / "bands"
    bands.mkdir()
    pre = _split_bands(event_scene.pre, str(bands), "pre")
    post = _split_bands(event_scene.post, str(bands), "post")
    model_params = {
        "pre_red": pre[0], "pre_green": pre[1], "pre_blue": pre[2],
        "post_red": post[0], "post_green": post[1], "post_blue": post[2],
        "dem": event_scene.dem, "onnx_model": red_model,
    }
    mask_output = [name for name in (o.name() for o in model.outputDefinitions()) if "mask" in name.lower()]
    assert len(mask_output) == 1, [o.name() for o in model.outputDefinitions()]
    model_params[mask_output[0]] = str(out_dir / "model_mask.tif")
    result = processing.run(model, model_params)

    direct = run(params(event_scene, red_model, tmp_path))
    model_mask = read(result[mask_output[0]])[0]
    np.testing.assert_array_equal(model_mask, read(direct["OUTPUT_MASK"])[0])
    np.testing.assert_array_equal(model_mask, event_scene.expected_mask())

    # The VRT's band order matters: swapping red and green of the post image changes the map.
    swapped = dict(model_params, post_red=post[1], post_green=post[0])
    swapped[mask_output[0]] = str(out_dir / "swapped_mask.tif")
    swapped_mask = read(processing.run(model, swapped)[mask_output[0]])[0]
    assert not np.array_equal(swapped_mask, event_scene.expected_mask())
