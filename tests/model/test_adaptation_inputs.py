"""model.adaptation_inputs: the validation split and the checks of an analyst's mapping (no TensorFlow)."""

import os

import numpy as np
import pytest

from model.adaptation_inputs import (BLOCK_PX, GAP_PX, REACH_PX, AdaptationRequest, check_adaptation, training_part,
                                     validation_split)
from model.errors import InputDataError
from model.grid import RasterInput
from model.vectors import VectorInput
from tests.conftest import REPO_ROOT
from tests.helpers.scenes import make_event_scene, write_polygons


def test_validation_blocks_are_whole_blocks_inside_the_area_with_landslides_on_both_sides():
    inside = np.zeros((200, 300), dtype=bool)
    inside[:, :250] = True
    landslide = np.zeros_like(inside)
    landslide[5::20, 7::23] = True
    validation, training = validation_split(inside, landslide & inside, 0.2, seed=4)
    assert not (validation & ~inside).any()
    assert 0.12 < validation.sum() / inside.sum() < 0.28
    assert (validation & landslide).any() and (training & landslide).any()
    np.testing.assert_array_equal(training, training_part(inside, landslide & inside, validation))
    blocks = validation[: 200 // BLOCK_PX * BLOCK_PX, :224].reshape(200 // BLOCK_PX, BLOCK_PX, 7, BLOCK_PX)
    per_block = blocks.sum(axis=(1, 3))
    assert set(np.unique(per_block)) <= {0, BLOCK_PX * BLOCK_PX}  # whole blocks only
    np.testing.assert_array_equal(validation, validation_split(inside, landslide & inside, 0.2, seed=4)[0])


def test_training_keeps_away_from_validation_blocks_and_their_landslides():
    inside = np.ones((96, 96), dtype=bool)
    validation = np.zeros_like(inside)
    validation[32:64, 32:64] = True  # with its gap: rows and columns 28..67
    landslide = np.zeros_like(inside)
    landslide[40:50, 20:40] = True   # cut by the block's edge: learned nowhere
    landslide[70:80, 60:90] = True   # beside the gap, not in it: trained on
    landslide[62, 0:31] = True       # a long one (a merged swarm) entering the gap: cut REACH_PX beyond it
    training = training_part(inside, landslide, validation)
    assert not (training & validation).any()
    assert not training[32 - GAP_PX:64 + GAP_PX, 32 - GAP_PX:64 + GAP_PX].any()   # the gap
    assert training[32 - GAP_PX - 1, 50] and training[50, 64 + GAP_PX]         # just outside it
    assert not (training & landslide)[40:50, 20:40].any()
    assert (training & landslide)[70:80, 60:90].all()
    cut = 32 - GAP_PX - REACH_PX
    assert (training & landslide)[62, :cut].all() and not (training & landslide)[62, cut:31].any()
    assert training[0, 0] and not training_part(inside & False, landslide, validation).any()


def test_a_single_landslide_cannot_be_split_and_is_refused():
    inside = np.ones((100, 100), dtype=bool)
    landslide = np.zeros_like(inside)
    landslide[40:44, 40:44] = True
    with pytest.raises(InputDataError, match="too few or too clustered"):
        validation_split(inside, landslide, 0.2, seed=0)


def _box(scene, row, col, height, width):
    x0, dx, _, y0, _, dy = scene.geotransform
    x_a, x_b, y_a, y_b = x0 + col * dx, x0 + (col + width) * dx, y0 + row * dy, y0 + (row + height) * dy
    return f"POLYGON(({x_a} {y_b},{x_b} {y_b},{x_b} {y_a},{x_a} {y_a},{x_a} {y_b}))"


def test_check_adaptation_measures_the_area_and_refuses_an_area_outside_the_inputs(tmp_path):
    scene = make_event_scene(str(tmp_path), rows=200, cols=200, slides=[(20, 20, 5, 5), (150, 60, 6, 4)])
    landslides = write_polygons(str(tmp_path / "l.gpkg"), [_box(scene, 20, 20, 5, 5), _box(scene, 150, 60, 6, 4)],
                                scene.epsg)
    area = write_polygons(str(tmp_path / "a.gpkg"), [_box(scene, 0, 0, 200, 100)], scene.epsg)
    request = AdaptationRequest(os.path.join(REPO_ROOT, "model", "default_model.onnx"),
                                RasterInput(scene.pre, (1, 2, 3)), RasterInput(scene.post, (1, 2, 3)),
                                RasterInput(scene.dem), VectorInput(landslides), VectorInput(area))
    plan = check_adaptation(request)
    assert plan.area_px == 200 * 100 and plan.landslide_px == 25 + 24 and plan.landslides_used == 2
    far = write_polygons(str(tmp_path / "far.gpkg"), [_box(scene, 0, 5000, 200, 100)], scene.epsg)
    with pytest.raises(InputDataError, match="lies outside the area covered by all inputs"):
        check_adaptation(AdaptationRequest(request.base_model, request.pre, request.post, request.dem,
                                           request.landslides, VectorInput(far)))
