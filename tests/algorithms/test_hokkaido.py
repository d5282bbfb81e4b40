"""Real, messy inputs: the 2018 Hokkaido Eastern Iburi crop (see its README.md).

Separate Sentinel-2 band files (UInt16 reflectance, EPSG:4326, nodata 0 along
the pre image's north edge) stacked into VRTs, a 30 m DSM on its own grid
(Int16, nodata -32768). There is no landslide inventory, so these tests check
that the run is well formed, not how good the map is; the tiny red-difference
model stands in for a trained one.
"""

import os

import numpy as np
import pytest
from osgeo import gdal, osr

from tests.conftest import HOKKAIDO_DIR

pytestmark = [
    pytest.mark.qgis,
    pytest.mark.skipif(not os.path.isdir(HOKKAIDO_DIR), reason=f"{HOKKAIDO_DIR} is not available"),
]

ALG_ID = "landslidemapper:mapeventlandslides"
RGB_BANDS = ("B4", "B3", "B2")  # red, green, blue
RADIOMETRY_AUTO, RADIOMETRY_S2_L2A = 0, 2

gdal.UseExceptions()


def _stack(when, folder):
    """An R, G, B VRT of the pre or post image's band files."""
    path = os.path.join(str(folder), f"{when}.vrt")
    files = [os.path.join(HOKKAIDO_DIR, f"{when}_S2_{band}.tif") for band in RGB_BANDS]
    gdal.BuildVRT(path, files, separate=True).FlushCache()
    return path


def _srs(epsg):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _footprint(path, target):
    """Bounds (x_min, y_min, x_max, y_max) of a raster in ``target``, edges densified."""
    dataset = gdal.Open(path)
    gt = dataset.GetGeoTransform()
    source = osr.SpatialReference(wkt=dataset.GetProjection())
    source.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x0, y1 = gt[0], gt[3]
    x1, y0 = x0 + gt[1] * dataset.RasterXSize, y1 + gt[5] * dataset.RasterYSize
    return osr.CoordinateTransformation(source, target).TransformBounds(x0, y0, x1, y1, 21)


def _shifted(array, fill):
    """The 8 one-pixel shifts of a 2-D array (outside filled with ``fill``)."""
    padded = np.pad(array, 1, constant_values=fill)
    rows, cols = array.shape
    return [padded[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
            for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


def _erode(array):
    return np.logical_and.reduce([array] + _shifted(array, True))


@pytest.fixture(scope="module")
def hokkaido_run(qgis_app, tmp_path_factory):
    """One run per radiometry setting, shared by the tests of this module."""
    import processing

    from tests.helpers.tiny_models import red_difference_model

    folder = tmp_path_factory.mktemp("hokkaido")
    model = red_difference_model(str(folder / "red_difference.onnx"))
    pre, post = _stack("pre", folder), _stack("post", folder)
    runs = {}
    for radiometry in (RADIOMETRY_AUTO, RADIOMETRY_S2_L2A):
        out = folder / f"radiometry_{radiometry}"
        out.mkdir()
        runs[radiometry] = processing.run(ALG_ID, {
            "PRE_IMAGE": pre, "POST_IMAGE": post, "DEM": os.path.join(HOKKAIDO_DIR, "dsm_AW3D30.tif"),
            "MODEL": model, "RADIOMETRY": radiometry,
            "OUTPUT_PROBABILITY": str(out / "probability.tif"), "OUTPUT_MASK": str(out / "mask.tif"),
            "OUTPUT_POLYGONS": str(out / "polygons.gpkg"),
        })
    return {"pre": pre, "post": post, "runs": runs}


def test_stacks_are_rgb_reflectance(hokkaido_run):
    for key in ("pre", "post"):
        dataset = gdal.Open(hokkaido_run[key])
        assert dataset.RasterCount == 3
        assert dataset.GetRasterBand(1).DataType == gdal.GDT_UInt16
        assert dataset.GetRasterBand(1).GetNoDataValue() == 0
        red = gdal.Open(os.path.join(HOKKAIDO_DIR, f"{key}_S2_B4.tif")).ReadAsArray()
        np.testing.assert_array_equal(dataset.GetRasterBand(1).ReadAsArray(), red)


def test_outputs_on_a_10m_utm_grid_inside_the_inputs(hokkaido_run):
    result = hokkaido_run["runs"][RADIOMETRY_S2_L2A]
    assert result["GRID_CRS"] == "EPSG:32654"
    utm = _srs(32654)
    footprints = [_footprint(path, utm) for path in
                  (hokkaido_run["pre"], hokkaido_run["post"], os.path.join(HOKKAIDO_DIR, "dsm_AW3D30.tif"))]
    common = (max(f[0] for f in footprints), max(f[1] for f in footprints),
              min(f[2] for f in footprints), min(f[3] for f in footprints))
    for key in ("OUTPUT_MASK", "OUTPUT_PROBABILITY"):
        dataset = gdal.Open(result[key])
        srs = osr.SpatialReference(wkt=dataset.GetProjection())
        srs.AutoIdentifyEPSG()
        assert srs.GetAuthorityCode(None) == "32654"
        x0, dx, _, y1, _, dy = dataset.GetGeoTransform()
        assert (dx, dy) == (10.0, -10.0)
        x1, y0 = x0 + dx * dataset.RasterXSize, y1 + dy * dataset.RasterYSize
        assert common[0] <= x0 < x1 <= common[2] and common[1] <= y0 < y1 <= common[3]
        # Snapped inward to the 10 m lattice: less than a pixel lost on each side.
        assert x0 - common[0] < 10 and common[2] - x1 < 10 and y0 - common[1] < 10 and common[3] - y1 < 10


def test_nodata_follows_the_pre_image(hokkaido_run, tmp_path):
    result = hokkaido_run["runs"][RADIOMETRY_S2_L2A]
    mask_ds = gdal.Open(result["OUTPUT_MASK"])
    mask = mask_ds.GetRasterBand(1).ReadAsArray()

    # The pre image's validity (all three bands non-zero) warped onto the output grid, nearest.
    pre = gdal.Open(hokkaido_run["pre"]).ReadAsArray()
    valid = (pre != 0).all(axis=0).astype(np.uint8) + 1  # 2 = valid, 1 = nodata; 0 = outside the image
    assert (valid == 1).any()
    pre_ds = gdal.Open(hokkaido_run["pre"])
    validity = gdal.GetDriverByName("MEM").Create("", pre_ds.RasterXSize, pre_ds.RasterYSize, 1, gdal.GDT_Byte)
    validity.SetGeoTransform(pre_ds.GetGeoTransform())
    validity.SetProjection(pre_ds.GetProjection())
    validity.GetRasterBand(1).WriteArray(valid)
    x0, dx, _, y1, _, dy = mask_ds.GetGeoTransform()
    warped = gdal.Warp("", validity, format="MEM", dstSRS=mask_ds.GetProjection(), resampleAlg="near",
                       outputBounds=(x0, y1 + dy * mask_ds.RasterYSize, x0 + dx * mask_ds.RasterXSize, y1),
                       width=mask_ds.RasterXSize, height=mask_ds.RasterYSize).ReadAsArray()
    pre_nodata = warped == 1
    pre_valid = warped == 2
    assert pre_nodata.any()

    # Nodata wherever the pre image has nodata, but for a 1 px border (bilinear edge effects)...
    assert (mask[_erode(pre_nodata)] == 255).all()
    # ... and data nearly everywhere else.
    inner_valid = _erode(pre_valid)
    assert (mask[inner_valid] != 255).mean() > 0.99
    assert (mask != 255).mean() > 0.9


def test_probability_and_mask_are_consistent(hokkaido_run):
    result = hokkaido_run["runs"][RADIOMETRY_S2_L2A]
    mask = gdal.Open(result["OUTPUT_MASK"]).ReadAsArray()
    probability = gdal.Open(result["OUTPUT_PROBABILITY"]).ReadAsArray()
    valid = mask != 255
    assert set(np.unique(mask)) <= {0, 1, 255}
    np.testing.assert_array_equal(probability[~valid], -1.0)
    assert probability[valid].min() >= 0.0 and probability[valid].max() <= 1.0
    np.testing.assert_array_equal(mask[valid] == 1, probability[valid] >= 0.5)  # the tiny card's threshold
    assert result["WINDOWS_RUN"] >= 1 and result["WINDOWS_SKIPPED"] == 0
    assert result["LANDSLIDE_AREA_M2"] == pytest.approx(100.0 * (mask == 1).sum())  # min area 0 in the tiny card


def test_auto_radiometry_reads_uint16_as_reflectance(hokkaido_run):
    auto, explicit = hokkaido_run["runs"][RADIOMETRY_AUTO], hokkaido_run["runs"][RADIOMETRY_S2_L2A]
    for key in ("OUTPUT_MASK", "OUTPUT_PROBABILITY"):
        np.testing.assert_array_equal(gdal.Open(auto[key]).ReadAsArray(), gdal.Open(explicit[key]).ReadAsArray())
    assert auto["LANDSLIDE_COUNT"] == explicit["LANDSLIDE_COUNT"]
