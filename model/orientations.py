"""Test-time augmentation: a network's probability averaged over flipped (and transposed) copies of its inputs.

A model card may ask for it (``test_time_augmentation``, see :mod:`model.card`): ``flips`` runs the network on the window as it is,
flipped up-down, flipped left-right and both (a rotation by 180 degrees), and averages the four probabilities
after flipping each back; ``dihedral`` adds the four transposed copies (all eight symmetries of the square).
The networks were trained with these flips among their augmentations, so every copy is a fair view of the same
ground; averaging them removes the orientation habits a single pass has (measured on the real Hokkaido crop: see
the README). Used by the plugin (:class:`model.session.LandslideModel`) and by the trainer when it scores a
Keras network (``training.adapt``), so both see the same probabilities.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from .card import TTA_DIHEDRAL, TTA_FLIPS, TTA_MODES, TTA_NONE

# (flip rows, flip columns, transpose), applied in that order to the inputs and undone in reverse order.
_FLIPS: List[Tuple[bool, bool, bool]] = [(False, False, False), (True, False, False), (False, True, False),
                                         (True, True, False)]
FLIPS: Tuple[Tuple[bool, bool, bool], ...] = tuple(_FLIPS)
"""The four orientations of ``flips``, in this order: as it is, up-down, left-right, both (180 degrees)."""
_TRANSFORMS = {TTA_NONE: _FLIPS[:1], TTA_FLIPS: _FLIPS,
               TTA_DIHEDRAL: _FLIPS + [(rows, cols, True) for rows, cols, _ in _FLIPS]}


def passes(mode: str) -> int:
    """How many network runs one window costs under ``mode``."""
    return len(_TRANSFORMS[mode])


def _forward(array: np.ndarray, rows: bool, cols: bool, transpose: bool) -> np.ndarray:
    """An (N, H, W, ...) array flipped and/or transposed in its H and W axes."""
    if rows:
        array = array[:, ::-1]
    if cols:
        array = array[:, :, ::-1]
    if transpose:
        array = np.swapaxes(array, 1, 2)
    return np.ascontiguousarray(array)


def _back(probability: np.ndarray, rows: bool, cols: bool, transpose: bool) -> np.ndarray:
    """An (N, H, W) probability of a transformed input brought back to the input's orientation."""
    if transpose:
        probability = np.swapaxes(probability, 1, 2)
    if cols:
        probability = probability[:, :, ::-1]
    if rows:
        probability = probability[:, ::-1]
    return probability


def predict_averaged(run: Callable[[Dict[str, np.ndarray]], np.ndarray], inputs: Dict[str, np.ndarray],
                     mode: str) -> np.ndarray:
    """The mean of ``run`` over the transforms of ``mode``.

    Args:
        run: Maps a dict of (N, H, W, C) float32 arrays to an (N, H, W) probability.
        inputs: The batch as ``run`` takes it. With ``dihedral``, H and W are swapped in half of the runs, so
            the network must accept both shapes (any fully convolutional network does when both sides are
            multiples of its size multiple).
        mode: One of :data:`TTA_MODES`.

    Returns:
        float32 (N, H, W).
    """
    if mode not in _TRANSFORMS:
        raise ValueError(f"unknown test-time augmentation '{mode}'; expected one of {', '.join(TTA_MODES)}")
    if mode == TTA_NONE:
        return np.asarray(run(inputs), dtype=np.float32)
    return predict_oriented(run, inputs, _TRANSFORMS[mode])


def predict_oriented(run: Callable[[Dict[str, np.ndarray]], np.ndarray], inputs: Dict[str, np.ndarray],
                     transforms: Sequence[Tuple[bool, bool, bool]]) -> np.ndarray:
    """The mean of ``run`` over the given ``(flip rows, flip columns, transpose)`` transforms (e.g. some of
    :data:`FLIPS`), each probability brought back to the input's orientation before averaging."""
    if not transforms:
        raise ValueError("predict_oriented needs at least one transform")
    total = None
    for rows, cols, transpose in transforms:
        probability = _back(np.asarray(run({k: _forward(v, rows, cols, transpose) for k, v in inputs.items()}),
                                       dtype=np.float32), rows, cols, transpose)
        total = probability.copy() if total is None else total + probability
    return total / np.float32(len(transforms))
