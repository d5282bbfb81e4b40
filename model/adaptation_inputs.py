"""The analyst's mapping of one event, checked and read on the model grid, for adapting a model to that event.

No TensorFlow here: QGIS runs :func:`check_adaptation` before it starts the
trainer's Python, and the trainer (``training.adapt``) runs it again and then
:func:`read_mapped_area`.

Rules:

* The grid is the one *Map event landslides* would use for the whole event
  (same CRS choice, same lattice), so the adapted model learns from exactly
  what it will map; the scene-adaptive normalisation of a card is measured
  over the whole event too.
* Inside the area polygons everything that is not a mapped landslide counts
  as "no landslide"; outside them nothing is known and nothing is learned.
* A landslide polygon lying wholly outside the area is refused (a wrong layer
  or a forgotten part of the area), as are an area without landslides and an
  area smaller than one adaptation tile.
* Part of the area (whole blocks of :data:`BLOCK_PX`, drawn at random with a
  fixed seed, at least one with landslides on either side) is kept for
  validation: the threshold is chosen there and the scores are measured there.
  Training keeps away from it: not within :data:`GAP_PX` of a validation block,
  nor on the part of a landslide within :data:`REACH_PX` of that gap, so the
  validation scores are less flattered by their neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np

from .card import ModelCard
from .errors import InputDataError
from .grid import Grid, RasterInput, gdal_cache_capped
from .pipeline import EventSources, MappingRequest, RunPlan, check_request
from .vectors import VectorInput, read_polygons

TILE_PX = 128
"""Adaptation tiles (a multiple of 32): small enough that an area of a few km² gives many different ones."""
BLOCK_PX = 32
"""Side of the validation blocks."""
VALIDATION_FRACTION = 0.2
GAP_PX = 4
"""Pixels around each validation block that are neither trained on nor validated."""
REACH_PX = 12
"""How far beyond that gap a landslide reaching it is kept out of training too (swarms merge into one region)."""
CONTEXT_PX = 32
"""Image read around the area, so that tiles at its edge see what the network sees when mapping."""
MAX_AREA_PX = 4096 * 4096
"""Largest mapped area read at once (about 1,700 km² at 10 m)."""


@dataclass(frozen=True)
class AdaptationRequest:
    """One adaptation: the event as in *Map event landslides*, the analyst's mapping, the base model.

    Attributes:
        base_model: Carded ONNX model to start from.
        pre, post, dem, radiometry, mask_raster, mask_polygons, mask_buffer_m:
            As in :class:`model.pipeline.MappingRequest`.
        landslides: The landslide polygons the analyst mapped.
        area: Polygons where that mapping is complete.
        minutes: Time budget from start to written model (wall clock).
        validation_fraction: Share of the area's blocks kept for validation.
        seed: Seed of the validation split and of training.
    """

    base_model: str
    pre: RasterInput
    post: RasterInput
    dem: RasterInput
    landslides: VectorInput
    area: VectorInput
    radiometry: str = "auto"
    mask_raster: Optional[RasterInput] = None
    mask_polygons: Optional[VectorInput] = None
    mask_buffer_m: float = 0.0
    minutes: float = 10.0
    validation_fraction: float = VALIDATION_FRACTION
    seed: int = 0

    def mapping_request(self) -> MappingRequest:
        """The mapping request over the whole event with the base model (no outputs)."""
        return MappingRequest(model_path=self.base_model, pre=self.pre, post=self.post, dem=self.dem,
                              radiometry=self.radiometry, mask_raster=self.mask_raster,
                              mask_polygons=self.mask_polygons, mask_buffer_m=self.mask_buffer_m,
                              max_windows=10 ** 9)


@dataclass
class AdaptationPlan:
    """What :func:`check_adaptation` found: where the area lies on the event's grid and what it holds."""

    run: RunPlan
    row: int
    col: int
    rows: int
    cols: int
    inside: np.ndarray
    """(rows, cols) bool: the area, burnt on the block."""
    landslide: np.ndarray
    """(rows, cols) bool: the mapped landslides inside the area."""
    landslides_used: int
    notes: List[str] = field(default_factory=list)

    @property
    def area_px(self) -> int:
        return int(self.inside.sum())

    @property
    def landslide_px(self) -> int:
        return int(self.landslide.sum())

    @property
    def card(self) -> ModelCard:
        return self.run.model.card

    @property
    def grid(self) -> Grid:
        return self.run.grid

    def km2(self, pixels: int) -> float:
        return pixels * self.grid.gsd_m ** 2 / 1e6


@dataclass
class MappedArea:
    """The area's block of the grid: images, DEM, validity and the analyst's labels.

    ``pre8``/``post8`` (3, H, W) 8-bit-equivalent floats; ``dem`` (H + 2 halo,
    W + 2 halo) metres; ``valid``, ``landslide``, ``inside`` (area),
    ``validation`` (blocks kept for validation), ``training`` (what the loss
    may use: :func:`training_part`) are (H, W) booleans.
    """

    pre8: np.ndarray
    post8: np.ndarray
    dem: np.ndarray
    valid: np.ndarray
    landslide: np.ndarray
    inside: np.ndarray
    validation: np.ndarray
    training: np.ndarray


def check_adaptation(request: AdaptationRequest, tile_px: int = TILE_PX) -> AdaptationPlan:
    """Check the event and the analyst's mapping before any training (reads polygons, not images).

    Raises:
        InputDataError: Polygons unreadable, outside the area or the inputs; an
            area without landslides or smaller than one tile.
        ModelCardError, GridError: As for mapping.
    """
    if not 0.0 < request.validation_fraction < 1.0:
        raise InputDataError(f"The validation fraction must lie between 0 and 1; got {request.validation_fraction:g}.")
    if not request.minutes > 0:
        raise InputDataError(f"The time budget must be positive; got {request.minutes:g} minutes.")
    run = check_request(request.mapping_request())
    grid = run.grid
    area = read_polygons(request.area, grid, "mapped area")
    if area.total == 0:
        raise InputDataError(f"The mapped area {area.where} has no polygon.")
    if area.used == 0:
        raise InputDataError(f"The mapped area {area.where} lies outside the area covered by all inputs.")
    landslides = read_polygons(request.landslides, grid, "mapped landslides")
    if landslides.total == 0:
        raise InputDataError(f"The mapped landslides {landslides.where} have no polygon: map at least a few landslides "
                             "inside the area.")
    outside = _polygons_outside(landslides, area)
    if outside:
        raise InputDataError(
            f"{outside} of the {landslides.total} mapped landslides lie wholly outside the area where the mapping is "
            f"complete ({area.where}): extend that area to cover them, or leave them out.")
    x_min, x_max, y_min, y_max = area.extent
    origin_x, size_x, _, origin_y, _, size_y = grid.geotransform
    col0 = max(0, int(np.floor((x_min - origin_x) / size_x)) - CONTEXT_PX)
    col1 = min(grid.width_px, int(np.ceil((x_max - origin_x) / size_x)) + CONTEXT_PX)
    row0 = max(0, int(np.floor((y_max - origin_y) / size_y)) - CONTEXT_PX)
    row1 = min(grid.height_px, int(np.ceil((y_min - origin_y) / size_y)) + CONTEXT_PX)
    rows, cols = max(0, row1 - row0), max(0, col1 - col0)
    if rows * cols > MAX_AREA_PX:
        raise InputDataError(
            f"The mapped area spans {rows} x {cols} px on the {grid.gsd_m:g} m grid, more than this tool reads at once "
            f"({MAX_AREA_PX} px): map a smaller area, a few km² are enough.")
    inside = area.burn(grid, row0, col0, rows, cols)
    landslide = landslides.burn(grid, row0, col0, rows, cols) & inside
    plan = AdaptationPlan(run, row0, col0, rows, cols, inside, landslide, landslides.used)
    if plan.area_px < tile_px * tile_px:
        raise InputDataError(
            f"The mapped area covers {plan.km2(plan.area_px):.2f} km² of the inputs, less than one adaptation tile "
            f"({tile_px} x {tile_px} px = {plan.km2(tile_px * tile_px):.2f} km² at {grid.gsd_m:g} m): map a larger area.")
    if plan.landslide_px == 0:
        raise InputDataError(
            f"The mapped area ({area.where}) holds no mapped landslide on the {grid.gsd_m:g} m grid: the model needs "
            "landslides to learn from; map the landslides inside it (polygons of at least one pixel).")
    plan.notes.append(
        f"Mapped area: {plan.km2(plan.area_px):.2f} km² with {landslides.used} landslides "
        f"({plan.km2(plan.landslide_px):.3f} km², {100.0 * plan.landslide_px / plan.area_px:.1f} % of the area), "
        f"on the {grid.gsd_m:g} m grid in {_crs_name(grid)}.")
    if area.repaired or landslides.repaired:
        plan.notes.append(f"Repaired {area.repaired + landslides.repaired} invalid polygons.")
    return plan


def _polygons_outside(landslides, area) -> int:
    """Landslide polygons that do not touch any area polygon (both already on the grid's CRS)."""
    from osgeo import ogr

    union = ogr.Geometry(ogr.wkbMultiPolygon)
    area.layer.ResetReading()
    for feature in area.layer:
        union = union.Union(feature.GetGeometryRef())
    outside = 0
    landslides.layer.ResetReading()
    for feature in landslides.layer:
        if not feature.GetGeometryRef().Intersects(union):
            outside += 1
    return outside


def _crs_name(grid: Grid) -> str:
    from osgeo import osr

    srs = osr.SpatialReference(wkt=grid.crs_wkt)
    code = srs.GetAuthorityCode(None)
    return f"EPSG:{code}" if code else srs.GetName()


def validation_split(inside: np.ndarray, landslide: np.ndarray, fraction: float, seed: int,
                     block_px: int = BLOCK_PX, attempts: int = 50) -> Tuple[np.ndarray, np.ndarray]:
    """The pixels kept for validation (whole blocks drawn at random, with landslides in them) and the pixels
    trained on (:func:`training_part` of that draw, with landslides in it).

    Raises:
        InputDataError: No draw leaves landslide pixels in both parts (too few landslides).
    """
    rows, cols = inside.shape
    block_cols = -(-cols // block_px)
    index = (np.arange(rows)[:, None] // block_px) * block_cols + np.arange(cols)[None, :] // block_px
    occupied = np.unique(index[inside])
    count = max(1, int(round(fraction * len(occupied))))
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        chosen = rng.choice(occupied, size=min(count, len(occupied) - 1), replace=False) if len(occupied) > 1 else []
        validation = np.isin(index, chosen) & inside
        if (landslide & validation).any():
            training = training_part(inside, landslide, validation)
            if (landslide & training).any():
                return validation, training
    raise InputDataError(
        "The mapped landslides are too few or too clustered to keep some for validation and train on the others: "
        "map landslides spread over the area.")


def _grow(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel in the 8 directions."""
    padded = np.pad(mask, 1)
    rows, cols = mask.shape
    out = mask.copy()
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            out |= padded[dr:dr + rows, dc:dc + cols]
    return out


def training_part(inside: np.ndarray, landslide: np.ndarray, validation: np.ndarray,
                  gap_px: int = GAP_PX, reach_px: int = REACH_PX) -> np.ndarray:
    """The area's pixels the loss may use: outside the validation blocks and ``gap_px`` around them, and off the
    landslide pixels joined to that zone through ``reach_px`` pixels of landslide (8-connected), so that a scar
    cut by a block's edge is not learned on one side and validated on the other. A merged swarm is cut
    ``reach_px`` beyond the gap rather than lost whole."""
    kept_out = validation.copy()
    for _ in range(gap_px):
        kept_out = _grow(kept_out)
    shared = landslide & kept_out
    for _ in range(reach_px):
        grown = _grow(shared) & landslide
        if np.array_equal(grown, shared):
            break
        shared = grown
    return inside & ~kept_out & ~shared


def read_mapped_area(request: AdaptationRequest, plan: AdaptationPlan,
                     raise_if_cancelled: Callable[[], None] = lambda: None,
                     log: Callable[[str], None] = lambda message: None) -> MappedArea:
    """Read the area's block of the grid (bounded: one block of at most :data:`MAX_AREA_PX`)."""
    mapping = request.mapping_request()
    card = plan.card
    with gdal_cache_capped(64):
        sources = EventSources(mapping, plan.grid, plan.run.dem_metres_per_unit)
        sources.measure_scene(card, raise_if_cancelled, log)
        pre8, post8, dem, valid = sources.read_layers(plan.row, plan.col, plan.rows, plan.cols, card)
    validation, training = validation_split(plan.inside, plan.landslide, request.validation_fraction, request.seed)
    return MappedArea(pre8.astype(np.float32), post8.astype(np.float32), dem.astype(np.float32), valid,
                      plan.landslide, plan.inside, validation, training)
