"""Styles of simulated events: what a region looks like (see :mod:`training.simulate`).

The default model is trained on :data:`TRAINING_STYLES` and evaluated on
:data:`UNSEEN_STYLE`, which training never sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

ENCODINGS = ("8bit", "s2_l2a", "s2_l2a_offset")

@dataclass(frozen=True)
class Style:
    """A terrain and land-cover style: what a region looks like.

    Reflectances are (red, green, blue) surface reflectance in 0..1.
    """

    name: str
    description: str
    epsg: int
    slope_p90_deg: float            # 90th percentile of slope after scaling
    spectral_exponent: float        # 1/f**beta terrain noise; larger = smoother
    base_elevation_m: float
    plains_fraction: float = 0.0    # lowest part of the scene flattened into plains
    plateau_fraction: float = 0.0   # highest part flattened into a plateau
    valley_count: Tuple[int, int] = (1, 3)
    valley_depth: float = 0.25      # of the unscaled relief
    forest: Tuple[float, float, float] = (0.030, 0.055, 0.030)
    grass: Tuple[float, float, float] = (0.060, 0.090, 0.045)
    soil: Tuple[float, float, float] = (0.200, 0.170, 0.130)   # landslide debris
    rock: Tuple[float, float, float] = (0.230, 0.220, 0.200)
    forest_cover: float = 0.75      # share of non-flat land under forest
    field_cover: float = 0.6        # share of flat land in fields
    treeline_quantile: float = 1.0  # elevation quantile above which forest gives way to grass/rock
    snow_quantile: float = 1.0      # elevation quantile above which fresh snow may fall
    settlements: int = 2
    roads: int = 2
    landslides_per_km2: float = 4.0
    clusters: Tuple[int, int] = (1, 3)
    source_slope_deg: float = 25.0
    old_scars_per_km2: float = 1.0
    clearcuts_per_km2: float = 1.0
    cloud_cover: Tuple[float, float] = (0.0, 0.10)
    haze: Tuple[float, float] = (0.0, 0.03)


STYLES: Dict[str, Style] = {s.name: s for s in (
    Style("temperate_mountains", "steep forested ranges, meadows and rock above the treeline, snow on peaks",
          epsg=32759, slope_p90_deg=40.0, spectral_exponent=2.0, base_elevation_m=400.0,
          valley_count=(2, 3), valley_depth=0.35, forest_cover=0.85, field_cover=0.4,
          treeline_quantile=0.8, snow_quantile=0.93, settlements=1, roads=1, landslides_per_km2=6.0,
          source_slope_deg=28.0, soil=(0.180, 0.170, 0.150), rock=(0.250, 0.245, 0.235)),
    Style("tropical_hills", "dense bright rainforest on steep hills, red soils, haze and cloud",
          epsg=32646, slope_p90_deg=33.0, spectral_exponent=2.2, base_elevation_m=200.0,
          valley_count=(2, 4), valley_depth=0.3, forest=(0.025, 0.060, 0.025), forest_cover=0.92,
          field_cover=0.5, settlements=2, roads=2, landslides_per_km2=8.0, source_slope_deg=24.0,
          soil=(0.210, 0.140, 0.090), cloud_cover=(0.03, 0.15), haze=(0.01, 0.05)),
    Style("dry_ranges", "semi-arid ranges with sparse shrubs, pale soils and bare rock",
          epsg=32614, slope_p90_deg=35.0, spectral_exponent=2.1, base_elevation_m=1200.0,
          plains_fraction=0.15, valley_count=(1, 2), forest=(0.060, 0.070, 0.045),
          grass=(0.140, 0.130, 0.095), forest_cover=0.35, field_cover=0.3, treeline_quantile=0.7,
          settlements=1, roads=2, landslides_per_km2=4.0, source_slope_deg=27.0,
          soil=(0.260, 0.230, 0.190), rock=(0.300, 0.280, 0.250), cloud_cover=(0.0, 0.08)),
    Style("agricultural_hills", "rolling hills, forest on the steep slopes, fields and villages in the plains",
          epsg=32633, slope_p90_deg=26.0, spectral_exponent=2.4, base_elevation_m=250.0,
          plains_fraction=0.35, valley_count=(1, 2), valley_depth=0.2, forest_cover=0.7,
          field_cover=0.85, settlements=4, roads=4, landslides_per_km2=3.0, source_slope_deg=20.0,
          clearcuts_per_km2=2.0),
    Style("dissected_plateau", "volcanic plateau cut by steep valleys, pumice soils, forest on the valley sides "
          "and fields on the plateau (never used for training the default model)",
          epsg=32654, slope_p90_deg=34.0, spectral_exponent=2.3, base_elevation_m=100.0,
          plateau_fraction=0.35, valley_count=(3, 5), valley_depth=0.45, forest=(0.035, 0.050, 0.035),
          forest_cover=0.8, field_cover=0.7, settlements=2, roads=3, landslides_per_km2=10.0,
          clusters=(2, 4), source_slope_deg=22.0, soil=(0.230, 0.200, 0.150)),
)}
TRAINING_STYLES = ("temperate_mountains", "tropical_hills", "dry_ranges", "agricultural_hills")
UNSEEN_STYLE = "dissected_plateau"
