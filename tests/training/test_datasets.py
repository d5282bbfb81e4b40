"""Tests of the tile-store builder (training/datasets.py) on small synthetic events.

The scene: 300 x 260 px at 10 m in EPSG:32633 (grid origin 500000, 5200000),
tiles of 64 px at 50 % overlap (stride 32): 8 x 7 = 56 lattice tiles.
Inventory rectangles are drawn in EPSG:4326 with edges 3 m east/south of pixel
edges, so the pixel-centre rule gives exactly ``area / 100`` pixels (an
all-touched rasterisation would give one more row and column).
"""

import json
import os

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from model.card import REFLECTANCE_SATURATION
from model.preprocess import image_to_8bit
from tests.helpers.scenes import write_polygons, write_raster
from tests.helpers.vector_files import write_layers
from training.config import Config, EventConfig, RunConfig, VectorRef
from training.datasets import build_dataset, build_event_tiles
from training.tile_store import SPLIT_TRAIN, SPLIT_VALIDATION, DatasetError, TileStore

gdal.UseExceptions()

X0, Y0, GSD = 500000.0, 5200000.0, 10.0
ROWS, COLS = 260, 300
EPSG = 32633
TILE, STRIDE = 64, 32
LATTICE_ROWS = list(range(0, ROWS - TILE + 1, STRIDE))  # 0..192, 7 rows
LATTICE_COLS = list(range(0, COLS - TILE + 1, STRIDE))  # 0..224, 8 columns
SLIDES = [(20, 40, 12, 9), (100, 150, 20, 15), (200, 250, 8, 30)]  # (row, col, height, width) in grid pixels
EDGE_OFFSET_M = 3.0


# ----------------------------------------------------------------------------- scene helpers


def _to_wgs84():
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(EPSG)
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    for srs in (utm, wgs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(utm, wgs)


TO_WGS84 = _to_wgs84()


def rect_xy(row, col, height, width, offset=EDGE_OFFSET_M):
    """UTM corners (x0, y0, x1, y1) of a pixel box, shifted ``offset`` m east and south."""
    x0 = X0 + GSD * col + offset
    x1 = X0 + GSD * (col + width) + offset
    y1 = Y0 - GSD * row - offset
    y0 = Y0 - GSD * (row + height) - offset
    return x0, y0, x1, y1


def ring_wkt(points, lonlat=True):
    if lonlat:
        points = [TO_WGS84.TransformPoint(x, y)[:2] for x, y in points]
    points = list(points) + [points[0]]
    return "POLYGON((" + ",".join(f"{x!r} {y!r}" for x, y in points) + "))"


def rect_wkt(row, col, height, width, lonlat=True, offset=EDGE_OFFSET_M):
    x0, y0, x1, y1 = rect_xy(row, col, height, width, offset)
    return ring_wkt([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], lonlat)


def expected_mask(slides=SLIDES):
    mask = np.zeros((ROWS, COLS), np.uint8)
    for r, c, h, w in slides:
        mask[r : r + h, c : c + w] = 1
    return mask


def write_scene(folder, seed=0, origin=(X0, Y0), dem_origin=None, pre=None, post=None, data_type=gdal.GDT_Byte,
                image_nodata=None):
    """Pre, post (3 bands) and DEM; returns (paths, arrays)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    if pre is None:
        pre = rng.integers(30, 200, (3, ROWS, COLS)).astype(np.uint8)
    if post is None:
        post = rng.integers(30, 200, (3, ROWS, COLS)).astype(np.uint8)
    y, x = np.mgrid[0:ROWS, 0:COLS]
    dem = (400 + 3.0 * x + 20 * np.sin(y / 9.0)).astype(np.float32)
    gt = (origin[0], GSD, 0.0, origin[1], 0.0, -GSD)
    dem_origin = dem_origin or origin
    dem_gt = (dem_origin[0], GSD, 0.0, dem_origin[1], 0.0, -GSD)
    paths = {
        "pre": write_raster(os.path.join(folder, "pre.tif"), pre, gt, EPSG, data_type, image_nodata),
        "post": write_raster(os.path.join(folder, "post.tif"), post, gt, EPSG, data_type, image_nodata),
        "dem": write_raster(os.path.join(folder, "dem.tif"), dem, dem_gt, EPSG, gdal.GDT_Float32, nodata=-9999),
    }
    return paths, {"pre": pre, "post": post, "dem": dem}


def make_event(folder, name="alpha", slides=SLIDES, extra_polygons=(), seed=0, **event_kwargs):
    """A synthetic event whose inventory (EPSG:4326 GeoPackage) holds ``slides`` and ``extra_polygons``."""
    scene_kwargs = {k: event_kwargs.pop(k) for k in ("dem_origin", "pre", "post", "data_type", "image_nodata")
                    if k in event_kwargs}
    paths, arrays = write_scene(folder, seed=seed, **scene_kwargs)
    inventory = write_polygons(os.path.join(folder, "inventory.gpkg"),
                               [rect_wkt(*s) for s in slides] + list(extra_polygons), 4326)
    event = EventConfig(name=name, pre=paths["pre"], post=paths["post"], dem=paths["dem"],
                        inventory=VectorRef(inventory), **event_kwargs)
    return event, arrays


def run_config(tmp_path, **kwargs):
    kwargs.setdefault("validation_fraction", 0.0)
    return RunConfig(output_dir=str(tmp_path / "run"), tile_px=TILE, gsd_m=GSD, **kwargs)


def load(store_dir, name):
    folder = os.path.join(store_dir, name)
    arrays = {key: np.load(os.path.join(folder, f"{key}.npy")) for key in
              ("pre", "post", "dem", "mask", "valid", "split", "origins")}
    with open(os.path.join(folder, "provenance.json"), encoding="utf-8") as handle:
        arrays["provenance"] = json.load(handle)
    return arrays


def quiet(_message):
    pass


def tile_box_m(row, col, size=TILE):
    """UTM box (x0, y0, x1, y1) of a tile."""
    return X0 + GSD * col, Y0 - GSD * (row + size), X0 + GSD * (col + size), Y0 - GSD * row


def overlaps(a, b):
    """Two (x0, y0, x1, y1) boxes share a positive area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# ----------------------------------------------------------------------------- tiles and areas


def test_tiles_lie_on_the_stride_lattice_inside_the_grid(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"))
    store = str(tmp_path / "store")
    summary = build_event_tiles(event, run_config(tmp_path), store, log=quiet)
    data = load(store, "alpha")
    origins = [tuple(o) for o in data["origins"]]
    assert sorted(origins) == [(r, c) for r in LATTICE_ROWS for c in LATTICE_COLS]
    assert data["origins"].dtype == np.int32 and data["origins"].shape == (56, 2)
    assert (data["origins"][:, 0] + TILE <= ROWS).all() and (data["origins"][:, 1] + TILE <= COLS).all()
    provenance = data["provenance"]
    assert provenance["stride"] == STRIDE and provenance["tile_px"] == TILE
    assert (provenance["grid"]["width"], provenance["grid"]["height"]) == (COLS, ROWS)
    assert provenance["grid"]["geotransform"] == [X0, GSD, 0.0, Y0, 0.0, -GSD]
    assert summary.tiles_train == 56 and summary.tiles_validation == 0
    assert (data["split"] == SPLIT_TRAIN).all()


def test_array_shapes_and_dtypes(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"))
    store = str(tmp_path / "store")
    build_event_tiles(event, run_config(tmp_path), store, log=quiet)
    data = load(store, "alpha")
    n = len(data["split"])
    expected = {"pre": ((n, TILE, TILE, 3), np.uint8), "post": ((n, TILE, TILE, 3), np.uint8),
                "dem": ((n, TILE + 2, TILE + 2), np.float32), "mask": ((n, TILE, TILE), np.uint8),
                "valid": ((n, TILE, TILE), np.uint8), "split": ((n,), np.uint8), "origins": ((n, 2), np.int32)}
    for key, (shape, dtype) in expected.items():
        assert data[key].shape == shape and data[key].dtype == dtype, key
    assert set(np.unique(data["mask"])) <= {0, 1} and set(np.unique(data["valid"])) <= {0, 1}


def test_train_area_keeps_tiles_with_95_percent_of_their_pixels_inside(tmp_path):
    # Train area: pixel columns 2..199 (all rows). Tile at col 0 has 62/64 columns inside (kept, its first
    # two columns become invalid); tile at col 160 has 40/64 (dropped); tiles at col >= 192 are outside.
    x0, x1 = X0 + 18.0, X0 + 2003.0
    area = write_polygons(str(tmp_path / "train.gpkg"),
                          [ring_wkt([(x0, Y0 - 2700), (x1, Y0 - 2700), (x1, Y0 + 100), (x0, Y0 + 100)], lonlat=False)],
                          EPSG)
    event, _ = make_event(str(tmp_path / "scene"), train_area=VectorRef(area))
    store = str(tmp_path / "store")
    build_event_tiles(event, run_config(tmp_path), store, log=quiet)
    data = load(store, "alpha")
    assert sorted(map(tuple, data["origins"])) == [(r, c) for r in LATTICE_ROWS for c in (0, 32, 64, 96, 128)]
    for (row, col), valid in zip(data["origins"], data["valid"]):
        expected = np.ones((TILE, TILE), np.uint8)
        if col == 0:
            expected[:, :2] = 0
        np.testing.assert_array_equal(valid, expected)
    assert data["provenance"]["counts"]["tiles_dropped"]["outside_training_area"] == 56 - 35


def test_tiles_touching_the_test_area_are_never_stored(tmp_path):
    x0, y0, x1, y1 = rect_xy(100, 100, 40, 40)
    area = write_polygons(str(tmp_path / "test.gpkg"), [rect_wkt(100, 100, 40, 40, lonlat=False)], EPSG)
    event, _ = make_event(str(tmp_path / "scene"), test_area=VectorRef(area))
    store = str(tmp_path / "store")
    build_event_tiles(event, run_config(tmp_path, validation_fraction=0.2), store, log=quiet)
    data = load(store, "alpha")
    stored = {tuple(o) for o in data["origins"]}
    touching = {(r, c) for r in LATTICE_ROWS for c in LATTICE_COLS if overlaps(tile_box_m(r, c), (x0, y0, x1, y1))}
    assert touching and not stored & touching
    assert data["provenance"]["counts"]["tiles_dropped"]["test_area"] == len(touching)
    # Every other tile is used, for training, validation or lost in the gap between them.
    counts = data["provenance"]["counts"]
    assert len(stored) + counts["tiles_dropped"]["validation_gap"] == 56 - len(touching)


def test_east_validation_strip_is_apart_from_training_tiles(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"))
    store = str(tmp_path / "store")
    summary = build_event_tiles(event, run_config(tmp_path, validation_fraction=0.25), store, log=quiet)
    data = load(store, "alpha")
    train = data["origins"][data["split"] == SPLIT_TRAIN]
    validation = data["origins"][data["split"] == SPLIT_VALIDATION]
    assert len(train) and len(validation)
    for tr, tc in train:
        for vr, vc in validation:
            assert not overlaps(tile_box_m(tr, tc), tile_box_m(vr, vc))
    assert validation[:, 1].min() >= train[:, 1].max() + TILE  # east of every training tile
    fraction = len(validation) / (len(train) + len(validation))
    assert abs(fraction - 0.25) < 0.1
    counts = data["provenance"]["counts"]
    assert (summary.tiles_train, summary.tiles_validation) == (len(train), len(validation))
    assert counts["tiles_train"] + counts["tiles_validation"] + counts["tiles_dropped"]["validation_gap"] == 56
    assert data["provenance"]["split_rule"]["rule"] == "east_strip"


def test_validation_area_gives_the_validation_split(tmp_path):
    # Validation area from x = X0 + 1917 m: pixel centres of columns 192.. are inside, column 191 is touched.
    # Tiles at col 192 and 224 are inside; tiles at col 128 (up to column 191) and 160 touch it and are dropped.
    x0, x1 = X0 + 1917.0, X0 + 4000.0
    area = write_polygons(str(tmp_path / "areas.gpkg"),
                          [ring_wkt([(x0, Y0 - 2700), (x1, Y0 - 2700), (x1, Y0 + 100), (x0, Y0 + 100)], lonlat=False)],
                          EPSG)
    event, _ = make_event(str(tmp_path / "scene"), validation_area=VectorRef(area))
    store = str(tmp_path / "store")
    build_event_tiles(event, run_config(tmp_path, validation_fraction=0.5), store, log=quiet)
    data = load(store, "alpha")
    validation = {tuple(o) for o in data["origins"][data["split"] == SPLIT_VALIDATION]}
    train = {tuple(o) for o in data["origins"][data["split"] == SPLIT_TRAIN]}
    assert validation == {(r, c) for r in LATTICE_ROWS for c in (192, 224)}
    assert train == {(r, c) for r in LATTICE_ROWS for c in range(0, 128, 32)}
    assert data["provenance"]["counts"]["tiles_dropped"]["validation_area_border"] == 2 * len(LATTICE_ROWS)
    assert data["provenance"]["split_rule"]["rule"] == "validation_area"
    assert data["valid"][data["split"] == SPLIT_VALIDATION].all()


def test_tiles_with_too_few_valid_pixels_are_dropped(tmp_path):
    # Pre image nodata (0) in columns 0..79: tile col 0 has 0 % valid, col 32 has 25 %, col 64 has 75 %.
    pre = np.random.default_rng(5).integers(30, 200, (3, ROWS, COLS)).astype(np.uint8)
    pre[:, :, :80] = 0
    event, _ = make_event(str(tmp_path / "scene"), pre=pre, image_nodata=0)
    store = str(tmp_path / "store")
    build_event_tiles(event, run_config(tmp_path), store, log=quiet)
    data = load(store, "alpha")
    assert set(data["origins"][:, 1]) == set(LATTICE_COLS) - {0, 32}
    for (row, col), valid in zip(data["origins"], data["valid"]):
        expected = np.ones((TILE, TILE), np.uint8)
        expected[:, : max(0, 80 - col)] = 0
        np.testing.assert_array_equal(valid, expected)
    assert data["provenance"]["counts"]["tiles_dropped"]["too_few_valid_pixels"] == 2 * len(LATTICE_ROWS)


# ----------------------------------------------------------------------------- inventory


def test_mask_is_the_pixel_centre_rasterisation_of_the_reprojected_inventory(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"))
    store = str(tmp_path / "store")
    build_event_tiles(event, run_config(tmp_path), store, log=quiet)
    data = load(store, "alpha")
    truth = expected_mask()
    for (row, col), mask in zip(data["origins"], data["mask"]):
        np.testing.assert_array_equal(mask, truth[row : row + TILE, col : col + TILE])
    for r, c, h, w in SLIDES:  # a tile holding the whole rectangle: area / 100 pixels, at the right rows/cols
        index = next(i for i, (tr, tc) in enumerate(data["origins"])
                     if tr <= r and r + h <= tr + TILE and tc <= c and c + w <= tc + TILE)
        tr, tc = data["origins"][index]
        x0, y0, x1, y1 = rect_xy(r, c, h, w)
        assert data["mask"][index].sum() == round((x1 - x0) * (y1 - y0) / GSD**2) == h * w
        rows, cols = np.nonzero(data["mask"][index])
        assert (rows.min() + tr, rows.max() + tr, cols.min() + tc, cols.max() + tc) == (r, r + h - 1, c, c + w - 1)


def test_polygon_outside_the_grid_is_counted_and_reported(tmp_path):
    far = rect_wkt(0, 5000, 10, 10)  # 50 km east of the images
    event, _ = make_event(str(tmp_path / "scene"), extra_polygons=[far])
    messages = []
    summary = build_event_tiles(event, run_config(tmp_path), str(tmp_path / "store"), log=messages.append)
    counts = load(str(tmp_path / "store"), "alpha")["provenance"]["counts"]
    assert (counts["inventory_polygons"], counts["inventory_polygons_used"], counts["inventory_polygons_outside"]) == (4, 3, 1)
    assert (summary.polygons_used, summary.polygons_outside, summary.polygons_repaired) == (3, 1, 0)
    assert any("1 of 4 inventory polygon(s) lie entirely outside" in m for m in messages)


def test_self_intersecting_polygon_is_repaired_keeping_both_lobes(tmp_path):
    # A bow-tie over rows 150..169, cols 40..59: corners (x0, y1) -> (x1, y0) -> (x1, y1) -> (x0, y0).
    x0, y0, x1, y1 = rect_xy(150, 40, 20, 20)
    bow_tie = ring_wkt([(x0, y1), (x1, y0), (x1, y1), (x0, y0)])
    assert not ogr.CreateGeometryFromWkt(bow_tie).IsValid()
    event, _ = make_event(str(tmp_path / "scene"), extra_polygons=[bow_tie])
    messages = []
    summary = build_event_tiles(event, run_config(tmp_path), str(tmp_path / "store"), log=messages.append)
    data = load(str(tmp_path / "store"), "alpha")
    assert summary.polygons_repaired == 1 and data["provenance"]["counts"]["inventory_polygons_repaired"] == 1
    assert any("repaired 1" in m for m in messages)
    index = next(i for i, (r, c) in enumerate(data["origins"]) if (r, c) == (128, 32))  # holds rows 128..191, cols 32..95
    lobes = data["mask"][index][150 - 128 : 170 - 128, 40 - 32 : 60 - 32]
    left, right = lobes[:, :10].sum(), lobes[:, 10:].sum()
    assert left > 60 and right > 60  # each triangle is 100 pixels of area; Buffer(0) would drop one of them
    assert abs(int(lobes.sum()) - 200) <= 20


@pytest.mark.parametrize("driver, filename, layer", [
    ("GeoJSON", "inventory.geojson", None),
    ("ESRI Shapefile", "inventory.shp", None),
    ("GPKG", "inventory_layers.gpkg", "slides"),
])
def test_inventory_formats_and_layers(tmp_path, driver, filename, layer):
    event, _ = make_event(str(tmp_path / "scene"))
    wkts = [rect_wkt(*s) for s in SLIDES]
    layers = {"slides": wkts} if driver != "GPKG" else {"other": [rect_wkt(0, 0, 50, 50)], "slides": wkts}
    path = write_layers(str(tmp_path / filename), layers, 4326, driver)
    event = EventConfig(**{**event.__dict__, "inventory": VectorRef(path, layer)})
    build_event_tiles(event, run_config(tmp_path), str(tmp_path / "store"), log=quiet)
    data = load(str(tmp_path / "store"), "alpha")
    truth = expected_mask()
    for (row, col), mask in zip(data["origins"], data["mask"]):
        np.testing.assert_array_equal(mask, truth[row : row + TILE, col : col + TILE])


def test_empty_inventory_names_the_event_and_file(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"), name="empty_event")
    empty = write_polygons(str(tmp_path / "empty.gpkg"), [], 4326)
    event = EventConfig(**{**event.__dict__, "inventory": VectorRef(empty)})
    with pytest.raises(DatasetError, match="empty_event") as caught:
        build_event_tiles(event, run_config(tmp_path), str(tmp_path / "store"), log=quiet)
    assert empty in str(caught.value)
    assert not os.path.exists(tmp_path / "store" / "empty_event")
    assert not os.path.exists(tmp_path / "store" / "empty_event.partial")


def test_non_overlapping_rasters_name_the_event_and_files(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"), name="apart", dem_origin=(X0 + 100_000.0, Y0))
    with pytest.raises(DatasetError, match="apart") as caught:
        build_event_tiles(event, run_config(tmp_path), str(tmp_path / "store"), log=quiet)
    assert event.dem in str(caught.value) and "do not overlap" in str(caught.value)


# ----------------------------------------------------------------------------- images, DEM, cloud mask


def test_images_and_dem_are_the_grid_windows(tmp_path):
    event, arrays = make_event(str(tmp_path / "scene"))
    build_event_tiles(event, run_config(tmp_path), str(tmp_path / "store"), log=quiet)
    data = load(str(tmp_path / "store"), "alpha")
    padded = np.pad(arrays["dem"], 1, constant_values=np.nan)  # the DEM covers exactly the grid
    for i, (row, col) in enumerate(data["origins"]):
        np.testing.assert_array_equal(data["pre"][i], np.moveaxis(arrays["pre"][:, row : row + TILE, col : col + TILE], 0, -1))
        np.testing.assert_array_equal(data["post"][i], np.moveaxis(arrays["post"][:, row : row + TILE, col : col + TILE], 0, -1))
        np.testing.assert_allclose(data["dem"][i], padded[row : row + TILE + 2, col : col + TILE + 2], rtol=0, atol=1e-3)
    corner = next(i for i, o in enumerate(data["origins"]) if tuple(o) == (0, 0))
    assert np.isnan(data["dem"][corner][0]).all() and np.isnan(data["dem"][corner][:, 0]).all()
    assert data["valid"].all()  # NaN in the halo does not make a pixel invalid


@pytest.mark.parametrize("radiometry", ["s2_l2a", "s2_l2a_offset"])
def test_sentinel2_uint16_images_become_8bit_per_image_to_8bit(tmp_path, radiometry):
    rng = np.random.default_rng(3)
    pre = rng.integers(0, 4000, (3, ROWS, COLS)).astype(np.uint16)
    post = rng.integers(0, 4000, (3, ROWS, COLS)).astype(np.uint16)
    event, _ = make_event(str(tmp_path / "scene"), pre=pre, post=post, data_type=gdal.GDT_UInt16, radiometry=radiometry)
    build_event_tiles(event, run_config(tmp_path), str(tmp_path / "store"), log=quiet)
    data = load(str(tmp_path / "store"), "alpha")
    assert data["provenance"]["radiometry_resolved"] == {"pre": radiometry, "post": radiometry}
    for i, (row, col) in enumerate(data["origins"][:5]):
        for key, source in (("pre", pre), ("post", post)):
            window = source[:, row : row + TILE, col : col + TILE].astype(np.float32)
            expected = np.rint(image_to_8bit(window, radiometry, REFLECTANCE_SATURATION)).astype(np.uint8)
            np.testing.assert_array_equal(data[key][i], np.moveaxis(expected, 0, -1))
    assert data["pre"].max() == 255 and data["pre"].min() == 0  # saturation and the offset are applied


def test_cloud_polygons_make_pixels_invalid(tmp_path):
    clouds = write_polygons(str(tmp_path / "clouds.gpkg"), [rect_wkt(30, 60, 25, 40)], 4326)
    event, _ = make_event(str(tmp_path / "scene"), cloud_mask=clouds)
    build_event_tiles(event, run_config(tmp_path), str(tmp_path / "store"), log=quiet)
    data = load(str(tmp_path / "store"), "alpha")
    cloudy = np.zeros((ROWS, COLS), np.uint8)
    cloudy[30:55, 60:100] = 1
    for (row, col), valid in zip(data["origins"], data["valid"]):
        np.testing.assert_array_equal(valid, 1 - cloudy[row : row + TILE, col : col + TILE])
    assert data["provenance"]["cloud_mask_kind"] == "polygons"


def test_cloud_raster_makes_pixels_invalid(tmp_path):
    cloudy = np.zeros((ROWS, COLS), np.uint8)
    cloudy[200:230, 10:50] = 3
    path = write_raster(str(tmp_path / "clouds.tif"), cloudy, (X0, GSD, 0.0, Y0, 0.0, -GSD), EPSG)
    event, _ = make_event(str(tmp_path / "scene"), cloud_mask=path)
    build_event_tiles(event, run_config(tmp_path), str(tmp_path / "store"), log=quiet)
    data = load(str(tmp_path / "store"), "alpha")
    for (row, col), valid in zip(data["origins"], data["valid"]):
        np.testing.assert_array_equal(valid, (cloudy[row : row + TILE, col : col + TILE] == 0).astype(np.uint8))
    assert data["provenance"]["cloud_mask_kind"] == "raster"


# ----------------------------------------------------------------------------- store folders


def test_existing_store_is_not_overwritten_silently(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"))
    store = str(tmp_path / "store")
    build_event_tiles(event, run_config(tmp_path), store, log=quiet)
    before = load(store, "alpha")["mask"].sum()
    write_polygons(event.inventory.path, [rect_wkt(*SLIDES[0])], 4326)  # fewer slides
    with pytest.raises(DatasetError, match="overwrite"):
        build_event_tiles(event, run_config(tmp_path), store, log=quiet)
    assert load(store, "alpha")["mask"].sum() == before
    build_event_tiles(event, run_config(tmp_path), store, overwrite=True, log=quiet)
    after = load(store, "alpha")["mask"]
    assert 0 < after.sum() < before
    assert sorted(os.listdir(store)) == ["alpha"]


class Interrupt(Exception):
    pass


def interrupt_while_reading(message):
    if " read " in message:
        raise Interrupt(message)


def test_interrupted_build_leaves_no_complete_looking_folder(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"))
    store = str(tmp_path / "store")
    with pytest.raises(Interrupt):
        build_event_tiles(event, run_config(tmp_path), store, log=interrupt_while_reading)
    assert not os.path.exists(os.path.join(store, "alpha"))
    assert not os.path.exists(os.path.join(store, "alpha.partial"))
    with pytest.raises(DatasetError, match="No complete tile store"):
        TileStore(store)


def test_interrupted_rebuild_keeps_the_previous_store(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"))
    store = str(tmp_path / "store")
    build_event_tiles(event, run_config(tmp_path), store, log=quiet)
    provenance = os.path.join(store, "alpha", "provenance.json")
    stamp = os.stat(provenance).st_mtime_ns
    with pytest.raises(Interrupt):
        build_event_tiles(event, run_config(tmp_path), store, overwrite=True, log=interrupt_while_reading)
    assert os.stat(provenance).st_mtime_ns == stamp
    assert sorted(os.listdir(store)) == ["alpha"]
    assert len(TileStore(store)) == 56


def test_a_killed_build_is_not_listed_and_is_cleared_by_the_next_build(tmp_path):
    event, _ = make_event(str(tmp_path / "scene"))
    store = tmp_path / "store"
    (store / "alpha.partial").mkdir(parents=True)
    (store / "alpha.partial" / "_scratch_pre.npy").write_bytes(b"junk")
    with pytest.raises(DatasetError):
        TileStore(str(store), ["alpha"])
    build_event_tiles(event, run_config(tmp_path), str(store), log=quiet)
    assert sorted(os.listdir(store)) == ["alpha"]


# ----------------------------------------------------------------------------- combined datasets


def test_tile_store_combines_events_and_a_later_event_builds_alone(tmp_path):
    run = run_config(tmp_path, validation_fraction=0.2)
    store = str(tmp_path / "store")
    first, _ = make_event(str(tmp_path / "a"), name="alpha", seed=1)
    second, _ = make_event(str(tmp_path / "b"), name="beta", seed=2, slides=SLIDES[:1])
    summaries = build_dataset(Config(run, (first, second)), store, log=quiet)
    assert [(s.event, s.built) for s in summaries] == [("alpha", True), ("beta", True)]

    tiles = TileStore(store)
    assert tiles.events == ["alpha", "beta"]
    sizes = [len(load(store, n)["split"]) for n in ("alpha", "beta")]
    assert len(tiles) == sum(sizes) == sum(s.tiles_train + s.tiles_validation for s in summaries)
    train, validation = tiles.indices("train"), tiles.indices("validation")
    assert len(train) and len(validation)
    assert sorted(np.concatenate([train, validation]).tolist()) == list(range(len(tiles)))
    np.testing.assert_array_equal(tiles.indices(SPLIT_VALIDATION), validation)
    for index in (0, sizes[0] - 1, sizes[0], len(tiles) - 1):
        sample = tiles.sample(index)
        assert sample["event"] == ("alpha" if index < sizes[0] else "beta")
        assert sample["pre"].shape == sample["post"].shape == (TILE, TILE, 3) and sample["pre"].dtype == np.uint8
        assert sample["dem"].shape == (TILE + 2, TILE + 2) and sample["dem"].dtype == np.float32
        assert sample["mask"].shape == sample["valid"].shape == (TILE, TILE)
        assert sample["mask"].dtype == sample["valid"].dtype == np.uint8
        local = index if index < sizes[0] else index - sizes[0]
        raw = load(store, sample["event"])
        assert sample["origin"] == tuple(int(v) for v in raw["origins"][local])
        np.testing.assert_array_equal(sample["mask"], raw["mask"][local])
        np.testing.assert_array_equal(sample["post"], raw["post"][local])
    assert tiles.sample(sizes[0])["split"] == int(load(store, "beta")["split"][0])
    assert tiles.provenance["beta"]["event"] == "beta"
    with pytest.raises(IndexError):
        tiles.sample(len(tiles))

    stamps = {n: os.stat(os.path.join(store, n, "provenance.json")).st_mtime_ns for n in ("alpha", "beta")}
    arrays = {n: os.stat(os.path.join(store, n, "pre.npy")).st_mtime_ns for n in ("alpha", "beta")}
    third, _ = make_event(str(tmp_path / "c"), name="gamma", seed=3)
    messages = []
    summaries = build_dataset(Config(run, (first, second, third)), store, log=messages.append)
    assert [(s.event, s.built) for s in summaries] == [("alpha", False), ("beta", False), ("gamma", True)]
    assert any("alpha: already built" in m for m in messages)
    for name in ("alpha", "beta"):
        assert os.stat(os.path.join(store, name, "provenance.json")).st_mtime_ns == stamps[name]
        assert os.stat(os.path.join(store, name, "pre.npy")).st_mtime_ns == arrays[name]
    assert len(TileStore(store)) == len(tiles) + summaries[2].tiles_train + summaries[2].tiles_validation
    assert len(TileStore(store, ["gamma", "alpha"])) == summaries[2].tiles_train + summaries[2].tiles_validation + sizes[0]
    with pytest.raises(DatasetError, match="delta"):
        TileStore(store, ["alpha", "delta"])


def test_build_dataset_only_and_stale_settings(tmp_path):
    store = str(tmp_path / "store")
    first, _ = make_event(str(tmp_path / "a"), name="alpha", seed=1)
    second, _ = make_event(str(tmp_path / "b"), name="beta", seed=2)
    config = Config(run_config(tmp_path), (first, second))
    assert [s.event for s in build_dataset(config, store, only=["beta"], log=quiet)] == ["beta"]
    assert sorted(os.listdir(store)) == ["beta"]
    with pytest.raises(DatasetError, match="gamma"):
        build_dataset(config, store, only=["gamma"], log=quiet)
    changed = Config(run_config(tmp_path, tile_overlap=0.25), (first, second))
    with pytest.raises(DatasetError, match="overwrite") as caught:
        build_dataset(changed, store, only=["beta"], log=quiet)
    assert "tile_overlap" in str(caught.value)
    rebuilt = build_dataset(changed, store, only=["beta"], overwrite=True, log=quiet)
    assert rebuilt[0].built and load(store, "beta")["provenance"]["stride"] == 48


def test_scene_normalisation_in_the_store_is_the_plugins(tmp_path):
    """With image_normalisation set, tiles hold what model.preprocess gives over the whole event grid."""
    from model.card import ImageNormalisation
    from model.preprocess import SceneStatistics, image_for_spec, image_to_reflectance

    rng = np.random.default_rng(4)
    pre = rng.integers(300, 1500, (3, ROWS, COLS)).astype(np.uint16)
    post = (rng.integers(300, 1500, (3, ROWS, COLS)) * 1.3 + 400).astype(np.uint16)   # gain and haze
    event, _ = make_event(str(tmp_path / "scene"), pre=pre, post=post, data_type=gdal.GDT_UInt16, radiometry="s2_l2a")
    logs = []
    build_event_tiles(event, run_config(tmp_path, image_normalisation="scene_dark_median"), str(tmp_path / "store"),
                      log=logs.append)
    assert any("Scene normalisation of the post-event image" in line for line in logs)
    data = load(str(tmp_path / "store"), "alpha")
    spec = ImageNormalisation(method="scene_dark_median")
    for key, source in (("pre", pre), ("post", post)):
        stats = SceneStatistics()
        stats.add(image_to_reflectance(source.astype(np.float32), "s2_l2a"), np.ones((ROWS, COLS), bool))
        normaliser = stats.normaliser(spec, key)
        row, col = data["origins"][0]
        window = source[:, row : row + TILE, col : col + TILE].astype(np.float32)
        expected = np.rint(image_for_spec(window, "s2_l2a", spec, REFLECTANCE_SATURATION, normaliser)).astype(np.uint8)
        assert np.abs(data[key][0].astype(int) - np.moveaxis(expected, 0, -1)).max() <= 1
    # the two images, 30 % and 400 apart in raw values, now sit at the same level
    assert abs(float(np.median(data["pre"])) - float(np.median(data["post"]))) < 3
    from training.config import ConfigError, check_run

    with pytest.raises(ConfigError, match="image_normalisation must be one of"):
        check_run(run_config(tmp_path, image_normalisation="per_tile"))


def test_stores_of_different_normalisations_are_not_mixed_and_feet_become_metres(tmp_path):


    store = str(tmp_path / "store")
    one, _ = make_event(str(tmp_path / "one"), name="one")
    two, arrays = make_event(str(tmp_path / "two"), name="two", seed=1)
    build_event_tiles(one, run_config(tmp_path), store, log=quiet)
    build_event_tiles(two, run_config(tmp_path, image_normalisation="scene_dark_median"), store, log=quiet)
    assert TileStore(store, ["one"]).image_normalisation == "none"
    with pytest.raises(DatasetError, match="differ in image normalisation"):
        TileStore(store, ["one", "two"])
    # a DEM whose band unit says feet is stored in metres, as the plugin reads it
    dataset = gdal.Open(two.dem, gdal.GA_Update)
    dataset.GetRasterBand(1).SetUnitType("ft")
    dataset = None
    build_event_tiles(two, run_config(tmp_path), str(tmp_path / "feet"), log=quiet)
    feet = load(str(tmp_path / "feet"), "two")
    metres = load(store, "two")
    assert feet["provenance"]["settings"]["dem_metres_per_unit"] == pytest.approx(0.3048)
    np.testing.assert_allclose(feet["dem"], metres["dem"] * 0.3048, rtol=1e-5)
