"""The event simulator writes complete, reproducible, labelled events the dataset builder accepts."""

import json
import os

import numpy as np
import pytest
from osgeo import gdal, ogr

from training.config import RunConfig, parse_config
from training.datasets import build_dataset
from training.simulate import event_config_lines, simulate_event
from training.simulate_styles import STYLES, TRAINING_STYLES, UNSEEN_STYLE

SIZE = 256


def _rasterize(vector_path, like_path):
    like = gdal.Open(like_path)
    out = gdal.GetDriverByName("MEM").Create("", like.RasterXSize, like.RasterYSize, 1, gdal.GDT_Byte)
    out.SetGeoTransform(like.GetGeoTransform())
    out.SetProjection(like.GetProjection())
    source = ogr.Open(vector_path)
    gdal.RasterizeLayer(out, [1], source.GetLayer(0), burn_values=[1])
    return out.ReadAsArray().astype(bool)


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim") / "event"
    return simulate_event(str(folder), "tropical_hills", seed=5, size_px=SIZE, radiometry="s2_l2a_offset")


def test_writes_a_complete_event_in_a_projected_crs(event):
    for path in (event.pre, event.post, event.dem, event.inventory, event.clouds):
        assert os.path.exists(path)
    assert not os.path.exists(event.folder + ".partial")
    pre, dem = gdal.Open(event.pre), gdal.Open(event.dem)
    assert (pre.RasterXSize, pre.RasterYSize, pre.RasterCount) == (SIZE, SIZE, 3)
    assert pre.GetRasterBand(1).DataType == gdal.GDT_UInt16
    assert pre.GetSpatialRef().GetAuthorityCode(None) == str(STYLES["tropical_hills"].epsg)
    assert pre.GetSpatialRef().GetLinearUnits() == 1.0
    # the DEM lies on its own coarser grid
    assert dem.GetGeoTransform()[1] == 2 * pre.GetGeoTransform()[1]
    assert dem.GetGeoTransform()[0] != pre.GetGeoTransform()[0]
    values = pre.ReadAsArray()
    valid = values[0] > 0
    assert values[:, valid].min() >= 1000  # baseline 04.00 offset
    record = json.load(open(os.path.join(event.folder, "event.json")))
    assert record["seed"] == 5 and record["radiometry"] == "s2_l2a_offset"
    assert "not a real event" in record["note"]
    # areas.gpkg: the northern 75 % is the train area, the southern 25 % the test area
    x0, dx, _, y0, _, dy = pre.GetGeoTransform()
    areas = ogr.Open(os.path.join(event.folder, "areas.gpkg"))
    envelopes = []
    for name in ("train", "test"):
        layer = areas.GetLayerByName(name)
        assert layer.GetFeatureCount() == 1
        feature = layer.GetNextFeature()
        envelopes.append(feature.GetGeometryRef().GetEnvelope())
    (tx0, tx1, ty0, ty1), (sx0, sx1, sy0, sy1) = envelopes
    assert (tx0, tx1, ty1, sy0) == (x0, x0 + SIZE * dx, y0, y0 + SIZE * dy) and (sx0, sx1) == (tx0, tx1)
    assert ty0 == sy1 == y0 + 0.75 * SIZE * dy


def test_inventory_marks_bright_new_bare_ground_on_steep_slopes(event):
    landslides = _rasterize(event.inventory, event.pre)
    assert 0.002 < landslides.mean() < 0.2
    assert event.landslides == ogr.Open(event.inventory).GetLayer(0).GetFeatureCount() > 5
    pre = gdal.Open(event.pre).ReadAsArray().astype(float) - 1000
    post = gdal.Open(event.post).ReadAsArray().astype(float) - 1000
    clouds = _rasterize(event.clouds, event.pre)
    usable = ~clouds & (pre[0] > -1000) & (post[0] > -1000)
    red_gain = post[0] - pre[0]
    assert np.median(red_gain[landslides & usable]) > 500  # +0.05 reflectance in red
    assert abs(np.median(red_gain[~landslides & usable])) < 150
    x0, dx, _, y0, _, dy = gdal.Open(event.pre).GetGeoTransform()
    dem = gdal.Warp("", event.dem, format="MEM", outputBounds=(x0, y0 + SIZE * dy, x0 + SIZE * dx, y0),
                    width=SIZE, height=SIZE, resampleAlg="bilinear", dstNodata=np.nan).ReadAsArray()
    gy, gx = np.gradient(dem, 10.0)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    assert np.nanmedian(slope[landslides]) > np.nanmedian(slope) + 2


def test_same_arguments_give_the_same_event(event, tmp_path):
    again = simulate_event(str(tmp_path / "again"), "tropical_hills", seed=5, size_px=SIZE,
                           radiometry="s2_l2a_offset")
    for a, b in ((event.pre, again.pre), (event.post, again.post), (event.dem, again.dem)):
        assert np.array_equal(gdal.Open(a).ReadAsArray(), gdal.Open(b).ReadAsArray())
    other = simulate_event(str(tmp_path / "other"), "tropical_hills", seed=6, size_px=SIZE,
                           radiometry="s2_l2a_offset")
    assert not np.array_equal(gdal.Open(event.post).ReadAsArray(), gdal.Open(other.post).ReadAsArray())


def test_every_style_and_encoding_simulates(tmp_path):
    assert UNSEEN_STYLE not in TRAINING_STYLES and set(TRAINING_STYLES) < set(STYLES)
    for index, style in enumerate(STYLES):
        radiometry = ("8bit", "s2_l2a")[index % 2]
        event = simulate_event(str(tmp_path / style), style, seed=index, size_px=128, radiometry=radiometry)
        data_type = gdal.Open(event.post).GetRasterBand(1).DataType
        assert data_type == (gdal.GDT_Byte if radiometry == "8bit" else gdal.GDT_UInt16)


def test_refuses_bad_arguments_and_existing_folders(event, tmp_path):
    with pytest.raises(ValueError, match="Unknown style"):
        simulate_event(str(tmp_path / "x"), "lunar", seed=1)
    with pytest.raises(ValueError, match="radiometry"):
        simulate_event(str(tmp_path / "x"), "dry_ranges", seed=1, radiometry="16bit")
    with pytest.raises(FileExistsError):
        simulate_event(event.folder, "tropical_hills", seed=5, size_px=SIZE)


def test_the_dataset_builder_accepts_a_simulated_event(event, tmp_path):
    lines = ["[run]", f'output_dir = "{tmp_path / "run"}"', "tile_px = 64", "context_px = 16",
             "validation_fraction = 0.2", ""]
    lines += event_config_lines(event, "sim", str(tmp_path))
    config_path = tmp_path / "config.toml"
    config_path.write_text("\n".join(lines))
    config = parse_config(__import__("tomllib").loads(config_path.read_text()), str(tmp_path))
    assert config.events[0].radiometry == "s2_l2a_offset"
    assert isinstance(config.run, RunConfig)
    summary, = build_dataset(config, str(tmp_path / "tiles"), log=lambda _: None)
    assert summary.tiles_train > 0 and summary.tiles_validation > 0 and summary.landslide_pixels > 0
