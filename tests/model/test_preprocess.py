"""Image radiometry and card-driven scaling."""

import numpy as np
import pytest
from osgeo import gdal

from model.errors import InputDataError
from model.preprocess import image_to_8bit, model_inputs, resolve_radiometry
from tests.helpers.tiny_models import tiny_card


def test_auto_radiometry_follows_the_data_type():
    assert resolve_radiometry("auto", gdal.GDT_Byte) == "8bit"
    assert resolve_radiometry("auto", gdal.GDT_UInt16) == "s2_l2a"
    assert resolve_radiometry("s2_l2a_offset", gdal.GDT_UInt16) == "s2_l2a_offset"
    with pytest.raises(InputDataError, match="Unknown image radiometry"):
        resolve_radiometry("16bit", gdal.GDT_UInt16)


def test_sentinel2_reflectance_becomes_a_true_colour_composite():
    reflectance = np.array([0.0, 1000.0, 2000.0, 4000.0])
    np.testing.assert_allclose(image_to_8bit(reflectance, "s2_l2a", 2000.0), [0, 127.5, 255, 255])
    np.testing.assert_allclose(image_to_8bit(reflectance + 1000, "s2_l2a_offset", 2000.0), [0, 127.5, 255, 255])
    np.testing.assert_allclose(image_to_8bit(np.array([-5.0, 17.0, 300.0]), "8bit", 2000.0), [0, 17, 255])


def test_model_inputs_apply_the_card_and_zero_invalid_pixels():
    card = tiny_card()
    pre = np.full((3, 2, 2), 255.0)
    post = np.zeros((3, 2, 2))
    hillshade = np.full((2, 2), 127.5)
    slope = np.full((2, 2), 90.0)
    valid = np.array([[True, True], [True, False]])
    inputs = model_inputs(pre, post, hillshade, slope, valid, card)
    assert inputs["pre_image"].shape == (2, 2, 3) and inputs["terrain"].shape == (2, 2, 2)
    assert inputs["pre_image"][0, 0].tolist() == [1.0, 1.0, 1.0]
    assert inputs["post_image"][0, 0].tolist() == [-1.0, -1.0, -1.0]
    assert inputs["terrain"][0, 0].tolist() == pytest.approx([0.0, 1.0])
    for array in inputs.values():
        assert (array[1, 1] == 0).all() and array.dtype == np.float32
