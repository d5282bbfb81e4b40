"""Grow a cloud/snow mask by a distance, so that the thin unmasked edge of a cloud is masked too.

A cloud mask (drawn by hand or by a classifier) rarely covers a cloud's semi-transparent
edge; the brightened ground there looks like fresh scars to a change-detection network.
:class:`BufferedMask` wraps any mask reader of :mod:`model.masks` and masks every pixel
whose centre lies within the buffer distance of a masked pixel's centre (a disk).
"""

from __future__ import annotations

import math

import numpy as np


def buffer_radius_px(buffer_m: float, gsd_m: float) -> int:
    """The buffer in whole pixels of the grid (rounded up; 0 for no buffer)."""
    if buffer_m is None or buffer_m <= 0:
        return 0
    return int(math.ceil(buffer_m / gsd_m - 1e-9))


def dilate_disk(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """``mask`` grown by a disk: True where a True pixel lies within ``radius_px`` (centre to centre).

    Done as one horizontal run per row offset of the disk, with running sums, so the
    cost grows with the radius, not with its square.
    """
    mask = np.asarray(mask, dtype=bool)
    if radius_px <= 0 or not mask.any():
        return mask.copy()
    height, width = mask.shape
    sums = np.zeros((height, width + 1), dtype=np.int32)
    np.cumsum(mask, axis=1, out=sums[:, 1:])
    columns = np.arange(width)
    runs = {}

    def horizontal(half_width: int) -> np.ndarray:
        if half_width not in runs:
            low = np.clip(columns - half_width, 0, width)
            high = np.clip(columns + half_width + 1, 0, width)
            runs[half_width] = (sums[:, high] - sums[:, low]) > 0
        return runs[half_width]

    out = np.zeros_like(mask)
    for dy in range(-radius_px, radius_px + 1):
        grown = horizontal(int(math.floor(math.sqrt(radius_px * radius_px - dy * dy) + 1e-9)))
        if dy >= 0:
            out[: height - dy] |= grown[dy:]
        else:
            out[-dy:] |= grown[: height + dy]
    return out


class BufferedMask:
    """A mask reader whose masked area is grown by ``radius_px`` pixels.

    Reads the wrapped mask with a halo of the radius around each window, so a cloud
    just outside the window still masks its buffer inside it (windows agree at their seams).
    """

    def __init__(self, mask, radius_px: int):
        self._mask = mask
        self.radius_px = int(radius_px)

    def read(self, row_px: int, col_px: int, height_px: int, width_px: int) -> np.ndarray:
        """Boolean window, True where masked or within the buffer of a masked pixel."""
        r = self.radius_px
        if r <= 0:
            return self._mask.read(row_px, col_px, height_px, width_px)
        wide = self._mask.read(row_px - r, col_px - r, height_px + 2 * r, width_px + 2 * r)
        return dilate_disk(wide, r)[r: r + height_px, r: r + width_px]
