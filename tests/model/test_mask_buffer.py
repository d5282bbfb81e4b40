"""The cloud/snow mask buffer: a disk dilation that agrees across window seams."""

import numpy as np
import pytest

from model.mask_buffer import BufferedMask, buffer_radius_px, dilate_disk


def brute_force_disk(mask, radius):
    out = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    rows, cols = np.indices(mask.shape)
    for y, x in zip(ys, xs):
        out |= (rows - y) ** 2 + (cols - x) ** 2 <= radius * radius
    return out


@pytest.mark.parametrize("radius", [1, 2, 5, 9])
def test_dilation_is_the_euclidean_disk(radius):
    rng = np.random.default_rng(radius)
    mask = rng.random((40, 53)) > 0.985
    assert np.array_equal(dilate_disk(mask, radius), brute_force_disk(mask, radius))


def test_single_pixel_grows_to_a_disk_of_the_radius():
    mask = np.zeros((21, 21), dtype=bool)
    mask[10, 10] = True
    grown = dilate_disk(mask, 3)
    assert grown[10, 13] and grown[13, 10] and not grown[10, 14]
    assert grown[12, 12] and not grown[13, 13]  # 2.83 px in, 4.24 px out
    assert grown.sum() == 29  # lattice points within radius 3


def test_radius_from_metres_rounds_up_to_whole_pixels():
    assert buffer_radius_px(0, 10) == 0
    assert buffer_radius_px(None, 10) == 0
    assert buffer_radius_px(50, 10) == 5
    assert buffer_radius_px(51, 10) == 6
    assert buffer_radius_px(5, 10) == 1


class _ArrayMask:
    """A mask reader over a fixed array; outside it nothing is masked."""

    def __init__(self, array):
        self.array = array

    def read(self, row, col, height, width):
        out = np.zeros((height, width), dtype=bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, self.array.shape[0]), min(col + width, self.array.shape[1])
        if r1 > r0 and c1 > c0:
            out[r0 - row: r1 - row, c0 - col: c1 - col] = self.array[r0:r1, c0:c1]
        return out


def test_buffered_windows_match_the_whole_scene_buffer():
    rng = np.random.default_rng(7)
    scene = rng.random((60, 60)) > 0.99
    whole = dilate_disk(scene, 4)
    reader = BufferedMask(_ArrayMask(scene), 4)
    tiled = np.zeros_like(scene)
    for row in range(0, 60, 16):
        for col in range(0, 60, 16):
            tiled[row: row + 16, col: col + 16] = reader.read(row, col, 16, 16)[: 60 - row, : 60 - col]
    assert np.array_equal(tiled, whole)
    # a cloud just outside a window still masks its buffer inside it
    edge = np.zeros((30, 30), dtype=bool)
    edge[15, 12] = True
    window = BufferedMask(_ArrayMask(edge), 3).read(10, 14, 10, 10)
    assert window[5, 0] and window[5, 1] and not window[5, 2]
