"""Families of simulated events, domain randomisation, real backgrounds and generated samples."""

import numpy as np
import pytest

from model.card import ImageNormalisation
from training.augment import check_sample
from training.generated import cut_samples, encode, event_layers
from training.real_backgrounds import RealBackgroundScene
from training.simulate_families import (
    FAMILIES,
    HELD_OUT_FAMILIES,
    TRAINING_FAMILIES,
    RandomisedScene,
    Widenings,
    cast_shadow,
    draw_look,
)
from training.simulate_scene import GRASS
from tests.helpers.tiny_models import tiny_card

SIZE = 160


def test_held_out_families_are_never_training_families():
    assert set(HELD_OUT_FAMILIES) & set(TRAINING_FAMILIES) == set()
    assert set(HELD_OUT_FAMILIES) | set(TRAINING_FAMILIES) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_renders_a_reproducible_event(family):
    first = RandomisedScene(FAMILIES[family], 3, SIZE, 10.0).render()
    again = RandomisedScene(FAMILIES[family], 3, SIZE, 10.0).render()
    other = RandomisedScene(FAMILIES[family], 4, SIZE, 10.0).render()
    for key in ("pre", "post", "event"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["post"], other["post"])
    assert first["pre"].shape == (3, SIZE, SIZE) and first["event"].dtype == bool
    assert np.isfinite(first["post"]).all() and first["post"].min() >= 0


def test_looks_vary_what_the_issue_lists():
    rng = np.random.default_rng(0)
    looks = [draw_look(rng, FAMILIES["forested_mountains"]) for _ in range(200)]
    seasons = {(look.pre.season, look.post.season) for look in looks}
    assert len(seasons) > 8                                    # pre and post in different seasons
    assert {look.pre.snow for look in looks} | {look.post.snow for look in looks} >= {"none", "peaks", "gullies"}
    assert not any(look.pre.snow != "none" and look.post.snow != "none" for look in looks)  # one image only
    elevations = [look.pre.sun_elevation_deg for look in looks]
    assert 15 <= min(elevations) < 20 and 60 < max(elevations) <= 65
    assert max(look.misregistration_px for look in looks) <= 1.0
    scar_brightness = [sum(look.scar_colour) for look in looks]
    assert min(scar_brightness) < 0.4 < 0.6 < max(scar_brightness)    # dark wet soil .. pale pumice
    dense = [look.swarm_per_km2 for look in looks if look.swarm_area_fraction < 1]
    assert dense and min(dense) >= 60                          # co-seismic swarms: hundreds per km2


def test_dry_grassland_lets_a_scar_be_darker_than_the_slope_it_strips():
    family = FAMILIES["tropical_hills"]
    darker = 0
    for seed in range(6):
        plain = RandomisedScene(family, seed, SIZE, 10.0)
        dry = RandomisedScene(family, seed, SIZE, 10.0, widenings=Widenings(dry_grassland=1.0))
        assert dry.details["dry_grassland"] and not plain.details["dry_grassland"]
        assert dry.look == plain.look                       # the event's look is drawn as without it
        assert dry.style.grass[0] > 1.5 * plain.style.grass[0]          # straw, not green
        assert dry.style.forest_cover < 0.5 * plain.style.forest_cover
        layers = dry.render()
        brightness = layers["post"].mean(axis=0)
        scar = layers["event"] & layers["post_valid"] & ~layers["cloud_mask"]
        grass = (dry.cover == GRASS) & ~layers["event"] & layers["post_valid"] & ~layers["cloud_mask"]
        if scar.sum() > 50 and np.median(brightness[scar]) < np.median(brightness[grass]):
            darker += 1
    assert darker >= 1


def test_dry_grassland_is_off_unless_asked():
    family = FAMILIES["forested_mountains"]
    assert not RandomisedScene(family, 5, SIZE, 10.0).details["dry_grassland"]
    assert not RandomisedScene(family, 5, SIZE, 10.0, widenings=Widenings()).details["dry_grassland"]
    chosen = [RandomisedScene(family, seed, SIZE, 10.0, widenings=Widenings(dry_grassland=0.35)).details["dry_grassland"]
              for seed in range(40)]
    assert 5 <= sum(chosen) <= 25


def test_forest_snow_lies_in_a_winter_image_on_the_slopes_the_sun_lights_least():
    from training.simulate_scene import FOREST, _illumination

    family = FAMILIES["forested_mountains"]
    seen = 0
    for seed in range(4):
        plain = RandomisedScene(family, seed, SIZE, 10.0)
        snowy = RandomisedScene(family, seed, SIZE, 10.0, widenings=Widenings(forest_snow=1.0))
        assert snowy.details["forest_snow"] and not plain.details["forest_snow"]
        which = "pre" if snowy.look.pre.snow == "forest_floor" else "post"
        image_look = getattr(snowy.look, which)
        assert image_look.season == "leaf_off" and 15 <= image_look.sun_elevation_deg <= 35
        assert snowy.look.scar_colour == plain.look.scar_colour          # the event itself is drawn as without it
        layers = snowy.render()
        snow = layers["cloud_mask"]                                      # where the share passes a third
        light = _illumination(snowy.dem, 10.0, image_look.sun_azimuth_deg, image_look.sun_elevation_deg, 0.0)
        forest = snowy.cover == FOREST
        if (snow & forest).sum() > 100 and (~snow & forest).sum() > 100:
            seen += 1
            assert np.median(light[snow & forest]) < np.median(light[~snow & forest])   # shaded slopes keep it
        assert 0.01 < snow.mean() < 0.8                                   # patches, not the whole scene
    assert seen >= 2
    assert not any(RandomisedScene(family, seed, SIZE, 10.0).details["forest_snow"] for seed in range(10))


def test_a_ridge_casts_its_shadow_away_from_the_sun():
    dem = np.zeros((60, 60))
    dem[:, 30] = 200.0                                        # a north-south wall
    shadow = cast_shadow(dem, 10.0, azimuth_deg=90.0, elevation_deg=30.0)   # sun in the east
    assert shadow[:, 20:29].all() and not shadow[:, 31:].any()
    assert not cast_shadow(dem, 10.0, 90.0, 89.0)[:, :25].any()              # high sun: a short shadow


def test_real_backgrounds_keep_the_pair_and_label_only_what_was_drawn():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.02, 0.12, (3, 300, 300)).astype(np.float32)
    pairs = {"place": (base, base * 1.05)}
    scene = RealBackgroundScene(pairs, 5, 256, 10.0)
    layers = scene.render()
    assert layers["pre"].shape == (3, 256, 256)
    changed = np.abs(layers["post"] - layers["pre"] * 1.0).mean(axis=0)
    if layers["event"].any():
        assert changed[layers["event"]].mean() > 3 * changed[~layers["event"]].mean()


def test_generated_samples_are_normalised_like_the_plugin_and_fit_the_tile_store_format():
    card = tiny_card(image_normalisation=ImageNormalisation("scene_dark_median", min_valid_pixels=1000))
    layers = event_layers("volcanic_plateau", 8, card, size_px=SIZE)
    assert layers["pre"].dtype == np.uint8 and layers["pre"].shape == (3, SIZE, SIZE)
    valid = layers["valid"]
    assert 30 < np.median(layers["post"][:, valid]) < 70      # the typical surface sits near 48
    samples = cut_samples(layers, 64, 5, np.random.default_rng(0))
    assert len(samples) == 5 and all(check_sample(s) == 64 for s in samples)


def test_encodings_are_what_users_have():
    rng = np.random.default_rng(2)
    reflectance = rng.uniform(0.0, 0.4, (3, 64, 64)).astype(np.float32)
    l2a = encode(reflectance, "s2_l2a", rng)
    offset = encode(reflectance, "s2_l2a_offset", rng)
    np.testing.assert_allclose(offset - l2a, 1000.0, atol=1.0)
    eight = encode(reflectance, "8bit", rng)
    assert eight.min() >= 1 and eight.max() <= 255


def test_weight_parts_round_trip_and_stay_under_the_part_size(tmp_path):
    from training.network import build_resunet
    from training.train_generated import NPZ_PART_BYTES, load_weight_parts, save_weight_parts

    network = build_resunet(width=0.125, l2=0.0)
    paths = save_weight_parts(network, str(tmp_path / "w"))
    assert all((tmp_path / p).stat().st_size <= NPZ_PART_BYTES * 1.05 for p in paths)
    other = build_resunet(width=0.125, l2=0.0)
    load_weight_parts(other, paths)
    for a, b in zip(network.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_families_are_written_as_event_folders(tmp_path):
    from training.simulate import simulate_event

    event = simulate_event(str(tmp_path / "e"), None, 4, size_px=128, family="semi_arid_ranges", radiometry="s2_l2a")
    assert event.style == "semi_arid_ranges" and (tmp_path / "e" / "inventory.gpkg").exists()


def test_a_trainee_resumes_from_its_saved_parts_and_replaces_them(tmp_path):
    from training.train_generated import _Trainee

    first = _Trainee(str(tmp_path), 0.125, 96, ["forested_mountains"], 1e-4, log=lambda m: None)
    first.state["steps"] = 7
    first.save()
    parts = first.state["weights"]
    assert parts and all((tmp_path / "width_0.125" / p).exists() for p in parts)
    again = _Trainee(str(tmp_path), 0.125, 96, ["forested_mountains"], 1e-4, log=lambda m: None)
    assert again.state["steps"] == 7
    assert float(again.network.optimizer.learning_rate.numpy()) == pytest.approx(again.plan.at(7), rel=1e-6)
    for a, b in zip(first.network.get_weights(), again.network.get_weights()):
        np.testing.assert_array_equal(a, b)
    again.state["steps"] = 9
    again.save()
    assert not any((tmp_path / "width_0.125" / p).exists() for p in parts)   # the old parts are gone


def test_the_long_learning_rate_plan_is_the_cosine_every_run_followed():
    import keras

    from training.train_generated import LearningRatePlan

    plan, cosine = LearningRatePlan(3e-4), keras.optimizers.schedules.CosineDecay(3e-4, decay_steps=20_000, alpha=0.1)
    for step in (0, 4109, 12_000, 20_000, 31_000):
        assert plan.at(step) == pytest.approx(float(cosine(step)), rel=1e-5)


def test_an_annealed_run_warms_up_then_falls_to_its_floor_from_its_own_first_step():
    from training.train_generated import LearningRatePlan

    plan = LearningRatePlan(1e-4, first_step=4109, anneal_steps=2400, anneal_to=0.1, warmup_steps=100)
    assert plan.at(4109) == pytest.approx(1e-6)                      # first step of the warm-up
    assert plan.at(4109 + 99) == pytest.approx(1e-4)                 # last step of the warm-up
    assert plan.at(4109 + 100 + 1200) == pytest.approx(0.55e-4)      # half way down the cosine
    assert plan.at(4109 + 100 + 2400) == pytest.approx(1e-5)
    assert plan.at(50_000) == pytest.approx(1e-5)                    # held after
    rates = [plan.at(s) for s in range(4109 + 100, 4109 + 2600, 50)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError):
        LearningRatePlan(1e-4, anneal_steps=10, anneal_to=0.0)


def test_a_trainee_trains_each_step_at_its_plans_rate(tmp_path):
    from training.train_generated import _Trainee

    trainee = _Trainee(str(tmp_path), 0.125, 96, ["forested_mountains"], 1e-3, log=lambda m: None,
                       anneal_steps=10, anneal_to=0.5, warmup_steps=4)
    names = {spec.role: spec for spec in trainee.card.inputs}
    x = {spec.tensor_name: np.zeros((1, 96, 96, len(spec.channels)), np.float32) for spec in names.values()}
    target = np.zeros((1, 96, 96, 2), np.float32)
    target[..., 1] = 1.0
    used = []
    for _ in range(6):
        step = trainee.state["steps"]
        trainee.step(x, target)
        used.append(float(trainee.network.optimizer.learning_rate.numpy()))
        assert used[-1] == pytest.approx(trainee.plan.at(step), rel=1e-6)
    assert used[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3]) and used[5] < used[4]


@pytest.mark.parametrize("checkpoint", ["families/width_0.125", "default_model", "dry_grassland"])
def test_the_committed_checkpoint_loads(checkpoint):
    import json
    import os

    from training.network import build_resunet
    from training.train_generated import load_weight_parts

    folder = os.path.join(os.path.dirname(__file__), "..", "..", "training", "checkpoints", *checkpoint.split("/"))
    with open(os.path.join(folder, "state.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    network = build_resunet(width=state["width"], l2=1e-5)
    load_weight_parts(network, [os.path.join(folder, p) for p in state["weights"]])
    assert state["steps"] > 0


def _teacher_file(folder, card, seed=0, **overrides):
    import dataclasses
    import os

    from tests.helpers.tiny_models import conv_model

    path = os.path.join(str(folder), f"teacher_{seed}.onnx")
    card = dataclasses.replace(tiny_card(), inputs=card.inputs, image_normalisation=card.image_normalisation,
                               terrain=card.terrain, reflectance_saturation=card.reflectance_saturation, **overrides)
    conv_model(path, seed=seed, card=card)
    return path


def test_teachers_replace_the_mask_by_their_mean_probability_and_keep_the_validity(tmp_path):
    from model.session import LandslideModel
    from training.train_generated import Teachers, generated_card

    card = generated_card(0.125, tile_px=96)
    paths = [_teacher_file(tmp_path, card, seed) for seed in (1, 2)]
    rng = np.random.default_rng(5)
    x = {spec.role: rng.uniform(-1, 1, (2, 64, 64, len(spec.channels))).astype(np.float32) for spec in card.inputs}
    target = np.zeros((2, 64, 64, 2), np.float32)
    target[:, 20:30, 20:30, 0] = 1.0
    target[..., 1] = rng.random((2, 64, 64)) < 0.8
    each = [LandslideModel(p, 1).predict(x) for p in paths]
    assert not np.allclose(each[0], each[1])  # two different teachers: the mean is not either one
    soft = Teachers(paths, 1.0, card, threads=1).targets(x, target)
    np.testing.assert_allclose(soft[..., 0], (each[0] + each[1]) / 2, atol=1e-6)
    np.testing.assert_array_equal(soft[..., 1], target[..., 1])
    half = Teachers(paths, 0.5, card, threads=1).targets(x, target)
    np.testing.assert_allclose(half[..., 0], 0.5 * target[..., 0] + 0.25 * (each[0] + each[1]), atol=1e-6)
    assert target[..., 0].max() == 1.0 and target[..., 0].sum() == 200  # the caller's target is left as it was


def test_a_teacher_that_reads_its_inputs_otherwise_is_refused(tmp_path):
    import dataclasses

    from model.card import ImageNormalisation
    from training.train_generated import TeacherError, Teachers, generated_card

    card = generated_card(0.125, tile_px=96)
    other = dataclasses.replace(card, image_normalisation=ImageNormalisation())
    assert other.image_normalisation != card.image_normalisation
    with pytest.raises(TeacherError, match="its card's image_normalisation differs"):
        Teachers([_teacher_file(tmp_path, other)], 1.0, card, threads=1)
    with pytest.raises(TeacherError, match=r"share of the target must be in \(0, 1\], not 0"):
        Teachers([_teacher_file(tmp_path, card, seed=3)], 0.0, card, threads=1)
