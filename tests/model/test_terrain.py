"""Terrain equals gdal.DEMProcessing (gdaldem) on the same grid."""

import numpy as np
import pytest
from osgeo import gdal

from model.card import TerrainRecipe
from model.terrain import terrain_features
from tests.helpers.scenes import srs_wkt

gdal.UseExceptions()


def dem_dataset(dem, cell_x=10.0, cell_y=12.0, nodata=-9999.0):
    dataset = gdal.GetDriverByName("MEM").Create("", dem.shape[1], dem.shape[0], 1, gdal.GDT_Float32)
    dataset.SetGeoTransform((500000.0, cell_x, 0.0, 4000000.0, 0.0, -cell_y))
    dataset.SetProjection(srs_wkt(32654))
    band = dataset.GetRasterBand(1)
    band.SetNoDataValue(nodata)
    band.WriteArray(np.nan_to_num(dem, nan=nodata))
    return dataset


@pytest.fixture()
def rough_dem():
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:60, 0:80]
    return (300 * np.sin(x / 9.0) * np.cos(y / 7.0) + 4 * x + rng.normal(0, 5, x.shape)).astype(np.float32)


@pytest.mark.parametrize("gradient, gdal_alg", [("Horn", "Horn"), ("ZevenbergenThorne", "ZevenbergenThorne")])
def test_interior_equals_gdaldem_defaults(rough_dem, gradient, gdal_alg):
    dataset = dem_dataset(rough_dem)
    hillshade_ref = gdal.DEMProcessing("", dataset, "hillshade", format="MEM", alg=gdal_alg).ReadAsArray()
    slope_ref = gdal.DEMProcessing("", dataset, "slope", format="MEM", alg=gdal_alg).ReadAsArray()
    hillshade, slope = terrain_features(rough_dem, 10.0, 12.0, TerrainRecipe(gradient=gradient, fill_missing_neighbours=False))
    assert hillshade.shape == (58, 78)
    np.testing.assert_array_equal(hillshade, hillshade_ref[1:-1, 1:-1])
    np.testing.assert_allclose(slope, slope_ref[1:-1, 1:-1], atol=2e-4)
    assert slope.max() > 20  # the test DEM is steep enough to matter


def test_nodata_holes_follow_gdaldem_compute_edges(rough_dem):
    dem = rough_dem.copy()
    dem[20:24, 30:36] = np.nan
    dataset = dem_dataset(dem)
    hillshade_ref = gdal.DEMProcessing("", dataset, "hillshade", format="MEM", computeEdges=True).ReadAsArray()
    slope_ref = gdal.DEMProcessing("", dataset, "slope", format="MEM", computeEdges=True).ReadAsArray()
    hillshade, slope = terrain_features(np.pad(dem, 1, constant_values=np.nan), 10.0, 12.0, TerrainRecipe())
    valid = np.isfinite(dem)
    interior = np.zeros_like(valid)
    interior[1:-1, 1:-1] = True  # gdaldem extrapolates at the raster's own edge instead
    np.testing.assert_array_equal(hillshade[valid & interior], hillshade_ref[valid & interior])
    np.testing.assert_allclose(slope[valid & interior], slope_ref[valid & interior], atol=2e-4)
    assert np.isnan(hillshade[~valid]).all() and np.isnan(slope[~valid]).all()
    assert np.isfinite(hillshade[valid]).all()  # edges of the DEM get terrain too


def test_without_filling_a_missing_neighbour_gives_nan(rough_dem):
    dem = rough_dem.copy()
    dem[10, 10] = np.nan
    hillshade, slope = terrain_features(dem, 10.0, 10.0, TerrainRecipe(fill_missing_neighbours=False))
    assert np.isnan(hillshade[8:11, 8:11]).all() and np.isnan(slope[8:11, 8:11]).all()
    assert np.isfinite(hillshade[12:, 12:]).all()


def test_flat_dem_is_lit_by_the_altitude_only():
    hillshade, slope = terrain_features(np.full((5, 5), 100.0), 10.0, 10.0, TerrainRecipe())
    assert (slope == 0).all()
    assert (hillshade == np.floor(1 + 254 * np.sin(np.radians(45)) + 0.5)).all()


def test_plane_slope_is_exact():
    y, x = np.mgrid[0:6, 0:6]
    dem = 10.0 * x  # 10 m rise per 10 m pixel eastwards: 45 degrees
    _, slope = terrain_features(dem.astype(float), 10.0, 10.0, TerrainRecipe())
    np.testing.assert_allclose(slope, 45.0, atol=1e-5)


def test_window_without_halo_is_refused():
    with pytest.raises(ValueError, match="halo"):
        terrain_features(np.zeros((2, 5)), 10.0, 10.0, TerrainRecipe())
