"""Which lattice tiles of an event are training or validation tiles, and which are dropped.

Training area rule
    Without ``train_area`` the whole grid is training area. With it, a tile is
    kept when at least 95 % of its pixels (pixel-centre rule) lie inside the
    union of the train-area polygons; the remaining pixels of a kept tile get
    ``valid = 0`` (the inventory is only trusted inside the area), so no
    pixel outside the training area ever counts in a loss.

Test area rule
    A tile touching the test area (any pixel it touches, GDAL ``ALL_TOUCHED``)
    is never stored, neither for training nor for validation.

Validation rule
    With ``validation_area``: tiles with at least 95 % of their pixels inside
    it form the validation split (pixels outside it get ``valid = 0``), and
    tiles that touch it otherwise are dropped, so no training pixel lies in
    the validation area. Without it: an east strip. The kept tiles' lattice
    columns are candidate boundaries ``B``; tiles starting at column ``>= B``
    are validation, tiles ending at or before ``B`` (``col + tile_px <= B``)
    are training, and tiles straddling ``B`` are dropped (the gap), so no
    training tile overlaps a validation tile. ``B`` is the candidate whose
    validation share ``validation / (train + validation)`` is closest to
    ``run.validation_fraction`` with at least one tile on each side (ties go
    to the smaller validation strip). ``validation_fraction <= 0`` means no
    validation split.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from model.errors import InputDataError
from model.grid import Grid
from model.vectors import Polygons, VectorInput, read_polygons

from .config import RunConfig, VectorRef
from .tile_store import DatasetError

AREA_INSIDE_FRACTION = 0.95
"""Share of a tile's pixels that must lie inside the training (or validation) area."""

_TRAIN_CANDIDATE = 0
_VALIDATION_CANDIDATE = 1


def _load_polygons(ref: VectorRef, grid: Grid, event: str, what: str) -> Polygons:
    """Read, reproject and repair the polygons of ``ref`` (:func:`model.vectors.read_polygons`).

    Raises:
        DatasetError: The file or layer cannot be opened, has no CRS, or holds
            no polygon at all.
    """
    try:
        polygons = read_polygons(VectorInput(ref.path, ref.layer), grid, what)
    except InputDataError as exc:
        raise DatasetError(f"Event '{event}': {exc}") from exc
    if polygons.total == 0:
        raise DatasetError(f"Event '{event}': the {what} {polygons.where} holds no polygon.")
    return polygons


def _rasterize(polygons: Polygons, grid: Grid, row: int, col: int, size: int, all_touched: bool = False) -> np.ndarray:
    """Boolean (size, size) window: True where the polygons cover the pixel centre
    (or, with ``all_touched``, touch the pixel at all)."""
    return polygons.burn(grid, row, col, size, size, all_touched)


def tile_stride(run: RunConfig) -> int:
    """Lattice step of the tiles: ``tile_px * (1 - tile_overlap)``, at least 1 px."""
    return max(1, int(round(run.tile_px * (1.0 - run.tile_overlap))))


def _east_strip_boundary(cols: np.ndarray, tile_px: int, fraction: float) -> Optional[int]:
    """Grid column B splitting tiles into training (end <= B) and validation (start >= B)."""
    if fraction <= 0 or cols.size == 0:
        return None
    best: Optional[Tuple[float, int]] = None
    for boundary in sorted(np.unique(cols).tolist(), reverse=True):
        validation = int(np.count_nonzero(cols >= boundary))
        train = int(np.count_nonzero(cols + tile_px <= boundary))
        if validation == 0 or train == 0:
            continue
        score = abs(validation / (validation + train) - fraction)
        if best is None or score < best[0] - 1e-12:
            best = (score, int(boundary))
    return None if best is None else best[1]


def _classify(areas: Dict[str, Polygons], grid: Grid, row: int, col: int, size: int,
              dropped: Dict[str, int]) -> Optional[int]:
    """Training or validation candidate, or None (counted in ``dropped``)."""
    if "test_area" in areas and _rasterize(areas["test_area"], grid, row, col, size, all_touched=True).any():
        dropped["test_area"] += 1
        return None
    if "validation_area" in areas:
        validation = areas["validation_area"]
        if _rasterize(validation, grid, row, col, size).mean() >= AREA_INSIDE_FRACTION:
            return _VALIDATION_CANDIDATE
        if _rasterize(validation, grid, row, col, size, all_touched=True).any():
            dropped["validation_area_border"] += 1
            return None
    if "train_area" in areas and _rasterize(areas["train_area"], grid, row, col, size).mean() < AREA_INSIDE_FRACTION:
        dropped["outside_training_area"] += 1
        return None
    return _TRAIN_CANDIDATE
