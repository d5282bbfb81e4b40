"""Tests of training/augment.py: geometric alignment, radiometry, validity, terrain."""

from dataclasses import replace

import numpy as np
import pytest

from model.terrain import terrain_features
from tests.helpers.tiny_models import tiny_card
from training.augment import NO_AUGMENTATION, AugmentSettings, augment_sample, sample_inputs

GSD_M = 10.0
BASE = 100.0
BUMP = 50.0
GEOMETRY_ONLY = replace(AugmentSettings(), radiometric=False)
DISCRETE_ONLY = replace(GEOMETRY_ONLY, p_affine=0.0)
ALWAYS_AFFINE = replace(AugmentSettings(), p_affine=1.0)


def l_shape(size):
    """An off-centre L: no flip or 90 degree rotation maps it onto itself."""
    shape = np.zeros((size, size), dtype=bool)
    shape[5:22, 7:14] = True  # the stem
    shape[16:22, 7:26] = True  # the foot
    return shape


def shape_sample(size=40):
    """The same L in pre, post (other colours), mask and DEM (a 50 m plateau, halo included)."""
    shape = l_shape(size)
    pre = np.where(shape[..., None], [240, 230, 220], [20, 30, 25]).astype(np.uint8)
    post = np.where(shape[..., None], [250, 245, 200], [40, 20, 10]).astype(np.uint8)
    dem = np.full((size + 2, size + 2), BASE, dtype=np.float32)
    dem[1:-1, 1:-1] += BUMP * shape
    valid = np.ones((size, size), dtype=np.uint8)
    valid[30:34, 2:5] = 0  # an asymmetric nodata hole
    return {"pre": pre, "post": post, "dem": dem, "mask": shape.astype(np.uint8), "valid": valid, "event": "test"}


def shape_of_image(image):
    return image.astype(np.float32).mean(axis=-1) > 100.0


def shape_of_dem(dem):
    interior = dem[1:-1, 1:-1]
    return np.isfinite(interior) & (interior > BASE + BUMP / 2)


def away_from_edges(mask, valid):
    """Valid pixels whose 3x3 neighbourhood is valid and of one mask value (1 px band excluded)."""
    padded_mask = np.pad(mask.astype(bool), 1, mode="edge")
    padded_valid = np.pad(valid.astype(bool), 1, mode="constant")
    size = mask.shape[0]
    windows_mask = [padded_mask[r : r + size, c : c + size] for r in range(3) for c in range(3)]
    windows_valid = [padded_valid[r : r + size, c : c + size] for r in range(3) for c in range(3)]
    uniform = np.all([w == mask.astype(bool) for w in windows_mask], axis=0)
    return uniform & np.all(windows_valid, axis=0)


def dihedral(array, flip_h, flip_v, k):
    if flip_h:
        array = array[:, ::-1]
    if flip_v:
        array = array[::-1]
    return np.rot90(array, k, axes=(0, 1))


DIHEDRAL = [(h, v, k) for h in (False, True) for v in (False, True) for k in range(4)]


def test_discrete_geometry_is_exact_and_identical_for_all_layers():
    sample = shape_sample()
    seen = set()
    for seed in range(24):
        out = augment_sample(sample, np.random.default_rng(seed), DISCRETE_ONLY)
        matches = [t for t in DIHEDRAL if np.array_equal(out["mask"], dihedral(sample["mask"], *t))]
        assert matches, f"seed {seed}: the mask is no flip/rotation of the input"
        transform = matches[0]
        seen.add(dihedral(sample["mask"], *transform).tobytes())
        for key in ("pre", "post", "dem", "valid"):
            np.testing.assert_array_equal(out[key], dihedral(sample[key], *transform), err_msg=f"seed {seed}: {key}")
        np.testing.assert_array_equal(shape_of_image(out["pre"]), out["mask"].astype(bool))
        np.testing.assert_array_equal(shape_of_image(out["post"]), out["mask"].astype(bool))
        np.testing.assert_array_equal(shape_of_dem(out["dem"]), out["mask"].astype(bool))
    assert len(seen) >= 6, "flips and 90 degree rotations should produce most of the 8 orientations"


@pytest.mark.parametrize("radiometric", [False, True])
def test_shape_stays_aligned_under_small_rotations_and_scaling(radiometric):
    sample = shape_sample()
    settings = replace(ALWAYS_AFFINE, radiometric=radiometric)
    for seed in range(40):
        out = augment_sample(sample, np.random.default_rng(seed), settings)
        mask = out["mask"].astype(bool)
        assert 100 < mask.sum() < 300, f"seed {seed}: the L (187 px) lost or gained too much area"
        core = away_from_edges(mask, out["valid"])
        assert core.sum() > 0.5 * core.size
        for name, found in (
            ("pre", shape_of_image(out["pre"])),
            ("post", shape_of_image(out["post"])),
            ("dem", shape_of_dem(out["dem"])),
        ):
            wrong = np.count_nonzero((found != mask) & core)
            assert wrong == 0, f"seed {seed}: {wrong} pixels of {name} disagree with the mask"


def linear_field_sample(size=32):
    """Images and DEM hold the same linear field f(i, j) = 3 i + j + 40 of the tile pixel (i, j)."""
    rows, cols = np.meshgrid(np.arange(-1, size + 1), np.arange(-1, size + 1), indexing="ij")
    field = 3.0 * rows + cols + 40.0  # (size + 2)^2, halo included: dem[i + 1, j + 1] = f(i, j)
    interior = field[1:-1, 1:-1]
    pre = np.stack([interior, 255 - interior, np.full_like(interior, 90)], axis=-1).astype(np.uint8)
    post = np.stack([np.full_like(interior, 10), interior, 0.5 * interior], axis=-1).astype(np.uint8)
    return {
        "pre": pre,
        "post": post,
        "dem": field.astype(np.float32),
        "mask": (interior > 100).astype(np.uint8),
        "valid": np.ones((size, size), dtype=np.uint8),
    }


def test_dem_halo_and_images_stay_aligned_to_a_fraction_of_a_pixel():
    """Bilinear resampling of a linear field is exact, so any offset between layers shows.

    A 1 px shift of the DEM against the images would change it by 1 to 4 (the field's
    gradient is (3, 1) per pixel); the tolerance is the uint8 rounding of the images.
    """
    sample = linear_field_sample()
    settings = replace(GEOMETRY_ONLY, p_affine=1.0, scale_elevations=False)
    for seed in range(30):
        out = augment_sample(sample, np.random.default_rng(seed), settings)
        core = away_from_edges(np.zeros_like(out["mask"]), out["valid"])
        assert core.sum() > 0.5 * core.size
        dem = out["dem"][1:-1, 1:-1]
        pre, post = out["pre"].astype(np.float64), out["post"].astype(np.float64)
        np.testing.assert_allclose(pre[..., 0][core], dem[core], atol=0.51, err_msg=f"seed {seed}")
        np.testing.assert_allclose(255 - pre[..., 1][core], dem[core], atol=0.51, err_msg=f"seed {seed}")
        np.testing.assert_allclose(post[..., 1][core], dem[core], atol=0.51, err_msg=f"seed {seed}")
        # Nearest-neighbour mask: off by at most half a source pixel per axis,
        # i.e. (3 + 1) / 2 / 0.9 field units; a whole-pixel error reaches 4 / 0.9.
        clear = core & (np.abs(dem - 100.0) > 2.8)
        np.testing.assert_array_equal(out["mask"][clear].astype(bool), dem[clear] > 100.0, err_msg=f"seed {seed}")


def test_pre_and_post_get_independent_radiometric_changes_but_the_same_geometry():
    sample = shape_sample()
    sample["post"] = sample["pre"].copy()
    differing = 0
    for seed in range(20):
        out = augment_sample(sample, np.random.default_rng(seed), ALWAYS_AFFINE)
        core = away_from_edges(out["mask"], out["valid"])  # blur differs at the shape's edge
        for key in ("pre", "post"):
            found = shape_of_image(out[key])[core]
            np.testing.assert_array_equal(found, out["mask"][core].astype(bool), err_msg=f"seed {seed}")
        differing += not np.array_equal(out["pre"], out["post"])
    assert differing >= 18


def test_colour_gains_are_drawn_separately_for_pre_and_post():
    settings = AugmentSettings(
        geometric=False,
        p_brightness_contrast=0.0,
        p_colour=1.0,
        p_gamma=0.0,
        p_blur=0.0,
        p_sharpen=0.0,
        p_noise=0.0,
    )
    size = 16
    grey = np.full((size, size, 3), 100, dtype=np.uint8)
    sample = {
        "pre": grey,
        "post": grey.copy(),
        "dem": np.zeros((size + 2, size + 2), np.float32),
        "mask": np.zeros((size, size), np.uint8),
        "valid": np.ones((size, size), np.uint8),
    }
    out = augment_sample(sample, np.random.default_rng(3), settings)
    gains = {key: out[key].reshape(-1, 3).mean(axis=0) / 100.0 for key in ("pre", "post")}
    for key, gain in gains.items():
        assert np.all((gain > 0.895) & (gain < 1.105)), (key, gain)
        assert np.ptp(out[key].reshape(-1, 3), axis=0).max() == 0, "one gain per channel, the same everywhere"
    ratio = gains["post"] / gains["pre"]
    assert np.ptp(ratio) > 0.01, "post/pre ratio is the same in every channel: gains were shared"
    np.testing.assert_array_equal(out["mask"], sample["mask"])
    np.testing.assert_array_equal(out["dem"], sample["dem"])


def test_same_seed_same_result_and_the_input_is_untouched():
    sample = shape_sample()
    copy = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in sample.items()}
    a = augment_sample(sample, np.random.default_rng(11))
    b = augment_sample(sample, np.random.default_rng(11))
    c = augment_sample(sample, np.random.default_rng(12))
    for key in ("pre", "post", "dem", "mask", "valid"):
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(sample[key], copy[key])
        assert a[key].dtype == sample[key].dtype and a[key].shape == sample[key].shape
    assert a["event"] == "test"
    assert any(not np.array_equal(a[key], c[key]) for key in ("pre", "post", "dem"))


def test_no_augmentation_returns_the_sample():
    sample = shape_sample()
    out = augment_sample(sample, np.random.default_rng(0), NO_AUGMENTATION)
    for key in ("pre", "post", "dem", "mask", "valid"):
        np.testing.assert_array_equal(out[key], sample[key])


def test_pixels_from_outside_the_tile_become_invalid_after_a_rotation():
    size = 64
    angle = 20.0
    settings = replace(
        GEOMETRY_ONLY, p_flip_h=0.0, p_flip_v=0.0, rot90_choices=(0,), p_affine=1.0,
        rotation_deg_range=(angle, angle), scale_range=(1.0, 1.0),
    )
    sample = {
        "pre": np.full((size, size, 3), 200, np.uint8),
        "post": np.full((size, size, 3), 150, np.uint8),
        "dem": np.full((size + 2, size + 2), 500.0, np.float32),
        "mask": np.ones((size, size), np.uint8),
        "valid": np.ones((size, size), np.uint8),
    }
    out = augment_sample(sample, np.random.default_rng(0), settings)
    valid = out["valid"].astype(bool)
    # The tile rotated about its centre leaves four corner triangles uncovered:
    # legs (L/2)(1 - (1 - sin a)/cos a) and (L/2)(1 - (1 - cos a)/sin a) each.
    a = np.radians(angle)
    legs = 0.5 * (1 - (1 - np.sin(a)) / np.cos(a)), 0.5 * (1 - (1 - np.cos(a)) / np.sin(a))
    expected = 4 * 0.5 * legs[0] * legs[1]
    assert abs((~valid).mean() - expected) < 0.01
    for corner in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert not valid[corner]
        assert np.isnan(out["dem"][corner])
    assert valid[size // 2 - 10 : size // 2 + 10, size // 2 - 10 : size // 2 + 10].all()
    assert np.all(out["pre"][~valid] == 0) and np.all(out["post"][~valid] == 0) and np.all(out["mask"][~valid] == 0)
    assert np.all(out["pre"][valid] == 200) and np.all(out["post"][valid] == 150) and np.all(out["mask"][valid] == 1)
    assert np.all(out["dem"][1:-1, 1:-1][valid] == 500.0)


def test_pixels_touching_nodata_become_invalid_under_resampling():
    size = 32
    valid = np.ones((size, size), np.uint8)
    valid[10:20, 12:18] = 0
    sample = {
        "pre": np.full((size, size, 3), 100, np.uint8),
        "post": np.full((size, size, 3), 100, np.uint8),
        "dem": np.zeros((size + 2, size + 2), np.float32),
        "mask": np.zeros((size, size), np.uint8),
        "valid": valid,
    }
    identity = replace(
        GEOMETRY_ONLY, p_flip_h=0.0, p_flip_v=0.0, rot90_choices=(0,), p_affine=1.0,
        rotation_deg_range=(0.0, 0.0), scale_range=(1.0, 1.0),
    )
    np.testing.assert_array_equal(augment_sample(sample, np.random.default_rng(0), identity)["valid"], valid)
    rotated = replace(identity, rotation_deg_range=(10.0, 10.0))
    out = augment_sample(sample, np.random.default_rng(0), rotated)
    hole = ~out["valid"].astype(bool)[4:28, 4:28]
    assert hole.sum() > valid[10:20, 12:18].size  # the 60 px hole grows by its resampling rim


def ramp_sample(size=16):
    """A planar ramp whose aspect is no multiple of 45 degrees (so no rotation is a mirror about the sun)."""
    rows, cols = np.meshgrid(np.arange(size + 2), np.arange(size + 2), indexing="ij")
    dem = (5.0 * cols + 2.0 * rows).astype(np.float32)
    return {
        "pre": np.full((size, size, 3), 120, np.uint8),
        "post": np.full((size, size, 3), 120, np.uint8),
        "dem": dem,
        "mask": np.zeros((size, size), np.uint8),
        "valid": np.ones((size, size), np.uint8),
    }


@pytest.mark.parametrize("k", [1, 2, 3])
def test_terrain_is_recomputed_from_the_rotated_dem_not_rotated(k):
    card = tiny_card()
    sample = ramp_sample()
    settings = replace(DISCRETE_ONLY, p_flip_h=0.0, p_flip_v=0.0, rot90_choices=(k,))
    out = augment_sample(sample, np.random.default_rng(0), settings)
    np.testing.assert_array_equal(out["dem"], np.rot90(sample["dem"], k))
    original, _ = sample_inputs(sample, card, GSD_M)
    augmented, _ = sample_inputs(out, card, GSD_M)
    rotated = np.rot90(original["terrain"], k, axes=(0, 1))
    # Slope does not depend on the direction the terrain faces ...
    np.testing.assert_allclose(augmented["terrain"][..., 1], rotated[..., 1], atol=1e-6)
    # ... hillshade does: the sun stays in the north-west (315 degrees).
    hillshade_step = 10.0 * card.input_for_role("terrain").channels[0].scale
    assert np.all(np.abs(augmented["terrain"][..., 0] - rotated[..., 0]) > hillshade_step)
    hillshade, _ = terrain_features(np.rot90(sample["dem"], k), GSD_M, GSD_M, card.terrain)
    np.testing.assert_allclose(augmented["terrain"][..., 0], hillshade / 127.5 - 1.0, atol=1e-6)


@pytest.mark.parametrize("scale_elevations", [True, False])
def test_zoom_scales_elevations_so_slopes_stay_true(scale_elevations):
    card = tiny_card()
    sample = ramp_sample(24)
    settings = replace(
        DISCRETE_ONLY, p_flip_h=0.0, p_flip_v=0.0, rot90_choices=(0,), p_affine=1.0,
        rotation_deg_range=(0.0, 0.0), scale_range=(1.1, 1.1), scale_elevations=scale_elevations,
    )
    out = augment_sample(sample, np.random.default_rng(0), settings)
    _, slope = terrain_features(out["dem"], GSD_M, GSD_M, card.terrain)
    _, original_slope = terrain_features(sample["dem"], GSD_M, GSD_M, card.terrain)
    core = slope[4:-4, 4:-4]
    flattened = np.degrees(np.arctan(np.tan(np.radians(original_slope[0, 0])) / 1.1))
    expected = original_slope[0, 0] if scale_elevations else flattened
    np.testing.assert_allclose(core, expected, atol=1e-3)


def test_sample_inputs_scales_with_the_card_and_masks_invalid_pixels():
    card = tiny_card()
    sample = ramp_sample()
    sample["pre"][..., 0] = 255
    sample["post"][..., 2] = 0
    sample["mask"][2:6, 2:6] = 1
    sample["valid"][0, :] = 0
    sample["dem"][8, 8] = np.nan  # centre of tile pixel (7, 7): no terrain there
    inputs, target = sample_inputs(sample, card, GSD_M)
    assert set(inputs) == {"pre_image", "post_image", "terrain"}
    assert inputs["pre_image"].shape == (16, 16, 3) and inputs["terrain"].shape == (16, 16, 2)
    assert all(v.dtype == np.float32 for v in inputs.values()) and target.dtype == np.float32
    assert target.shape == (16, 16, 2)
    expected_valid = np.ones((16, 16), bool)
    expected_valid[0, :] = False
    expected_valid[7, 7] = False
    np.testing.assert_array_equal(target[..., 1], expected_valid)
    np.testing.assert_array_equal(target[..., 0], sample["mask"].astype(bool) & expected_valid)
    for value in inputs.values():
        assert np.all(value[~expected_valid] == 0.0) and np.all(np.isfinite(value))
    np.testing.assert_allclose(inputs["pre_image"][expected_valid][:, 0], 1.0)
    np.testing.assert_allclose(inputs["pre_image"][expected_valid][:, 1], 120 / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_allclose(inputs["post_image"][expected_valid][:, 2], -1.0)
    # Neighbours of the NaN elevation keep terrain (gdaldem's -compute_edges rule of the card).
    assert target[6, 6, 1] == 1.0 and target[8, 8, 1] == 1.0


def test_settings_are_checked():
    with pytest.raises(ValueError, match="p_noise"):
        AugmentSettings(p_noise=1.5)
    with pytest.raises(ValueError, match="p_blur"):
        AugmentSettings(p_blur=0.6, p_sharpen=0.6)
    with pytest.raises(ValueError, match="scale_range"):
        AugmentSettings(scale_range=(1.1, 0.9))
    with pytest.raises(ValueError, match="rot90_choices"):
        AugmentSettings(rot90_choices=(4,))


def test_malformed_samples_are_refused():
    sample = shape_sample()
    sample["dem"] = sample["dem"][1:-1, 1:-1]
    with pytest.raises(ValueError, match="dem"):
        augment_sample(sample, np.random.default_rng(0))


def test_a_loss_mask_follows_the_geometry_and_limits_the_loss_weight():
    from training.augment import LOSS_MASK_KEY

    sample = shape_sample()
    sample[LOSS_MASK_KEY] = sample["mask"].copy()  # the same L: it must stay where the mask goes
    for seed in range(12):
        out = augment_sample(sample, np.random.default_rng(seed), ALWAYS_AFFINE)
        np.testing.assert_array_equal(out[LOSS_MASK_KEY], out["mask"])
        inputs, target = sample_inputs(out, tiny_card(), GSD_M)
        weight = target[..., 1] > 0.5
        assert not (weight & ~out[LOSS_MASK_KEY].astype(bool)).any()
    plain = sample_inputs(shape_sample(), tiny_card(), GSD_M)[1]
    limited = sample_inputs(sample, tiny_card(), GSD_M)[1]
    assert plain[..., 1].sum() > limited[..., 1].sum() > 0
    np.testing.assert_array_equal(plain[..., 0], limited[..., 0])  # labels unchanged, only the weight
