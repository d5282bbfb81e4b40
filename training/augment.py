"""Data augmentation of training samples, and a sample's network inputs.

A sample is a dict of numpy arrays, as the tile store gives them::

    pre    (T, T, 3)      uint8    pre-event RGB, 8-bit-equivalent values
    post   (T, T, 3)      uint8    post-event RGB
    dem    (T+2, T+2)     float32  elevations in metres with a 1 px halo, NaN = nodata
    mask   (T, T)         uint8    1 = landslide
    valid  (T, T)         uint8    1 = pixel may be learned from

:func:`augment_sample` follows the augmentation of Prakash, Manconi & Loew
(2021): radiometric changes are drawn independently for the pre and the post
image (two acquisitions differ in illumination, haze, sensor and season),
geometric changes are identical for every layer. :func:`sample_inputs` then
computes terrain from the (augmented) DEM with :func:`model.terrain.terrain_features`
and scales everything with :func:`model.preprocess.model_inputs`, exactly as the
plugin does at inference. Terrain is never rotated as an image: a rotated DEM
has its slopes facing other directions, so its hillshade under the fixed sun
(azimuth 315 degrees) changes, while slope does not.

Geometry. Pixel ``(i, j)`` of a tile covers ``[i, i+1) x [j, j+1)``; DEM pixel
``(i+1, j+1)`` covers the same ground. All transforms act about the tile centre
(``T/2, T/2`` in tile coordinates, ``(T+2)/2`` in DEM coordinates: the same
point), so the halo stays aligned. Flips and 90 degree rotations are exact
array permutations. The small-angle rotation with scaling resamples bilinearly
(images, DEM) or by nearest neighbour (mask, validity). An output pixel whose
centre maps outside the source tile gets ``valid = 0``, zero image values,
``mask = 0`` and a NaN elevation (outside the source DEM). An output pixel
whose bilinear footprint touches an invalid source pixel is invalid too, so
values mixed with nodata or cloud never count.

Scaling by ``s`` makes the terrain look ``s`` times wider; with
``scale_elevations`` the elevations are multiplied by ``s`` as well, so the
slopes (and the hillshade) of a zoomed tile stay those of the real terrain.

Only numpy is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from model.card import ModelCard
from model.preprocess import model_inputs
from model.terrain import HALO_PX, terrain_features

IMAGE_KEYS = ("pre", "post")
Range = Tuple[float, float]


@dataclass(frozen=True)
class AugmentSettings:
    """Probabilities and ranges of the augmentation (values drawn uniformly in a range).

    Radiometric changes (applied, in this order, to the pre and the post image
    independently, in 8-bit units, before the geometry):

    * brightness/contrast (``p_brightness_contrast``): ``x -> (x - m) * c + m + b``
      with ``m`` the mean of the valid pixels, ``c`` in ``contrast_range``,
      ``b`` in ``brightness_range``;
    * colour (``p_colour``): one gain per channel in ``colour_gain_range``;
    * gamma (``p_gamma``): ``x -> 255 (x / 255) ** g``, ``log g`` uniform in
      ``log gamma_range``;
    * blur or sharpen (exclusive, ``p_blur`` + ``p_sharpen`` <= 1): Gaussian
      blur with sigma in ``blur_sigma_px_range``, or unsharp masking
      ``x + a (x - blur(x, sharpen_sigma_px))`` with ``a`` in ``sharpen_amount_range``;
    * noise (``p_noise``): Gaussian, standard deviation in ``noise_std_range``.

    Results are clipped to 0..255 and rounded to uint8 once, at the end.

    Geometric changes (identical for pre, post, dem, mask and valid):

    * horizontal flip (``p_flip_h``), vertical flip (``p_flip_v``);
    * 90 degree rotation by ``k * 90`` degrees, ``k`` drawn from ``rot90_choices``;
    * with probability ``p_affine``, rotation by an angle in ``rotation_deg_range``
      and scaling by a factor in ``scale_range`` about the tile centre
      (``scale_elevations``: multiply elevations by the factor, see the module).
    """

    radiometric: bool = True
    p_brightness_contrast: float = 0.5
    brightness_range: Range = (-25.0, 25.0)
    contrast_range: Range = (0.8, 1.2)
    p_colour: float = 0.5
    colour_gain_range: Range = (0.9, 1.1)
    p_gamma: float = 0.3
    gamma_range: Range = (0.8, 1.25)
    p_blur: float = 0.15
    blur_sigma_px_range: Range = (0.5, 1.0)
    p_sharpen: float = 0.15
    sharpen_amount_range: Range = (0.2, 0.8)
    sharpen_sigma_px: float = 1.0
    p_noise: float = 0.3
    noise_std_range: Range = (1.0, 5.0)

    geometric: bool = True
    p_flip_h: float = 0.5
    p_flip_v: float = 0.5
    rot90_choices: Tuple[int, ...] = (0, 1, 2, 3)
    p_affine: float = 0.5
    rotation_deg_range: Range = (-20.0, 20.0)
    scale_range: Range = (0.9, 1.1)
    scale_elevations: bool = True

    def __post_init__(self) -> None:
        for name in ("p_brightness_contrast", "p_colour", "p_gamma", "p_blur", "p_sharpen", "p_noise",
                     "p_flip_h", "p_flip_v", "p_affine"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentSettings.{name} must lie in [0, 1]; got {value}.")
        if self.p_blur + self.p_sharpen > 1.0:
            raise ValueError("AugmentSettings.p_blur + p_sharpen must not exceed 1 (they exclude each other).")
        for name in ("brightness_range", "contrast_range", "colour_gain_range", "gamma_range",
                     "blur_sigma_px_range", "sharpen_amount_range", "noise_std_range",
                     "rotation_deg_range", "scale_range"):
            low, high = getattr(self, name)
            if not low <= high:
                raise ValueError(f"AugmentSettings.{name} must be (low, high) with low <= high; got {(low, high)}.")
        for name in ("contrast_range", "colour_gain_range", "gamma_range", "blur_sigma_px_range", "scale_range"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"AugmentSettings.{name} must be positive.")
        if self.noise_std_range[0] < 0 or self.sharpen_amount_range[0] < 0 or self.sharpen_sigma_px <= 0:
            raise ValueError("AugmentSettings noise, sharpen amount and sharpen sigma must not be negative.")
        if not self.rot90_choices or any(k not in (0, 1, 2, 3) for k in self.rot90_choices):
            raise ValueError(
                f"AugmentSettings.rot90_choices must be a non-empty subset of 0..3; got {self.rot90_choices}."
            )


NO_AUGMENTATION = AugmentSettings(radiometric=False, geometric=False)
LOSS_MASK_KEY = "loss_mask"
"""Optional sample layer: where the label is known. It follows the geometry like ``mask``; outside it the
loss is not counted, while the images there still feed the network (adaptation: outside the analyst's area)."""


# --------------------------------------------------------------------------- checks


def check_sample(sample: Mapping[str, np.ndarray]) -> int:
    """Tile size ``T`` of a sample; raise ``ValueError`` naming a wrong array."""
    for key in ("pre", "post", "dem", "mask", "valid"):
        if key not in sample:
            raise ValueError(f"A training sample needs '{key}'; it has {sorted(sample)}.")
    tile = np.shape(sample["mask"])
    if len(tile) != 2 or tile[0] != tile[1]:
        raise ValueError(f"Sample tiles must be square (T, T); mask has shape {tile}.")
    size = tile[0]
    expected = {
        "pre": (size, size, 3),
        "post": (size, size, 3),
        "dem": (size + 2 * HALO_PX, size + 2 * HALO_PX),
        "valid": (size, size),
    }
    for key, shape in expected.items():
        if np.shape(sample[key]) != shape:
            raise ValueError(f"Sample '{key}' has shape {np.shape(sample[key])}; expected {shape}.")
    return size


# --------------------------------------------------------------------- radiometry


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def gaussian_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Separable Gaussian blur of a (H, W) or (H, W, C) float array (reflected edges)."""
    radius = max(1, int(math.ceil(3.0 * sigma_px)))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel /= kernel.sum()
    out = image.astype(np.float32)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        length = out.shape[axis]
        acc = np.zeros_like(out)
        for t, weight in enumerate(kernel):
            acc += np.float32(weight) * np.take(padded, np.arange(t, t + length), axis=axis)
        out = acc
    return out


def radiometric_change(image: np.ndarray, valid: np.ndarray, rng: np.random.Generator,
                       settings: AugmentSettings) -> np.ndarray:
    """One random radiometric change of a (H, W, 3) image; float32 in 0..255."""
    x = image.astype(np.float32)
    if rng.random() < settings.p_brightness_contrast:
        contrast = _uniform(rng, settings.contrast_range)
        brightness = _uniform(rng, settings.brightness_range)
        mean = float(x[valid].mean()) if valid.any() else float(x.mean())
        x = (x - mean) * contrast + mean + brightness
    if rng.random() < settings.p_colour:
        gains = rng.uniform(settings.colour_gain_range[0], settings.colour_gain_range[1], size=3)
        x = x * gains.astype(np.float32)
    if rng.random() < settings.p_gamma:
        gamma = math.exp(_uniform(rng, (math.log(settings.gamma_range[0]), math.log(settings.gamma_range[1]))))
        x = 255.0 * (np.clip(x, 0.0, 255.0) / 255.0) ** np.float32(gamma)
    u = rng.random()
    if u < settings.p_blur:
        x = gaussian_blur(x, _uniform(rng, settings.blur_sigma_px_range))
    elif u < settings.p_blur + settings.p_sharpen:
        amount = _uniform(rng, settings.sharpen_amount_range)
        x = x + np.float32(amount) * (x - gaussian_blur(x, settings.sharpen_sigma_px))
    if rng.random() < settings.p_noise:
        std = _uniform(rng, settings.noise_std_range)
        x = x + rng.normal(0.0, std, size=x.shape).astype(np.float32)
    return np.clip(x, 0.0, 255.0).astype(np.float32)


# ----------------------------------------------------------------------- geometry


class _Resampler:
    """Where each output pixel of an ``n x n`` array comes from under ``inverse``.

    ``inverse`` (2x2) maps output offsets from the array centre, in (row, col)
    pixel units, to source offsets from the same centre.
    """

    def __init__(self, n: int, inverse: np.ndarray):
        centre = n / 2.0
        offsets = np.arange(n, dtype=np.float64) + 0.5 - centre
        rows, cols = np.meshgrid(offsets, offsets, indexing="ij")
        src_r = inverse[0, 0] * rows + inverse[0, 1] * cols + centre - 0.5
        src_c = inverse[1, 0] * rows + inverse[1, 1] * cols + centre - 0.5
        # A centre inside the source pixel footprint [-0.5, n - 0.5) is inside.
        self.inside = (src_r >= -0.5) & (src_r < n - 0.5) & (src_c >= -0.5) & (src_c < n - 0.5)
        self.near_r = np.clip(np.floor(src_r + 0.5), 0, n - 1).astype(np.intp)
        self.near_c = np.clip(np.floor(src_c + 0.5), 0, n - 1).astype(np.intp)
        r = np.clip(src_r, 0.0, n - 1.0)
        c = np.clip(src_c, 0.0, n - 1.0)
        r0 = np.minimum(np.floor(r).astype(np.intp), n - 2)
        c0 = np.minimum(np.floor(c).astype(np.intp), n - 2)
        fr, fc = r - r0, c - c0
        self.corners = (
            (r0, c0, (1 - fr) * (1 - fc)),
            (r0, c0 + 1, (1 - fr) * fc),
            (r0 + 1, c0, fr * (1 - fc)),
            (r0 + 1, c0 + 1, fr * fc),
        )

    def nearest(self, array: np.ndarray, fill) -> np.ndarray:
        out = array[self.near_r, self.near_c]
        out[~self.inside] = fill
        return out

    def bilinear(self, array: np.ndarray, fill: float) -> np.ndarray:
        """Bilinear resampling; NaN where a corner with non-zero weight is NaN."""
        values = array.astype(np.float64)
        acc = np.zeros(self.inside.shape + values.shape[2:], dtype=np.float64)
        has_nan = np.zeros(acc.shape, dtype=bool)
        for rows, cols, weight in self.corners:
            corner = values[rows, cols]
            used = (weight > 0).reshape(weight.shape + (1,) * (values.ndim - 2))
            w = weight.reshape(used.shape)
            acc += np.where(used, corner, 0.0) * w
            has_nan |= used & np.isnan(corner)
        acc[has_nan] = np.nan
        acc[~self.inside] = fill
        return acc


def _affine_inverse(angle_deg: float, scale: float) -> np.ndarray:
    """Inverse of ``scale * rotation(angle)`` in (row, col) coordinates."""
    a = math.radians(angle_deg)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return rotation.T / scale


def _dihedral(array: np.ndarray, flip_h: bool, flip_v: bool, k: int) -> np.ndarray:
    if flip_h:
        array = array[:, ::-1]
    if flip_v:
        array = array[::-1]
    return np.ascontiguousarray(np.rot90(array, k, axes=(0, 1)))


def geometric_change(layers: Dict[str, np.ndarray], rng: np.random.Generator,
                     settings: AugmentSettings) -> Dict[str, np.ndarray]:
    """Apply one random geometric change to pre/post (float), dem, mask and valid (bool)."""
    flip_h = bool(rng.random() < settings.p_flip_h)
    flip_v = bool(rng.random() < settings.p_flip_v)
    k = int(settings.rot90_choices[rng.integers(len(settings.rot90_choices))])
    out = {key: _dihedral(value, flip_h, flip_v, k) for key, value in layers.items()}
    if not rng.random() < settings.p_affine:
        return out
    angle = _uniform(rng, settings.rotation_deg_range)
    scale = _uniform(rng, settings.scale_range)
    inverse = _affine_inverse(angle, scale)
    tile = _Resampler(out["mask"].shape[0], inverse)
    dem = _Resampler(out["dem"].shape[0], inverse)
    # Valid only where the whole bilinear footprint is valid and inside the tile.
    valid_fraction = tile.bilinear(out["valid"].astype(np.float64), fill=0.0)
    resampled = {
        "pre": tile.bilinear(out["pre"], fill=0.0).astype(np.float32),
        "post": tile.bilinear(out["post"], fill=0.0).astype(np.float32),
        "mask": tile.nearest(out["mask"], fill=False),
        "valid": valid_fraction >= 1.0 - 1e-6,
        "dem": dem.bilinear(out["dem"], fill=np.nan),
    }
    if LOSS_MASK_KEY in out:
        resampled[LOSS_MASK_KEY] = tile.nearest(out[LOSS_MASK_KEY], fill=False)
    if settings.scale_elevations:
        resampled["dem"] = resampled["dem"] * scale
    resampled["dem"] = resampled["dem"].astype(np.float32)
    return resampled


# ------------------------------------------------------------------------ public


def augment_sample(sample: Mapping[str, np.ndarray], rng: np.random.Generator,
                   settings: AugmentSettings = AugmentSettings()) -> Dict[str, np.ndarray]:
    """A randomly augmented copy of a training sample (see the module and :class:`AugmentSettings`).

    Args:
        sample: ``pre``, ``post``, ``dem``, ``mask``, ``valid`` (other keys are
            copied unchanged).
        rng: The only source of randomness; the same generator state gives the
            same result.
        settings: Probabilities and ranges.

    Returns:
        A new sample with the same keys, shapes and dtypes (pre, post, mask and
        valid uint8, dem float32).
    """
    check_sample(sample)
    valid = np.asarray(sample["valid"]).astype(bool)
    layers = {
        "pre": np.asarray(sample["pre"], dtype=np.float32),
        "post": np.asarray(sample["post"], dtype=np.float32),
        "dem": np.asarray(sample["dem"], dtype=np.float32),
        "mask": np.asarray(sample["mask"]).astype(bool),
        "valid": valid,
    }
    if LOSS_MASK_KEY in sample:
        layers[LOSS_MASK_KEY] = np.asarray(sample[LOSS_MASK_KEY]).astype(bool)
    if settings.radiometric:
        for key in IMAGE_KEYS:  # independent draws for pre and post
            layers[key] = radiometric_change(layers[key], valid, rng, settings)
    if settings.geometric:
        layers = geometric_change(layers, rng, settings)
    out = dict(sample)
    for key in IMAGE_KEYS:
        out[key] = np.clip(np.rint(layers[key]), 0, 255).astype(np.uint8)
    out["dem"] = np.ascontiguousarray(layers["dem"], dtype=np.float32)
    out["mask"] = layers["mask"].astype(np.uint8)
    out["valid"] = layers["valid"].astype(np.uint8)
    if LOSS_MASK_KEY in layers:
        out[LOSS_MASK_KEY] = layers[LOSS_MASK_KEY].astype(np.uint8)
    return out


def sample_inputs(sample: Mapping[str, np.ndarray], card: ModelCard,
                  gsd_m: Optional[float] = None) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """The network inputs and the training target of one sample.

    Terrain comes from :func:`model.terrain.terrain_features` on the sample's
    DEM (recomputed after any augmentation) and pixels without terrain become
    invalid; inputs are scaled by :func:`model.preprocess.model_inputs`.

    Args:
        sample: A (possibly augmented) sample.
        card: The model card (scaling and terrain recipe).
        gsd_m: Pixel size in metres (defaults to ``card.gsd_m``).

    Returns:
        ``(inputs, target)``: ``inputs`` maps each role (``pre_image``,
        ``post_image``, ``terrain``) to a float32 (T, T, C) array with invalid
        pixels set to 0; ``target`` is float32 (T, T, 2): channel 0 the
        landslide mask (0 where invalid), channel 1 the validity (and the sample's
        ``loss_mask`` when it has one), used as the
        loss weight by :mod:`training.losses`.
    """
    check_sample(sample)
    cell = float(card.gsd_m if gsd_m is None else gsd_m)
    hillshade, slope = terrain_features(np.asarray(sample["dem"], dtype=np.float32), cell, cell, card.terrain)
    valid = np.asarray(sample["valid"]).astype(bool) & np.isfinite(hillshade) & np.isfinite(slope)
    pre = np.moveaxis(np.asarray(sample["pre"], dtype=np.float32), -1, 0)
    post = np.moveaxis(np.asarray(sample["post"], dtype=np.float32), -1, 0)
    inputs = model_inputs(pre, post, hillshade, slope, valid, card)
    mask = np.asarray(sample["mask"]).astype(bool) & valid
    weight = valid & np.asarray(sample[LOSS_MASK_KEY]).astype(bool) if LOSS_MASK_KEY in sample else valid
    target = np.stack([mask, weight], axis=-1).astype(np.float32)
    return inputs, target
