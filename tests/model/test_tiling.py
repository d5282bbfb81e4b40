"""The overlap-tile plan: cores cover every grid pixel exactly once."""

import numpy as np
import pytest

from model.grid import Grid
from model.tiling import count_windows, fit_window_px, plan_windows


def grid(width, height):
    return Grid.square("", 0.0, 0.0, 10.0, width, height)


@pytest.mark.parametrize("width, height, size, margin", [
    (100, 100, 32, 8), (1, 1, 32, 8), (257, 130, 64, 16), (50, 300, 96, 0), (224, 224, 224, 56),
])
def test_cores_cover_every_pixel_exactly_once(width, height, size, margin):
    g = grid(width, height)
    windows = plan_windows(g, size, margin)
    hits = np.zeros((height, width), int)
    for w in windows:
        assert w.size_px == size
        assert w.core_row_px == w.row_px + margin and w.core_col_px == w.col_px + margin
        hits[w.core_row_px : w.core_row_px + w.core_rows, w.core_col_px : w.core_col_px + w.core_cols] += 1
    assert (hits == 1).all()
    assert count_windows(g, size, margin) == len(windows)


def test_windows_reach_past_every_scene_edge_by_the_margin():
    windows = plan_windows(grid(100, 70), 64, 16)
    assert min(w.row_px for w in windows) == -16 and min(w.col_px for w in windows) == -16
    assert max(w.row_px + w.size_px for w in windows) >= 70 + 16
    assert max(w.col_px + w.size_px for w in windows) >= 100 + 16


def test_core_of_cuts_the_margin():
    window = plan_windows(grid(40, 40), 32, 8)[0]
    array = np.arange(32 * 32).reshape(32, 32)
    assert window.core_of(array).shape == (16, 16)
    assert window.core_of(array)[0, 0] == array[8, 8]


def test_window_without_core_is_refused():
    with pytest.raises(ValueError, match="has no core"):
        plan_windows(grid(10, 10), 32, 16)


def test_fit_window_rounds_to_the_multiple_and_never_exceeds_the_scene():
    assert fit_window_px(500, 56, 32, grid(5000, 5000)) == 512
    assert fit_window_px(2048, 56, 32, grid(100, 80)) == 224  # 100 + 2*56 = 212 -> 224
    assert fit_window_px(16, 56, 32, grid(5000, 5000)) == 128  # smallest with a core
