"""The one vector reader (model/vectors.py): sources, repair rules, counts, burning; the plugin's masks use it."""

import numpy as np
import pytest
from osgeo import ogr, osr

from model.errors import InputDataError
from model.grid import Grid
from model.masks import PolygonMask
from model.vectors import VectorInput, read_polygons, vector_source
from tests.helpers.scenes import srs_wkt, write_raster
from tests.helpers.vector_files import write_layers

EPSG = 32633
X0, Y1, GSD = 500000.0, 5200000.0, 10.0
GRID = Grid.square(srs_wkt(EPSG), X0, Y1, GSD, 40, 30)  # 40 columns, 30 rows


def box(row, col, height, width):
    x0, y1 = X0 + col * GSD, Y1 - row * GSD
    x1, y0 = x0 + width * GSD, y1 - height * GSD
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def bow_tie(row, col, size):
    x0, y1 = X0 + col * GSD, Y1 - row * GSD
    x1, y0 = x0 + size * GSD, y1 - size * GSD
    return f"POLYGON(({x0} {y1},{x1} {y0},{x1} {y1},{x0} {y0},{x0} {y1}))"


def write_features(path, wkts, epsg=EPSG, layer="features"):
    """Features of any geometry type (empty string: a feature without geometry)."""
    driver = ogr.GetDriverByName("GPKG")
    source = driver.CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    out = source.CreateLayer(layer, srs=srs, geom_type=ogr.wkbUnknown)
    for wkt in wkts:
        feature = ogr.Feature(out.GetLayerDefn())
        if wkt:
            feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        out.CreateFeature(feature)
    source = None
    return path


def test_a_source_is_a_path_or_a_path_with_a_layer():
    assert VectorInput.parse("a.gpkg") == VectorInput("a.gpkg")
    assert VectorInput.parse("dir/a.gpkg|layername=clouds") == VectorInput("dir/a.gpkg", "clouds")
    assert VectorInput.parse("a.gpkg|layerid=0") == VectorInput("a.gpkg")


def test_vector_or_raster_is_told_by_opening_not_by_the_extension(tmp_path):
    gpkg = write_layers(str(tmp_path / "areas.gpkg"), {"train": [box(0, 0, 5, 5)], "clouds": [box(5, 5, 5, 5)]}, EPSG)
    assert vector_source(gpkg + "|layername=clouds") == VectorInput(gpkg, "clouds")
    assert vector_source(gpkg) == VectorInput(gpkg)
    raster = write_raster(str(tmp_path / "clouds.gpkg.tif"), np.zeros((4, 4), np.uint8), (X0, GSD, 0, Y1, 0, -GSD), EPSG)
    assert vector_source(raster) is None
    misnamed = write_layers(str(tmp_path / "clouds.dat"), {"clouds": [box(0, 0, 5, 5)]}, EPSG, "GeoJSON")
    assert vector_source(misnamed) == VectorInput(misnamed)


def test_repair_rules_and_counts(tmp_path):
    path = write_features(str(tmp_path / "mixed.gpkg"), [
        box(2, 2, 4, 4),                                               # kept
        bow_tie(10, 10, 10),                                           # invalid: repaired, both lobes kept
        "",                                                            # no geometry: skipped
        f"LINESTRING({X0} {Y1},{X0 + 100} {Y1 - 100})",                # no polygon part: skipped
        f"GEOMETRYCOLLECTION({box(2, 30, 3, 3)},POINT({X0} {Y1}))",    # the polygon part is kept
        box(0, 500, 5, 5),                                             # 5 km east of the grid: outside
    ])
    polygons = read_polygons(VectorInput(path), GRID, "inventory")
    assert (polygons.total, polygons.used, polygons.outside, polygons.repaired, polygons.skipped) == (4, 3, 1, 1, 2)
    burnt = polygons.burn(GRID, 0, 0, 30, 40)
    assert burnt[2:6, 2:6].all() and burnt[2:5, 30:33].all()
    lobes = burnt[10:20, 10:20]
    assert lobes[:, :5].sum() > 15 and lobes[:, 5:].sum() > 15  # Buffer(0) alone would keep one triangle
    assert int(burnt.sum()) == 16 + 9 + int(lobes.sum())


def test_all_touched_burns_every_pixel_a_polygon_touches(tmp_path):
    x0, y1 = X0 + 3 * GSD + 1, Y1 - 4 * GSD - 1  # a 3 m square in the corner of pixel (4, 3), off its centre
    corner = f"POLYGON(({x0} {y1 - 3},{x0 + 3} {y1 - 3},{x0 + 3} {y1},{x0} {y1},{x0} {y1 - 3}))"
    polygons = read_polygons(VectorInput(write_features(str(tmp_path / "corner.gpkg"), [corner])), GRID, "area")
    assert not polygons.burn(GRID, 0, 0, 30, 40).any()
    touched = polygons.burn(GRID, 0, 0, 30, 40, all_touched=True)
    assert touched[4, 3] and int(touched.sum()) == 1


def test_reprojected_polygons_burn_where_they_lie(tmp_path):
    source = osr.SpatialReference()
    source.ImportFromEPSG(EPSG)
    source.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    target = osr.SpatialReference()
    target.ImportFromEPSG(4326)
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    geometry = ogr.CreateGeometryFromWkt(box(5, 5, 10, 10))
    geometry.Transform(osr.CoordinateTransformation(source, target))
    path = write_features(str(tmp_path / "wgs84.gpkg"), [geometry.ExportToWkt()], epsg=4326)
    burnt = read_polygons(VectorInput(path), GRID, "area").burn(GRID, 0, 0, 30, 40)
    assert abs(int(burnt.sum()) - 100) <= 4 and burnt[6:14, 6:14].all()


def test_a_layer_without_crs_is_refused(tmp_path):
    driver = ogr.GetDriverByName("GPKG")
    source = driver.CreateDataSource(str(tmp_path / "nocrs.gpkg"))
    source.CreateLayer("x", geom_type=ogr.wkbPolygon)
    source = None
    with pytest.raises(InputDataError, match="no coordinate reference system"):
        read_polygons(VectorInput(str(tmp_path / "nocrs.gpkg")), GRID, "cloud mask")


def test_the_plugin_mask_repairs_as_the_trainer_does(tmp_path):
    path = write_features(str(tmp_path / "clouds.gpkg"), [bow_tie(10, 10, 10), f"LINESTRING({X0} {Y1},{X0 + 300} {Y1})"])
    mask = PolygonMask(VectorInput(path), GRID, "cloud mask")
    expected = read_polygons(VectorInput(path), GRID, "inventory").burn(GRID, 0, 0, 30, 40)
    np.testing.assert_array_equal(mask.read(0, 0, 30, 40), expected)
    assert not mask.read(0, 0, 1, 40).any()  # the line is not a mask
    assert mask.count == 1
