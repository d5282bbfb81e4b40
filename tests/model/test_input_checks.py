"""Inputs that pass GDAL but are the wrong thing (issue 13): units, layer mix-ups, radiometry."""

import os

import numpy as np
import pytest
from osgeo import gdal

from model.errors import InputDataError
from model.grid import RasterInput
from model.pipeline import MappingRequest, check_request, map_landslides
from tests.helpers.scenes import write_raster
from tests.helpers.tiny_models import conv_model

gdal.UseExceptions()

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(REPO, "resources", "sample_event")
FOOT = 0.3048


def sample(name):
    return os.path.join(SAMPLE, f"{name}.tif")


def with_unit(source, path, factor=1.0, unit=None):
    """A copy of a one-band raster with its values multiplied by ``factor`` and its band unit set."""
    dataset = gdal.Translate(path, source, outputType=gdal.GDT_Float32)
    band = dataset.GetRasterBand(1)
    values = band.ReadAsArray()
    nodata = band.GetNoDataValue()
    band.WriteArray(np.where(values == nodata, nodata, values * factor) if nodata is not None else values * factor)
    if unit is not None:
        band.SetUnitType(unit)
    band = dataset = None
    return path


def sample_request(model, tmp_path, **changes):
    request = MappingRequest(model, RasterInput(sample("pre"), (1, 2, 3)), RasterInput(sample("post"), (1, 2, 3)),
                             RasterInput(sample("dem")), work_dir=str(tmp_path))
    return MappingRequest(**{**request.__dict__, **changes})


@pytest.fixture()
def conv(tmp_path):
    return conv_model(str(tmp_path / "conv.onnx"))


# --------------------------------------------------------------------------- DEM units and plausibility


def test_a_dem_in_feet_with_its_unit_set_maps_like_the_dem_in_metres(tmp_path, conv):
    feet = with_unit(sample("dem"), str(tmp_path / "dem_ft.tif"), 1 / FOOT, "ft")
    metres = map_landslides(sample_request(conv, tmp_path, probability_path=str(tmp_path / "p_m.tif"),
                                           extent=None, window_px=256))
    logs = []
    in_feet = map_landslides(sample_request(conv, tmp_path, dem=RasterInput(feet),
                                            probability_path=str(tmp_path / "p_ft.tif"), window_px=256),
                             log=logs.append)
    assert any("DEM elevations converted to metres from its band unit (x 0.3048)" in line for line in logs)
    feet_p, metres_p = (gdal.Open(r.probability_path).ReadAsArray() for r in (in_feet, metres))
    # equal but where gdaldem's integer hillshade rounds the other way (0.5 % of the pixels, by < 0.005)
    np.testing.assert_allclose(feet_p, metres_p, atol=5e-3)
    assert np.mean(np.abs(feet_p - metres_p) < 1e-4) > 0.99


def test_a_dem_in_feet_without_its_unit_is_refused_as_implausible(tmp_path, conv):
    feet = with_unit(sample("dem"), str(tmp_path / "dem_ft.tif"), 1 / FOOT)
    with pytest.raises(InputDataError, match=r"DEM: its slopes are implausible \(median 48°.*'ft'"):
        check_request(sample_request(conv, tmp_path, dem=RasterInput(feet)))


def test_a_dem_whose_unit_is_no_length_is_refused(tmp_path, conv):
    degrees = with_unit(sample("dem"), str(tmp_path / "dem_deg.tif"), 1.0, "degree")
    with pytest.raises(InputDataError, match="DEM: the unit of band 1 of .* is 'degree'"):
        check_request(sample_request(conv, tmp_path, dem=RasterInput(degrees)))


def test_an_rgb_image_as_dem_is_refused(tmp_path, event_scene, red_model):
    request = MappingRequest(red_model, RasterInput(event_scene.pre, (1, 2, 3)), RasterInput(event_scene.post, (1, 2, 3)),
                             RasterInput(event_scene.post, (1,)), work_dir=str(tmp_path))
    with pytest.raises(InputDataError, match="DEM: band 1 of .* is also a band of the post-event image"):
        check_request(request)
    other = write_raster(str(tmp_path / "rgb.tif"), gdal.Open(event_scene.post).ReadAsArray(),
                         event_scene.geotransform, event_scene.epsg)
    request = MappingRequest(**{**request.__dict__, "dem": RasterInput(other, (1,))})
    with pytest.raises(InputDataError, match="DEM: .*rgb.tif has 3 bands of 8-bit values, like an RGB image"):
        check_request(request)


def test_a_single_band_noise_image_as_dem_is_refused_by_its_slopes(tmp_path, event_scene, red_model):
    noise = np.random.default_rng(1).integers(0, 256, (100, 120)).astype(np.uint8)
    image = write_raster(str(tmp_path / "grey.tif"), noise, event_scene.geotransform, event_scene.epsg)
    request = MappingRequest(red_model, RasterInput(event_scene.pre, (1, 2, 3)), RasterInput(event_scene.post, (1, 2, 3)),
                             RasterInput(image), work_dir=str(tmp_path))
    with pytest.raises(InputDataError, match="DEM: its slopes are implausible"):
        check_request(request)


# --------------------------------------------------------------------------- layer mix-ups


def test_the_same_layer_as_pre_and_post_image_is_refused(tmp_path, event_scene, red_model):
    request = MappingRequest(red_model, RasterInput(event_scene.post, (1, 2, 3)),
                             RasterInput(os.path.join(os.path.dirname(event_scene.post), ".", "post.tif"), (1, 2, 3)),
                             RasterInput(event_scene.dem), work_dir=str(tmp_path))
    with pytest.raises(InputDataError, match="Pre-event image and post-event image are the same layer"):
        check_request(request)


def test_different_bands_of_one_stack_are_accepted(tmp_path, event_scene, red_model):
    stack = write_raster(str(tmp_path / "stack.tif"), np.concatenate([gdal.Open(event_scene.pre).ReadAsArray(),
                                                                      gdal.Open(event_scene.post).ReadAsArray()]),
                         event_scene.geotransform, event_scene.epsg)
    plan = check_request(MappingRequest(red_model, RasterInput(stack, (1, 2, 3)), RasterInput(stack, (4, 5, 6)),
                                        RasterInput(event_scene.dem), work_dir=str(tmp_path)))
    assert plan.grid.width_px == 120


# --------------------------------------------------------------------------- radiometry contradictions


def test_8bit_radiometry_for_reflectance_is_refused(tmp_path, conv):
    assert gdal.Open(sample("pre")).GetRasterBand(1).DataType == gdal.GDT_UInt16
    with pytest.raises(InputDataError, match=r"Image type \(RADIOMETRY\): 8-bit RGB \(0-255\) was chosen, but the pre-event image "
                                             r".* holds values up to [\d,]+ \(99th percentile\)"):
        check_request(sample_request(conv, tmp_path, radiometry="8bit"))


def test_reflectance_radiometry_for_an_8bit_image_is_refused(tmp_path, event_scene, red_model):
    request = MappingRequest(red_model, RasterInput(event_scene.pre, (1, 2, 3)), RasterInput(event_scene.post, (1, 2, 3)),
                             RasterInput(event_scene.dem), radiometry="s2_l2a", work_dir=str(tmp_path))
    with pytest.raises(InputDataError, match="Sentinel-2 L2A reflectance was chosen, but the pre-event image .* is an 8-bit"):
        check_request(request)


def test_offset_radiometry_for_values_below_the_offset_is_refused(tmp_path, conv):
    with pytest.raises(InputDataError, match="the \\+1000 offset was chosen, but half the values of the pre-event image"):
        check_request(sample_request(conv, tmp_path, radiometry="s2_l2a_offset"))


def test_8bit_values_stored_as_uint16_read_as_reflectance_are_warned_about(tmp_path, event_scene, red_model):
    wide = write_raster(str(tmp_path / "pre16.tif"), gdal.Open(event_scene.pre).ReadAsArray().astype(np.uint16),
                        event_scene.geotransform, event_scene.epsg, gdal.GDT_UInt16)
    plan = check_request(MappingRequest(red_model, RasterInput(wide, (1, 2, 3)), RasterInput(event_scene.post, (1, 2, 3)),
                                        RasterInput(event_scene.dem), work_dir=str(tmp_path), radiometry="auto"))
    assert any("the pre-event image is read as Sentinel-2 L2A reflectance x 10000, but its values stay below 256"
               in note for note in plan.notes)


def test_reflectance_as_a_fraction_is_refused(tmp_path, event_scene, red_model):
    fraction = write_raster(str(tmp_path / "pre_fraction.tif"), gdal.Open(event_scene.pre).ReadAsArray() / 1000.0,
                            event_scene.geotransform, event_scene.epsg, gdal.GDT_Float32)
    request = MappingRequest(red_model, RasterInput(fraction, (1, 2, 3)), RasterInput(event_scene.post, (1, 2, 3)),
                             RasterInput(event_scene.dem), work_dir=str(tmp_path))  # auto: Float32 = reflectance
    with pytest.raises(InputDataError, match="values of the pre-event image .* stay below 2 .*scale the image by 10000"):
        check_request(request)


@pytest.mark.parametrize("unit, factor", [("", 1.0), ("m", 1.0), ("metre", 1.0), ("Meters", 1.0),
                                          ("m above sea level", 1.0), ("ft", FOOT), ("Feet", FOOT),
                                          ("US survey foot", 1200 / 3937), ("ftUS", 1200 / 3937), ("cm", 0.01),
                                          ("degree", None), ("dB", None)])
def test_elevation_units(unit, factor):
    from model.input_checks import unit_to_metres

    assert unit_to_metres(unit) == (None if factor is None else pytest.approx(factor))
