"""Scene-adaptive image normalisation: one definition for plugin and trainer."""

import json

import numpy as np
import pytest
from osgeo import gdal

from model.card import ImageNormalisation, card_from_json
from model.errors import InputDataError, ModelCardError
from model.grid import RasterInput
from model.pipeline import MappingRequest, map_landslides
from model.preprocess import SceneStatistics, image_for_model, image_to_8bit, image_to_reflectance
from tests.helpers.scenes import make_event_scene, write_raster
from tests.helpers.tiny_models import red_difference_model, tiny_card

gdal.UseExceptions()
SCENE = ImageNormalisation(method="scene_dark_median")


def normalised(image, radiometry="s2_l2a", valid=None):
    stats = SceneStatistics()
    reflectance = image_to_reflectance(image, radiometry)
    stats.add(reflectance, np.ones(image.shape[1:], bool) if valid is None else valid)
    card = tiny_card(image_normalisation=SCENE)
    return image_for_model(image, radiometry, card, stats.normaliser(SCENE, "test image"))


def surface(seed=0, shape=(3, 200, 200)):
    rng = np.random.default_rng(seed)
    image = rng.gamma(4.0, 150.0, shape) + 300.0        # L2A-like reflectance x 10000
    image[:, 50:70, 80:120] = 2500.0                     # a bright scar
    return image


def test_cards_without_the_field_keep_the_old_scaling():
    card = card_from_json(tiny_card().to_json())
    assert card.image_normalisation.method == "none"
    values = np.array([[[0.0, 1000.0, 4000.0]]] * 3)
    np.testing.assert_allclose(image_for_model(values, "s2_l2a", card), image_to_8bit(values, "s2_l2a", 2000.0))


def test_the_field_round_trips_and_is_checked():
    card = tiny_card(image_normalisation=SCENE)
    assert card_from_json(card.to_json()).image_normalisation == SCENE
    data = json.loads(card.to_json())
    data["image_normalisation"]["method"] = "per_tile"
    with pytest.raises(ModelCardError, match="image_normalisation.method"):
        card_from_json(json.dumps(data))
    data["image_normalisation"] = {"method": "scene_dark_median", "dark_quantile": 0.6}
    with pytest.raises(ModelCardError, match="dark_quantile"):
        card_from_json(json.dumps(data))


def test_haze_gain_and_processing_offset_are_taken_out():
    image = surface()
    base = normalised(image)
    hazy = normalised(image * np.array([0.8, 0.9, 1.15])[:, None, None] + np.array([150, 250, 500])[:, None, None])
    offset = normalised(image + 1000.0, "s2_l2a_offset")
    assert np.abs(hazy - base).mean() < 1.0 and np.abs(offset - base).mean() < 0.5
    # the scar stays far brighter than the surface around it
    assert base[:, 60, 100].min() > 3.5 * np.median(base)
    # 8-bit composites of the same surface give the same numbers (up to quantisation)
    eight = normalised(np.clip(image * 255 / 3000, 0, 255).round(), "8bit")
    assert np.abs(eight - base).mean() < 2.0


def test_nodata_and_masked_pixels_do_not_move_the_statistics():
    image = surface()
    valid = np.ones(image.shape[1:], bool)
    valid[:, :120] = False
    clouded = image.copy()
    clouded[:, :, :120] = 9000.0
    np.testing.assert_allclose(normalised(clouded, valid=valid)[:, :, 120:],
                               normalised(image[:, :, 120:])[:, :, :], atol=0.5)


def test_too_few_valid_pixels_are_refused():
    stats = SceneStatistics()
    stats.add(image_to_reflectance(surface(), "s2_l2a"), np.zeros((200, 200), bool))
    with pytest.raises(InputDataError, match="post-event image has only 0 valid pixels"):
        stats.normaliser(SCENE, "post-event image")


def test_mapping_with_a_normalising_card_ignores_a_gain_and_offset_of_one_image(tmp_path):
    scene = make_event_scene(str(tmp_path / "scene"), rows=150, cols=160)
    model = red_difference_model(str(tmp_path / "red.onnx"), gain=0.05,
                                 card=tiny_card(image_normalisation=ImageNormalisation("scene_dark_median",
                                                                                        min_valid_pixels=1000)))
    post = gdal.Open(scene.post).ReadAsArray().astype(np.float32)
    brighter = write_raster(str(tmp_path / "post_hazy.tif"), np.clip(post * 1.2 + 30, 0, 255).astype(np.uint8),
                            scene.geotransform, scene.epsg)
    outputs = []
    for name, post_path in (("plain", scene.post), ("hazy", brighter)):
        request = MappingRequest(model, RasterInput(scene.pre, (1, 2, 3)), RasterInput(post_path, (1, 2, 3)),
                                 RasterInput(scene.dem, (1,)), probability_path=str(tmp_path / f"{name}.tif"),
                                 window_px=64, work_dir=str(tmp_path))
        logs = []
        map_landslides(request, log=logs.append)
        assert any("Scene normalisation of the post-event image" in line for line in logs)
        outputs.append(gdal.Open(str(tmp_path / f"{name}.tif")).ReadAsArray())
    assert np.abs(outputs[0] - outputs[1]).max() < 0.02


def test_a_scene_with_too_few_valid_pixels_is_refused_before_any_window_runs(tmp_path):
    scene = make_event_scene(str(tmp_path / "scene"), rows=60, cols=60)
    model = red_difference_model(str(tmp_path / "red.onnx"), card=tiny_card(image_normalisation=SCENE))
    request = MappingRequest(model, RasterInput(scene.pre, (1, 2, 3)), RasterInput(scene.post, (1, 2, 3)),
                             RasterInput(scene.dem, (1,)), probability_path=str(tmp_path / "p.tif"),
                             work_dir=str(tmp_path))
    with pytest.raises(InputDataError, match="needs at least 10000"):
        map_landslides(request)
    assert not (tmp_path / "p.tif").exists()


@pytest.mark.parametrize("value, message", [
    ("scene", "the field 'image_normalisation' must be an object"),
    ({"dark_quantile": "0.1"}, "the field 'image_normalisation.dark_quantile' must be a number"),
    ({"min_valid_pixels": 2.5}, "the field 'image_normalisation.min_valid_pixels' must be a whole number"),
    ({"min_valid_pixels": True}, "the field 'image_normalisation.min_valid_pixels' must be a whole number"),
    ({"reference_value": 1e-9}, "the field 'image_normalisation.reference_value' is 1e-09, outside"),
    ({"gain": 2}, "the field 'image_normalisation.gain' is not a field of the image normalisation"),
])
def test_normalisation_fields_are_checked_by_name(value, message):
    data = json.loads(tiny_card().to_json())
    data["image_normalisation"] = value
    with pytest.raises(ModelCardError, match=message.replace("(", r"\(").replace(")", r"\)")):
        card_from_json(json.dumps(data))
