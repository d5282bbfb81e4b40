"""Run configuration: the events to learn from and the run settings, from a TOML file.

Example (paths are relative to the config file)::

    [run]
    output_dir = "runs/combined"
    gsd_m = 10.0
    tile_px = 224
    width = 0.25
    batch_size = 4
    epochs = 50
    seed = 42

    [[events]]
    name = "hokkaido_2018"
    pre = "events/hokkaido/pre.tif"
    post = "events/hokkaido/post.tif"
    dem = "events/hokkaido/dem.tif"
    inventory = "events/hokkaido/inventory.gpkg"
    train_area = "events/hokkaido/areas.gpkg|layername=train"   # optional
    validation_area = "events/hokkaido/areas.gpkg|layername=validation"  # optional
    test_area = "events/hokkaido/areas.gpkg|layername=test"     # optional
    cloud_mask = "events/hokkaido/clouds.gpkg"                  # optional, polygons or raster
    radiometry = "s2_l2a"                                        # auto, 8bit, s2_l2a, s2_l2a_offset
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

from model.card import SIZE_MULTIPLE_PX
from model.vectors import VectorInput


class ConfigError(ValueError):
    """A configuration file is missing a setting or has a wrong one; the message names it."""


@dataclass(frozen=True)
class VectorRef:
    """A vector file, optionally one layer of it (``path|layername=name``)."""

    path: str
    layer: Optional[str] = None

    @classmethod
    def parse(cls, text: str, base_dir: str) -> "VectorRef":
        """Parse ``path`` or ``path|layername=name``, relative to ``base_dir``."""
        source = VectorInput.parse(text)
        return cls(_resolve(source.path, base_dir), source.layer)


@dataclass(frozen=True)
class EventConfig:
    """One event: images, DEM, inventory and optional areas and mask.

    Bands are 1-based R, G, B for the images and the elevation band for the DEM.
    """

    name: str
    pre: str
    post: str
    dem: str
    inventory: VectorRef
    pre_bands: Tuple[int, int, int] = (1, 2, 3)
    post_bands: Tuple[int, int, int] = (1, 2, 3)
    dem_band: int = 1
    radiometry: str = "auto"
    train_area: Optional[VectorRef] = None
    validation_area: Optional[VectorRef] = None
    test_area: Optional[VectorRef] = None
    cloud_mask: Optional[str] = None


@dataclass(frozen=True)
class RunConfig:
    """Settings of a dataset build and a training run."""

    output_dir: str
    gsd_m: float = 10.0
    tile_px: int = 224
    tile_overlap: float = 0.5
    validation_fraction: float = 0.15
    width: float = 1.0
    batch_size: int = 4
    epochs: int = 100
    steps_per_epoch: Optional[int] = None
    learning_rate: float = 1e-4
    lr_patience: int = 3
    stop_patience: int = 10
    seed: int = 42
    l2: float = 1e-5
    focal_alpha: float = 0.7
    focal_beta: float = 0.3
    focal_gamma: float = 0.75
    augment: bool = True
    bn_recalibration_batches: int = 16
    jit_compile: bool = False
    init_model: Optional[str] = None
    context_px: int = 56
    threshold: float = 0.5
    min_area_m2: float = 100.0
    image_normalisation: str = "none"   # or "scene_dark_median" (model.card.ImageNormalisation)


@dataclass(frozen=True)
class Config:
    """A whole configuration file."""

    run: RunConfig
    events: Tuple[EventConfig, ...] = field(default_factory=tuple)
    source: Optional[str] = None


def _resolve(path: str, base_dir: str) -> str:
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))


def _take(section: Dict[str, Any], cls, where: str, base_dir: str, paths: Tuple[str, ...] = ()) -> Dict[str, Any]:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}.")
    values = dict(section)
    for key in paths:
        if key in values and values[key] is not None:
            values[key] = _resolve(str(values[key]), base_dir)
    return values


def parse_config(data: Dict[str, Any], base_dir: str, source: Optional[str] = None) -> Config:
    """Build a :class:`Config` from parsed TOML, resolving paths against ``base_dir``."""
    if "run" not in data:
        raise ConfigError(f"{source or 'config'}: the [run] section is missing.")
    run_values = _take(data["run"], RunConfig, "[run]", base_dir, ("output_dir", "init_model"))
    if "output_dir" not in run_values:
        raise ConfigError(f"{source or 'config'}: [run] needs output_dir.")
    run = RunConfig(**run_values)
    check_run(run, f"{source or 'config'}: [run]")
    events = parse_events(data.get("events", []), base_dir)
    names = [e.name for e in events]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source or 'config'}: event names must be unique; got {names}.")
    return Config(run, tuple(events), source)


def check_run(run: RunConfig, where: str = "[run]") -> None:
    """Refuse settings that would otherwise fail only once training has started, naming the setting.

    Raises:
        ConfigError: ``tile_px`` is not a positive multiple of 32 (the network
            halves a tile five times), or ``context_px`` leaves no core inside a
            tile (``0 <= context_px`` and ``2 * context_px < tile_px``, as the
            model card requires).
    """
    from model.card import NORMALISATION_METHODS

    if run.image_normalisation not in NORMALISATION_METHODS:
        raise ConfigError(f"{where} image_normalisation must be one of {', '.join(NORMALISATION_METHODS)}; "
                          f"got {run.image_normalisation!r}.")
    tile_px, context_px = run.tile_px, run.context_px
    if not isinstance(tile_px, int) or isinstance(tile_px, bool) or tile_px <= 0 or tile_px % SIZE_MULTIPLE_PX:
        raise ConfigError(f"{where} tile_px must be a positive multiple of {SIZE_MULTIPLE_PX} (the network halves a "
                          f"tile five times); got {tile_px!r}.")
    if not isinstance(context_px, int) or isinstance(context_px, bool) or not 0 <= 2 * context_px < tile_px:
        raise ConfigError(f"{where} context_px must be a whole number with 0 <= 2 x context_px < tile_px, so that "
                          f"each tile keeps a core; got context_px {context_px!r} with tile_px {tile_px}.")


def parse_events(items: List[Dict[str, Any]], base_dir: str, section: str = "events") -> List[EventConfig]:
    """The :class:`EventConfig` of each ``[[section]]`` table, paths resolved against ``base_dir``."""
    events: List[EventConfig] = []
    for index, raw in enumerate(items):
        where = f"[[{section}]] #{index + 1} ({raw.get('name', 'unnamed')})"
        values = _take(raw, EventConfig, where, base_dir, ("pre", "post", "dem", "cloud_mask"))
        for key in ("name", "pre", "post", "dem", "inventory"):
            if key not in values:
                raise ConfigError(f"{where}: missing '{key}'.")
        for key in ("inventory", "train_area", "validation_area", "test_area"):
            if values.get(key):
                values[key] = VectorRef.parse(str(values[key]), base_dir)
        for key in ("pre_bands", "post_bands"):
            if key in values:
                values[key] = tuple(int(b) for b in values[key])
        events.append(EventConfig(**values))
    return events


def read_toml(path: str) -> Dict[str, Any]:
    """The parsed TOML file; a missing or invalid file is a :class:`ConfigError`."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"Configuration file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def load_config(path: str) -> Config:
    """Read a TOML configuration file."""
    return parse_config(read_toml(path), os.path.dirname(os.path.abspath(path)), path)
