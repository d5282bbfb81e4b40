"""PNG overviews: the image decimated and stretched, the polygons outlined in place."""

import os

import numpy as np
import pytest
from osgeo import gdal

from model.errors import InputDataError
from model.grid import RasterInput
from model.masks import VectorInput
from model.overview import OUTLINE_RGB, write_overview_png
from tests.helpers.scenes import write_polygons, write_raster

GT = (500000.0, 10.0, 0.0, 5200000.0, 0.0, -10.0)


def _image(tmp_path, size=400):
    rng = np.random.default_rng(0)
    values = rng.integers(500, 1500, (3, size, size)).astype(np.uint16)
    return write_raster(str(tmp_path / "post.tif"), values, GT, 32633, gdal.GDT_UInt16, nodata=0)


def test_outlines_are_drawn_where_the_polygon_lies(tmp_path):
    image = _image(tmp_path)
    # a 1 x 1 km square, columns 100..200 and rows 60..160 of the image, given in WGS 84 to force a reprojection
    square = write_polygons(str(tmp_path / "square.gpkg"),
                            ["POLYGON((501000 5199400, 502000 5199400, 502000 5198400, 501000 5198400, "
                             "501000 5199400))"], 32633)
    wgs84 = str(tmp_path / "square_4326.gpkg")
    gdal.VectorTranslate(wgs84, square, dstSRS="EPSG:4326", format="GPKG")
    out = write_overview_png(RasterInput(image, (1, 2, 3)), str(tmp_path / "overview.png"), VectorInput(wgs84),
                             max_px=200)
    assert os.listdir(tmp_path).count("overview.png") == 1 and not any(".partial" in n for n in os.listdir(tmp_path))
    png = gdal.Open(out).ReadAsArray()
    assert png.shape == (3, 200, 200)
    outline = np.all(png == np.array(OUTLINE_RGB)[:, None, None], axis=0)
    rows, cols = np.nonzero(outline)
    # at half size: rows 30..80, columns 50..100
    assert rows.min() == pytest.approx(30, abs=1) and rows.max() == pytest.approx(80, abs=1)
    assert cols.min() == pytest.approx(50, abs=1) and cols.max() == pytest.approx(100, abs=1)
    assert not outline[35:75, 55:95].any()  # the inside is not filled


def test_needs_three_bands(tmp_path):
    with pytest.raises(InputDataError, match="three bands"):
        write_overview_png(RasterInput(_image(tmp_path), (1,)), str(tmp_path / "o.png"))
