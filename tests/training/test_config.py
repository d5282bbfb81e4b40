"""Reading a run configuration: settings that would fail only inside training are refused when read."""

import pytest

from training.config import ConfigError, parse_config

EVENT = {"name": "a", "pre": "pre.tif", "post": "post.tif", "dem": "dem.tif", "inventory": "slides.gpkg"}


def config(**run):
    return parse_config({"run": {"output_dir": "out", **run}, "events": [EVENT]}, "/base", "run.toml")


def test_a_valid_configuration_resolves_paths_and_layers():
    parsed = config(tile_px=64, context_px=16)
    assert parsed.run.output_dir == "/base/out" and parsed.events[0].pre == "/base/pre.tif"
    event = parse_config({"run": {"output_dir": "o"}, "events": [{**EVENT, "test_area": "areas.gpkg|layername=test"}]},
                         "/base").events[0]
    assert (event.test_area.path, event.test_area.layer) == ("/base/areas.gpkg", "test")


@pytest.mark.parametrize("tile_px", [100, 0, -64, 64.0, True])
def test_a_tile_size_the_network_cannot_take_is_refused_naming_the_setting(tile_px):
    with pytest.raises(ConfigError, match=r"run.toml: \[run\] tile_px must be a positive multiple of 32"):
        config(tile_px=tile_px, context_px=8)


@pytest.mark.parametrize("context_px", [32, 40, -1, 8.5])
def test_a_context_margin_that_leaves_no_core_is_refused_naming_the_setting(context_px):
    with pytest.raises(ConfigError, match=r"\[run\] context_px must be a whole number with 0 <= 2 x context_px < "
                                          r"tile_px.*tile_px 64"):
        config(tile_px=64, context_px=context_px)


def test_the_defaults_are_valid():
    assert config().run.tile_px == 224 and config().run.context_px == 56
