"""Landslide polygons and their statistics, made through scratch files chunk by chunk."""

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from model.polygons import iter_landslide_polygons

GSD = 10.0


def _write(path, array, data_type, nodata):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[1], array.shape[0], 1, data_type)
    dataset.SetGeoTransform((400000.0, GSD, 0.0, 5000000.0, 0.0, -GSD))
    dataset.SetProjection(srs.ExportToWkt())
    dataset.GetRasterBand(1).WriteArray(array)
    dataset.GetRasterBand(1).SetNoDataValue(nodata)
    return str(path)


def _components(mask):
    """4-connected components of ``mask`` (a plain flood fill, independent of GDAL)."""
    labels = np.zeros(mask.shape, np.int32)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        count += 1
        stack = [start]
        labels[start] = count
        while stack:
            r, c = stack.pop()
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc] and not labels[rr, cc]:
                    labels[rr, cc] = count
                    stack.append((rr, cc))
    return labels, count


@pytest.fixture()
def scene(tmp_path):
    rng = np.random.default_rng(7)
    mask = np.zeros((40, 50), np.uint8)
    mask[2:6, 3:9] = 1            # 24 px
    mask[10:30, 5:25] = 1         # a ring crossing chunk edges, with a hole
    mask[15:25, 10:20] = 0
    mask[18:21, 13:16] = 1        # an island inside the hole: its own polygon
    mask[33, 40] = 1              # one pixel
    mask[0:40, 45:50] = 255       # nodata strip
    mask[5:8, 46] = 1             # never inside nodata in practice; here a slide touching it
    probability = rng.uniform(0, 1, mask.shape).astype(np.float32)
    probability[mask == 255] = -1.0
    return (mask, probability, _write(tmp_path / "mask.tif", mask, gdal.GDT_Byte, 255),
            _write(tmp_path / "probability.tif", probability, gdal.GDT_Float32, -1.0), tmp_path)


@pytest.mark.parametrize("chunk_px", [7, 1024])
def test_statistics_match_connected_components(scene, chunk_px):
    mask, probability, mask_path, probability_path, scratch = scene
    labels, count = _components(mask == 1)
    expected = sorted(
        (100.0 * np.count_nonzero(labels == k), float(probability[labels == k].mean()), float(probability[labels == k].max()))
        for k in range(1, count + 1)
    )
    polygons = list(iter_landslide_polygons(mask_path, probability_path, 0.0, str(scratch), chunk_px=chunk_px))
    got = sorted((p.area_m2, p.mean_prob, p.max_prob) for p in polygons)
    assert len(got) == count == 5
    for (area, mean, peak), (area_e, mean_e, peak_e) in zip(got, expected):
        assert area == pytest.approx(area_e)
        assert mean == pytest.approx(mean_e, rel=1e-6)
        assert peak == pytest.approx(peak_e, rel=1e-6)
    ring = max(polygons, key=lambda p: p.area_m2)
    geometry = ogr.CreateGeometryFromWkb(ring.wkb)
    assert geometry.GetGeometryCount() == 2  # outer ring and the hole: exact pixel edges
    assert geometry.GetArea() == pytest.approx(100.0 * (400 - 100))


def test_minimum_area_and_cancel(scene):
    _, _, mask_path, probability_path, scratch = scene
    (scratch / "a").mkdir()
    (scratch / "b").mkdir()
    kept = list(iter_landslide_polygons(mask_path, probability_path, 24 * 100.0, str(scratch / "a")))
    assert sorted(p.area_m2 for p in kept) == [2400.0, 30000.0]
    assert list(iter_landslide_polygons(mask_path, probability_path, 0.0, str(scratch / "b"), is_cancelled=lambda: True)) == []
