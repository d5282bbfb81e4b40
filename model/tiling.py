"""The overlap-tile plan and the raster writers that fill it.

A window is what the network sees; its *core* is what is kept. Cores tile the
grid exactly once, windows reach ``margin_px`` further on every side (also past
the scene edge, where the reader supplies real data when there is some and
NaN when there is none), so predictions reach every edge of the scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List

import numpy as np
from osgeo import gdal

from .commit import remove_file
from .errors import InputDataError
from .grid import Grid

gdal.UseExceptions()


@dataclass(frozen=True)
class Window:
    """One inference window on a grid.

    Attributes:
        index: Position in the plan.
        row_px: Grid row of the window's top edge (may be negative).
        col_px: Grid column of the window's left edge (may be negative).
        size_px: Window height and width.
        margin_px: Context discarded on each side.
        core_rows: Rows of the core that lie inside the grid.
        core_cols: Columns of the core that lie inside the grid.
    """

    index: int
    row_px: int
    col_px: int
    size_px: int
    margin_px: int
    core_rows: int
    core_cols: int

    @property
    def core_row_px(self) -> int:
        """Grid row of the core's top edge."""
        return self.row_px + self.margin_px

    @property
    def core_col_px(self) -> int:
        """Grid column of the core's left edge."""
        return self.col_px + self.margin_px

    def core_of(self, array: np.ndarray) -> np.ndarray:
        """The core part of a window-sized array (last two axes)."""
        m = self.margin_px
        return array[..., m : m + self.core_rows, m : m + self.core_cols]


def fit_window_px(requested_px: int, margin_px: int, multiple_px: int, grid: Grid) -> int:
    """The window size to use: a multiple of ``multiple_px`` with a core of at least one pixel.

    Never larger than needed to cover the whole grid in one window.
    """
    smallest = _round_up(2 * margin_px + 1, multiple_px)
    whole = _round_up(max(grid.width_px, grid.height_px) + 2 * margin_px, multiple_px)
    size = _round_up(max(requested_px, smallest), multiple_px)
    return min(size, max(whole, smallest))


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def plan_windows(grid: Grid, size_px: int, margin_px: int) -> List[Window]:
    """Windows whose cores cover every grid pixel exactly once, row by row."""
    step = size_px - 2 * margin_px
    if step < 1:
        raise ValueError(f"A {size_px} px window with a {margin_px} px margin has no core.")
    windows = []
    for core_row in range(0, grid.height_px, step):
        for core_col in range(0, grid.width_px, step):
            windows.append(
                Window(
                    index=len(windows),
                    row_px=core_row - margin_px,
                    col_px=core_col - margin_px,
                    size_px=size_px,
                    margin_px=margin_px,
                    core_rows=min(step, grid.height_px - core_row),
                    core_cols=min(step, grid.width_px - core_col),
                )
            )
    return windows


def count_windows(grid: Grid, size_px: int, margin_px: int) -> int:
    """Number of windows :func:`plan_windows` makes, without making them."""
    step = size_px - 2 * margin_px
    return math.ceil(grid.height_px / step) * math.ceil(grid.width_px / step)


FINAL_TIFF_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]


class GridRasterWriter:
    """A single-band raster on a grid, filled window by window.

    Cores are written into an uncompressed tiled scratch file (so partial
    block writes never bloat a compressed file); :meth:`write_final` copies it
    to a compressed, tiled GeoTIFF (under the partial name the run's
    :class:`model.commit.OutputCommit` gives). :meth:`discard` removes the scratch file.
    """

    def __init__(self, scratch_path: str, grid: Grid, data_type: int, nodata: float):
        self.scratch_path = scratch_path
        self.nodata = nodata
        self._data_type = data_type
        driver = gdal.GetDriverByName("GTiff")
        self._dataset = driver.Create(
            scratch_path, grid.width_px, grid.height_px, 1, data_type,
            options=["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "SPARSE_OK=TRUE", "BIGTIFF=IF_SAFER"],
        )
        self._dataset.SetGeoTransform(grid.geotransform)
        self._dataset.SetProjection(grid.crs_wkt)
        self._band = self._dataset.GetRasterBand(1)
        self._band.SetNoDataValue(nodata)
        self._band.Fill(nodata)

    def write_core(self, window: Window, core: np.ndarray) -> None:
        """Write a core-sized array at the window's core position."""
        self._band.WriteArray(core, xoff=window.core_col_px, yoff=window.core_row_px)

    def close(self) -> None:
        """Flush and close the scratch file (it can then be read by path)."""
        if self._dataset is not None:
            self._band.FlushCache()
            self._band = None
            self._dataset = None

    def write_final(self, path: str, what: str = "output") -> str:
        """Write the compressed, tiled GeoTIFF to ``path`` (a partial name from
        :class:`model.commit.OutputCommit`); return ``path``."""
        self.close()
        remove_file(path)
        try:
            predictor = "PREDICTOR=3" if self._data_type == gdal.GDT_Float32 else "PREDICTOR=2"
            gdal.Translate(path, self.scratch_path, format="GTiff", creationOptions=FINAL_TIFF_OPTIONS + [predictor])
        except RuntimeError as exc:
            remove_file(path)
            raise InputDataError(f"Cannot write the {what} {path}: {exc}") from exc
        return path

    def discard(self) -> None:
        """Remove the scratch file."""
        self.close()
        remove_file(self.scratch_path)
