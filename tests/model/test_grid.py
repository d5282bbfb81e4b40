"""The target grid and reading inputs onto it by georeference."""

import numpy as np
import pytest
from osgeo import gdal, osr

from model.errors import GridError, InputDataError
from model.grid import Extent, Grid, RasterInput, WindowReader, build_grid, choose_metric_srs, ground_scale, plan_grid
from tests.helpers.scenes import srs_wkt, write_raster

gdal.UseExceptions()


def linear(x, y):
    """A field bilinear resampling reproduces exactly."""
    return 0.01 * (x - 500000.0) + 0.02 * (5200000.0 - y) + 100.0


def linear_raster(path, epsg, x0, y0, gsd, cols, rows, nodata=None):
    xs = x0 + gsd * (np.arange(cols) + 0.5)
    ys = y0 - gsd * (np.arange(rows) + 0.5)
    values = linear(xs[None, :], ys[:, None]).astype(np.float32)
    return write_raster(str(path), values, (x0, gsd, 0, y0, 0, -gsd), epsg, gdal.GDT_Float32, nodata)


def epsg_of(wkt):
    srs = osr.SpatialReference(wkt=wkt)
    srs.AutoIdentifyEPSG()
    return int(srs.GetAuthorityCode(None))


def test_metric_post_image_keeps_its_crs(tmp_path):
    path = linear_raster(tmp_path / "a.tif", 32633, 500000, 5200000, 10, 20, 20)
    grid, note = plan_grid([("A", path)], path, 10.0)
    assert epsg_of(grid.crs_wkt) == 32633 and note == ""


@pytest.mark.parametrize("epsg, lon, lat, expected", [(4326, 142.0, 42.7, 32654), (4326, -70.6, -33.4, 32719), (3857, None, None, 32633)])
def test_non_metric_post_image_gets_the_utm_zone_of_its_centre(tmp_path, epsg, lon, lat, expected):
    if epsg == 4326:
        path = write_raster(str(tmp_path / "g.tif"), np.zeros((10, 10), np.uint8), (lon - 0.05, 0.01, 0, lat + 0.05, 0, -0.01), 4326)
    else:  # Web Mercator is in metres but 1.38 times too long at 43.6 N: not true ground metres
        path = write_raster(str(tmp_path / "g.tif"), np.zeros((10, 10), np.uint8), (1669792.0, 10, 0, 5621521.0, 0, -10), 3857)
    grid, note = plan_grid([("the post image", path)], path, 1.0)
    assert epsg_of(grid.crs_wkt) == expected
    assert f"The grid is in EPSG:{expected}" in note
    assert ("geographic" in note) if epsg == 4326 else ("one EPSG:3857 metre is 0.70" in note)


def test_chooser_keeps_a_true_scale_crs_and_refuses_a_distant_utm_zone():
    utm33 = osr.SpatialReference()
    utm33.ImportFromEPSG(32633)
    utm33.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    srs, note = choose_metric_srs([None, utm33], (15.0, 46.0, 15.1, 46.1))  # the zone's central meridian
    assert epsg_of(srs.ExportToWkt()) == 32633 and note == ""
    # 20 degrees east of the central meridian at the equator, UTM 33 stretches distances 1.06 times
    srs, note = choose_metric_srs([utm33], (35.0, 0.0, 35.1, 0.1))
    assert epsg_of(srs.ExportToWkt()) == 32636  # 35.05 E lies in zone 36 (30-36 E)
    assert "EPSG:32633 is not in true ground metres (one EPSG:32633 metre is 0.939 to 0.940 m" in note


def test_ground_scale_of_web_mercator_is_one_over_cos_latitude():
    mercator = osr.SpatialReference()
    mercator.ImportFromEPSG(3857)
    mercator.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    y = 4259000.0  # about 35.7 N, the latitude of the sample event
    lat = np.degrees(2 * np.arctan(np.exp(y / 6378137.0)) - np.pi / 2)
    along_x, along_y, area = ground_scale(mercator, np.array([15e6]), np.array([y]))
    # spherical Mercator on the WGS 84 ellipsoid: close to cos(lat), to the ellipsoid's 0.5 %
    assert along_x[0] == pytest.approx(np.cos(np.radians(lat)), rel=5e-3)
    assert area[0] == pytest.approx(along_x[0] * along_y[0], rel=1e-3)


def test_grid_is_the_snapped_intersection(tmp_path):
    a = linear_raster(tmp_path / "a.tif", 32633, 500003, 5200000, 10, 50, 40)
    b = linear_raster(tmp_path / "b.tif", 32633, 500105, 5199895, 30, 20, 20)
    grid = build_grid([("A", a), ("B", b)], a, 10.0)
    # A: x 500003..500503, y 5199600..5200000; B: x 500105..500705, y 5199295..5199895
    assert (grid.x_min, grid.y_max, grid.width_px, grid.height_px) == (500110.0, 5199890.0, 39, 29)
    assert grid.geotransform == (500110.0, 10.0, 0.0, 5199890.0, 0.0, -10.0)


def test_extent_in_another_crs_clips_the_grid(tmp_path):
    a = linear_raster(tmp_path / "a.tif", 32633, 500000, 5200000, 10, 100, 100)
    full = build_grid([("A", a)], a, 10.0)
    to_wgs = osr.CoordinateTransformation(osr.SpatialReference(wkt=full.crs_wkt), _wgs84())
    lon0, lat0, _ = to_wgs.TransformPoint(500200.0, 5199500.0)
    lon1, lat1, _ = to_wgs.TransformPoint(500500.0, 5199800.0)
    grid = build_grid([("A", a)], a, 10.0, Extent(lon0, lat0, lon1, lat1, "EPSG:4326"))
    assert 28 <= grid.width_px <= 32 and 28 <= grid.height_px <= 32
    assert grid.x_min >= 500190 and grid.y_max <= 5199810


def _wgs84():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def test_disjoint_inputs_name_the_culprit(tmp_path):
    a = linear_raster(tmp_path / "a.tif", 32633, 500000, 5200000, 10, 20, 20)
    b = linear_raster(tmp_path / "b.tif", 32633, 600000, 5200000, 10, 20, 20)
    with pytest.raises(GridError, match="do not overlap: the DEM lies outside"):
        build_grid([("the post image", a), ("the DEM", b)], a, 10.0)


def test_extent_outside_is_refused(tmp_path):
    a = linear_raster(tmp_path / "a.tif", 32633, 500000, 5200000, 10, 20, 20)
    with pytest.raises(GridError, match="extent does not overlap"):
        build_grid([("A", a)], a, 10.0, Extent(0, 0, 10, 10, "EPSG:32633"))


def test_raster_without_crs_is_refused(tmp_path):
    a = write_raster(str(tmp_path / "nocrs.tif"), np.zeros((5, 5), np.uint8), (0, 1, 0, 0, 0, -1), None)
    with pytest.raises(InputDataError, match="no coordinate reference system"):
        build_grid([("A", a)], a, 1.0)


def test_band_out_of_range_is_refused(tmp_path):
    a = linear_raster(tmp_path / "a.tif", 32633, 500000, 5200000, 10, 20, 20)
    grid = Grid.square(srs_wkt(32633), 500000, 5200000, 10.0, 20, 20)
    with pytest.raises(InputDataError, match="Band 4 does not exist"):
        WindowReader(RasterInput(a, (4,)), grid)


def test_coarser_unaligned_raster_is_read_by_georeference(tmp_path):
    coarse = linear_raster(tmp_path / "c.tif", 32633, 499977, 5200013, 30, 30, 30)
    grid = Grid.square(srs_wkt(32633), 500100.0, 5199900.0, 10.0, 40, 30)
    values = WindowReader(RasterInput(coarse), grid).read(0, 0, 30, 40)[0]
    xs = 500100.0 + 10 * (np.arange(40) + 0.5)
    ys = 5199900.0 - 10 * (np.arange(30) + 0.5)
    np.testing.assert_allclose(values, linear(xs[None, :], ys[:, None]), atol=2e-3)


def test_geographic_raster_is_read_by_georeference(tmp_path):
    grid = Grid.square(srs_wkt(32633), 500100.0, 5199900.0, 10.0, 40, 30)
    utm = osr.SpatialReference(wkt=grid.crs_wkt)
    utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_utm = osr.CoordinateTransformation(_wgs84(), utm)
    corner_lon, corner_lat, _ = osr.CoordinateTransformation(utm, _wgs84()).TransformPoint(500100.0, 5199900.0)
    lon0, lat1 = corner_lon - 0.002, corner_lat + 0.001
    step = 0.00005
    lons = lon0 + step * (np.arange(220) + 0.5)
    lats = lat1 - step * (np.arange(120) + 0.5)
    values = np.empty((120, 220), np.float32)
    for r, lat in enumerate(lats):
        pts = np.array(to_utm.TransformPoints([(lon, lat) for lon in lons]))
        values[r] = linear(pts[:, 0], pts[:, 1])
    geo = write_raster(str(tmp_path / "geo.tif"), values, (lon0, step, 0, lat1, 0, -step), 4326, gdal.GDT_Float32)
    read = WindowReader(RasterInput(geo), grid).read(0, 0, 30, 40)[0]
    xs = 500100.0 + 10 * (np.arange(40) + 0.5)
    ys = 5199900.0 - 10 * (np.arange(30) + 0.5)
    expected = linear(xs[None, :], ys[:, None])
    assert np.isfinite(read).all()
    np.testing.assert_allclose(read, expected, atol=0.02)  # field spans ~10 units; < 0.2 % error


def test_nodata_and_no_coverage_read_as_nan(tmp_path):
    values = np.full((20, 20), 7.0, np.float32)
    values[5:8, 5:8] = -1
    path = write_raster(str(tmp_path / "n.tif"), values, (500000, 10, 0, 5200000, 0, -10), 32633, gdal.GDT_Float32, nodata=-1)
    grid = Grid.square(srs_wkt(32633), 500000.0, 5200000.0, 10.0, 20, 20)
    read = WindowReader(RasterInput(path), grid, resampling="near").read(-2, -2, 24, 24)[0]
    assert np.isnan(read[:2]).all() and np.isnan(read[:, :2]).all()  # beyond the raster
    assert np.isnan(read[7:10, 7:10]).all()  # its nodata
    assert (read[2:7, 2:22] == 7).all()
