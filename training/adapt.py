"""Adapt a carded model to one event from the landslides an analyst mapped in part of it.

The base model is rebuilt in Keras from its ONNX file (:mod:`training.onnx_weights`),
fine-tuned within a wall-clock budget on tiles of the analyst's area with the
training augmentation (:mod:`training.augment`: flips, rotations, scaling,
brightness, contrast, colour, blur, noise), moved back towards the base model's
weights (:data:`BASE_WEIGHT_SHARE`), checked as moved on the validation blocks the
area keeps back (:mod:`model.adaptation_inputs`), and exported with a card that
records the base model, the event, the area and the validation scores.

The budget counts from the start to the written model: training stops early
enough to leave time for the final validation and the export.

Command line: ``python -m training adapt`` (``--help``). It prints
``PROGRESS <fraction>`` lines for the Processing algorithm that runs it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

from model.adaptation_inputs import (
    GAP_PX,
    REACH_PX,
    TILE_PX,
    AdaptationPlan,
    AdaptationRequest,
    MappedArea,
    check_adaptation,
    read_mapped_area,
)
from model.card import ModelCard
from model.errors import CancelledError
from model.metrics import Confusion, mcc_of_counts, threshold_counts
from model.orientations import predict_averaged
from model.preprocess import model_inputs
from model.terrain import HALO_PX, terrain_features

from .original_h5 import sha256_of  # numpy only (h5py is imported where a file is read)
from .ensemble import MEMBERS, member_count

THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.01), 2)
EXPORT_RESERVE_S = 30.0
"""Time kept back for the final validation and the ONNX export, per network of the model (an ensemble's members
are validated and exported together): 10 to 19 s on the 2 cores here for a width-0.125 network (measured; the
slower figure in session 17, when a benchmark run took 601 s from process start to written model with 25 s kept
back)."""
MIN_STEPS = 10
"""Steps done even when the fixed costs eat a tiny budget (reading, rebuilding, tracing the training step and
exporting, on the 2 cores here: about 30 s for one width-0.125 network, about 2 minutes for the default model's two)."""
LEARNING_RATE = 1e-4
BATCH_SIZE = 8
BASE_WEIGHT_SHARE = 0.5
"""The adapted weights are moved this far back towards the base model's (weight-space ensembling, as WiSE-FT,
Wortsman et al. 2022). Measured (README, *Adapt model to event*): adapted from a 15 % strip, a good base model
got worse on the rest of four events (pooled MCC 0.703 to 0.471) and halfway back it got better (0.764); from a
weak base, the gain stayed (0.406 to 0.644 fully adapted, 0.637 halfway). Choosing the share on the validation
blocks instead (``benchmarks/adapt_share_rule.py``) helped in two benchmark runs and lost 0.147 pooled MCC in a
third, so the share stays fixed."""
THRESHOLD_TOLERANCE = 0.05
"""The adapted threshold is the middle of the thresholds whose validation MCC is within this of the best, not the
best one itself: the validation blocks hold a few thousand landslide pixels, and the single best threshold of so
noisy a curve often lies at its edge. Measured on the same adapted weights (``benchmarks/adapt_check_choice.py``,
README): pooled MCC on the rest of four events rose by 0.007 to 0.026 in each of the three runs compared."""
LANDSLIDE_TILE_SHARE = 0.5
"""Share of tiles centred on a mapped landslide pixel (the rest anywhere in the training part)."""
MIN_TRAINING_PIXELS = 0.05
"""A random tile needs this share of labelled training pixels."""


@dataclass
class AdaptationResult:
    """What one adaptation did and measured."""

    output_path: str
    threshold: float
    scores: Dict[str, float]
    base_scores: Dict[str, float]
    steps: int
    tiles: int
    seconds: float
    card: ModelCard


class TileSampler:
    """Augmented training tiles of the area's training part (labels and loss only there)."""

    def __init__(self, area: MappedArea, card: ModelCard, gsd_m: float, tile_px: int, seed: int):
        from .augment import AugmentSettings

        self.area, self.card, self.gsd_m, self.tile = area, card, gsd_m, tile_px
        self.rng = np.random.default_rng(seed)
        self.settings = AugmentSettings()
        rows, cols = area.valid.shape
        pad_rows, pad_cols = max(0, tile_px - rows), max(0, tile_px - cols)
        pad = ((0, pad_rows), (0, pad_cols))
        self.pre = np.pad(np.moveaxis(np.clip(np.rint(area.pre8), 0, 255).astype(np.uint8), 0, -1), pad + ((0, 0),))
        self.post = np.pad(np.moveaxis(np.clip(np.rint(area.post8), 0, 255).astype(np.uint8), 0, -1), pad + ((0, 0),))
        self.dem = np.pad(area.dem, pad, constant_values=np.nan)
        self.valid = np.pad(area.valid, pad)
        self.mask = np.pad(area.landslide, pad)
        self.training = np.pad(area.training & area.valid, pad)
        self.landslide_pixels = np.argwhere(self.mask & self.training)
        self.rows, self.cols = self.valid.shape

    def _corner(self):
        t = self.tile
        if len(self.landslide_pixels) and self.rng.random() < LANDSLIDE_TILE_SHARE:
            r, c = self.landslide_pixels[self.rng.integers(len(self.landslide_pixels))]
            r0 = int(np.clip(r - self.rng.integers(t), 0, self.rows - t))
            c0 = int(np.clip(c - self.rng.integers(t), 0, self.cols - t))
            return r0, c0
        for _ in range(100):
            r0, c0 = int(self.rng.integers(self.rows - t + 1)), int(self.rng.integers(self.cols - t + 1))
            if self.training[r0:r0 + t, c0:c0 + t].mean() >= MIN_TRAINING_PIXELS:
                return r0, c0
        r, c = np.argwhere(self.training)[self.rng.integers(int(self.training.sum()))]
        return int(np.clip(r - t // 2, 0, self.rows - t)), int(np.clip(c - t // 2, 0, self.cols - t))

    def sample(self):
        from .augment import LOSS_MASK_KEY, augment_sample, sample_inputs

        t = self.tile
        r0, c0 = self._corner()
        window = (slice(r0, r0 + t), slice(c0, c0 + t))
        sample = {"pre": self.pre[window], "post": self.post[window],
                  "dem": self.dem[r0:r0 + t + 2 * HALO_PX, c0:c0 + t + 2 * HALO_PX],
                  "mask": self.mask[window].astype(np.uint8), "valid": self.valid[window].astype(np.uint8),
                  LOSS_MASK_KEY: self.training[window].astype(np.uint8)}
        return sample_inputs(augment_sample(sample, self.rng, self.settings), self.card, self.gsd_m)

    def batch(self, size: int, names: Dict[str, str]):
        samples = [self.sample() for _ in range(size)]
        x = {names[role]: np.stack([s[0][role] for s in samples]) for role in names}
        target = np.stack([s[1] for s in samples])
        return x, target


class AreaPredictor:
    """The network's probability over the whole mapped block (padded to the card's multiple)."""

    def __init__(self, area: MappedArea, card: ModelCard, gsd_m: float):
        hillshade, slope = terrain_features(area.dem, gsd_m, gsd_m, card.terrain)
        self.valid = area.valid & np.isfinite(hillshade) & np.isfinite(slope)
        inputs = model_inputs(area.pre8, area.post8, np.nan_to_num(hillshade), np.nan_to_num(slope), self.valid, card)
        rows, cols = self.valid.shape
        multiple = card.size_multiple_px
        self.shape = rows, cols
        padded = (-(-rows // multiple) * multiple, -(-cols // multiple) * multiple)
        self.names = {spec.role: spec.tensor_name for spec in card.inputs}
        self.test_time_augmentation = card.test_time_augmentation
        self.x = {self.names[role]: np.pad(array, ((0, padded[0] - rows), (0, padded[1] - cols), (0, 0)))[None]
                  for role, array in inputs.items()}

    def probability(self, network) -> np.ndarray:
        """The probability as the plugin would map it: averaged over the flips the card asks for."""
        def run_once(x):
            outputs = network.predict_on_batch(x)
            output = outputs["prediction"] if isinstance(outputs, dict) else outputs[0]
            return np.asarray(output)[..., 0]

        probability = predict_averaged(run_once, self.x, self.test_time_augmentation)
        return probability[0, : self.shape[0], : self.shape[1]]


def validation_counts(probability: np.ndarray, area: MappedArea, valid: np.ndarray) -> np.ndarray:
    """TP, FP, FN, TN on the validation blocks for every threshold of :data:`THRESHOLDS`."""
    where = area.validation & valid
    return threshold_counts(probability[where], area.landslide[where], THRESHOLDS)


def calibrated_threshold_index(counts: np.ndarray, tolerance: float = THRESHOLD_TOLERANCE) -> int:
    """Index in :data:`THRESHOLDS` of the middle of the thresholds whose MCC (``counts``: one TP, FP, FN, TN row
    per threshold) is within ``tolerance`` of the best (the upper of the two middles when their number is even)."""
    mcc = mcc_of_counts(counts)
    near = np.flatnonzero(mcc >= mcc.max() - tolerance)
    return int(near[len(near) // 2])


def _scores(counts_row: np.ndarray) -> Dict[str, float]:
    tp, fp, fn, tn = (int(v) for v in counts_row)
    scores = Confusion(tp, fp, fn, tn).scores()
    return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in scores.items()}


def _scores_at(counts: np.ndarray, threshold: float) -> Dict[str, float]:
    index = int(np.argmin(np.abs(THRESHOLDS - threshold)))
    return dict(_scores(counts[index]), threshold=float(THRESHOLDS[index]))


def interpolated_weights(adapted: List[np.ndarray], base: List[np.ndarray], base_share: float) -> List[np.ndarray]:
    """Each weight ``base_share`` of the way from the adapted value back to the base model's."""
    _check_base_weight_share(base_share)
    return [(1.0 - base_share) * a + base_share * b for a, b in zip(adapted, base)]


def _check_base_weight_share(base_share: float) -> None:
    if not 0.0 <= base_share <= 1.0:
        raise ValueError(f"the base model's share of the weights must lie in [0, 1], not {base_share:g}")


def adapted_card(base: ModelCard, request: AdaptationRequest, plan: AdaptationPlan, area: MappedArea,
                 threshold: float, scores: Dict[str, float], base_scores: Dict[str, float],
                 steps: int, tiles: int, seconds: float, name: str = "",
                 base_weight_share: float = BASE_WEIGHT_SHARE) -> ModelCard:
    """The base card with the adapted threshold, what it was adapted on and the validation scores."""
    grid = plan.grid
    x0, x_size, _, y0, _, y_size = grid.geotransform
    bounds = [x0 + plan.col * x_size, y0 + (plan.row + plan.rows) * y_size,
              x0 + (plan.col + plan.cols) * x_size, y0 + plan.row * y_size]
    validation_km2 = plan.km2(int((area.validation & area.valid).sum()))
    event = {"pre_image": os.path.basename(request.pre.path), "post_image": os.path.basename(request.post.path),
             "dem": os.path.basename(request.dem.path), "landslides": os.path.basename(request.landslides.path),
             "area": os.path.basename(request.area.path)}
    provenance = {
        "adapted_from": {"name": base.name, "file": os.path.basename(request.base_model),
                         "sha256": sha256_of(request.base_model), "threshold": base.threshold,
                         "trained_on": base.provenance.get("trained_on", "")},
        "adapted_on": dict(event, area_km2=round(plan.km2(plan.area_px), 3), landslides=plan.landslides_used,
                           landslide_km2=round(plan.km2(plan.landslide_px), 4),
                           grid_crs=grid.crs_wkt, block_bounds=[round(v, 2) for v in bounds]),
        "adaptation": {"steps": steps, "tiles": tiles, "tile_px": TILE_PX, "seconds": round(seconds, 1),
                       "budget_minutes": request.minutes, "seed": request.seed,
                       "validation_fraction": request.validation_fraction,
                       "training_gap_px": GAP_PX, "training_reach_px": REACH_PX,
                       "training_km2": round(plan.km2(int((area.training & area.valid).sum())), 3),
                       "base_weight_share": base_weight_share},
        "width": base.provenance.get("width"),
        **({MEMBERS: base.provenance[MEMBERS]} if member_count(base) > 1 else {}),
        "trained_on": f"{base.provenance.get('trained_on', base.name)}; then adapted to one event from "
                      f"{plan.landslides_used} landslides an analyst mapped in {plan.km2(plan.area_px):.2f} km² "
                      f"({event['landslides']}, area {event['area']})",
    }
    metrics = dict(scores)
    metrics["evaluated_on"] = (
        f"validation blocks of the analyst's area ({validation_km2:.2f} km², {request.validation_fraction:.0%} of it, "
        f"not trained on) of this event only; threshold chosen there")
    metrics["base_model_on_same_pixels"] = base_scores
    description = (f"{base.name} adapted to one event ({event['post_image']}) from {plan.landslides_used} mapped "
                   f"landslides in {plan.km2(plan.area_px):.2f} km². Use it for this event only.")
    return dataclasses.replace(base, name=name or f"{base.name}-adapted", description=description,
                               threshold=float(threshold), provenance=provenance, metrics=metrics)


def adapt(request: AdaptationRequest, output_path: str, name: str = "", batch_size: int = BATCH_SIZE,
          learning_rate: float = LEARNING_RATE, base_weight_share: float = BASE_WEIGHT_SHARE,
          log: Callable[[str], None] = print,
          progress: Callable[[float], None] = lambda fraction: None,
          is_cancelled: Callable[[], bool] = lambda: False, checks_dir: str = "",
          started_at: Optional[float] = None) -> AdaptationResult:
    """Fine-tune ``request.base_model`` on the analyst's area and write the adapted ONNX model to ``output_path``.

    ``checks_dir``, when given, receives the weights of every validation check (``step_<n>.npz``, the Keras
    weight list in order) for benchmarks that study the choice among them. ``started_at`` (a ``time.time()``) is
    when the budget began, if before this call (the command line passes its own start, before TensorFlow loads).
    """
    import keras

    from .export import export_onnx
    from .losses import loss_weights, output_losses
    from .network import OUTPUT_NAMES
    from .onnx_weights import rebuild_network

    _check_base_weight_share(base_weight_share)  # before the minutes of training, not after
    start = time.time() if started_at is None else started_at
    budget_s = request.minutes * 60.0

    def check_cancel():
        if is_cancelled():
            raise CancelledError("Adaptation cancelled.")

    plan = check_adaptation(request)
    for note in [plan.run.grid_note, *plan.run.notes, *plan.notes]:
        if note:
            log(note)
    base = plan.card
    area = read_mapped_area(request, plan, check_cancel, log)
    gsd = plan.grid.gsd_m
    trained_landslide = int((area.landslide & area.training).sum()) / max(1, int((area.landslide & area.inside).sum()))
    log(f"Read the mapped block ({plan.rows} x {plan.cols} px); validation: "
        f"{plan.km2(int((area.validation & area.valid).sum())):.2f} km² of the area; training: "
        f"{plan.km2(int((area.training & area.valid).sum())):.2f} km² ({trained_landslide:.0%} of the mapped landslide "
        f"pixels; none within {GAP_PX} px of a validation block, nor on a landslide within {REACH_PX} px of that).")
    network, width, _ = rebuild_network(request.base_model, base, log=log)
    keras.utils.set_random_seed(request.seed)
    network.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                    loss=output_losses(OUTPUT_NAMES), loss_weights=loss_weights(OUTPUT_NAMES))
    predictor = AreaPredictor(area, base, gsd)
    base_counts = validation_counts(predictor.probability(network), area, predictor.valid)
    base_scores = _scores_at(base_counts, base.threshold)
    base_best = int(np.argmax(mcc_of_counts(base_counts)))
    base_scores["best_threshold_mcc"] = round(float(mcc_of_counts(base_counts)[base_best]), 4)
    log(f"Base model on the validation blocks: MCC {base_scores['mcc']:.3f} at its threshold {base.threshold:g} "
        f"(best {base_scores['best_threshold_mcc']:.3f} at {THRESHOLDS[base_best]:g}).")
    sampler = TileSampler(area, base, gsd, TILE_PX, request.seed)
    names = {spec.role: spec.tensor_name for spec in base.inputs}
    train_until = start + budget_s - EXPORT_RESERVE_S * member_count(base)
    check_every_s = max(15.0, (train_until - time.time()) / 5.0)
    base_weights = network.get_weights()
    # Each check scores the weights as they would be shipped: moved back towards the base model's by the share.
    # The base model, which any move leaves as it is, is the first candidate.
    best = (float(mcc_of_counts(base_counts).max()), base_weights, 0, base_counts)
    steps = tiles = 0
    next_check = time.time() + check_every_s
    while time.time() < train_until or steps < MIN_STEPS:
        check_cancel()
        x, target = sampler.batch(batch_size, names)
        network.train_on_batch(x, {name: target for name in OUTPUT_NAMES})
        steps += 1
        tiles += batch_size
        progress(min(0.95, (time.time() - start) / budget_s))
        if time.time() >= next_check or (time.time() >= train_until and steps >= MIN_STEPS):
            trained = network.get_weights()
            counts = validation_counts(predictor.probability(network), area, predictor.valid)
            mcc = float(mcc_of_counts(counts).max())
            message = f"step {steps}: validation MCC {mcc:.3f} as trained"
            if base_weight_share > 0.0:
                network.set_weights(interpolated_weights(trained, base_weights, base_weight_share))
                counts = validation_counts(predictor.probability(network), area, predictor.valid)
                network.set_weights(trained)
                mcc = float(mcc_of_counts(counts).max())
                message += f", {mcc:.3f} moved {base_weight_share:.0%} back"
            log(f"{message} (best threshold), {time.time() - start:.0f} s")
            if checks_dir:
                os.makedirs(checks_dir, exist_ok=True)
                np.savez(os.path.join(checks_dir, f"step_{steps}.npz"), *trained)
            if mcc > best[0]:
                best = (mcc, trained, steps, counts)
            next_check = time.time() + check_every_s
    network.set_weights(interpolated_weights(best[1], base_weights, base_weight_share))
    counts = best[3]
    threshold = float(THRESHOLDS[calibrated_threshold_index(counts)])
    scores = _scores_at(counts, threshold)
    log(f"Adapted model (weights of step {best[2]} of {steps}, moved {base_weight_share:.0%} of the way back to the "
        f"base model's): validation MCC {scores['mcc']:.3f}, F1 {scores['f1']:.3f}, "
        f"precision {scores['precision']:.3f}, recall {scores['recall']:.3f} at threshold {threshold:g} (the middle "
        f"of those within {THRESHOLD_TOLERANCE:g} of the best MCC, {best[0]:.3f}).")
    check_cancel()
    card = adapted_card(base, request, plan, area, threshold, scores, base_scores, steps, tiles,
                        time.time() - start, name, base_weight_share)
    export_onnx(network, card, output_path, overwrite=True, sizes_px=(96,), tolerance=1e-3)
    seconds = time.time() - start
    progress(1.0)
    log(f"Wrote {output_path} after {seconds:.0f} s ({steps} steps of {batch_size} tiles).")
    return AdaptationResult(output_path, threshold, scores, base_scores, steps, tiles, seconds, card)


def result_json(result: AdaptationResult) -> str:
    """The result as the JSON the Processing algorithm reads."""
    return json.dumps({"output": result.output_path, "threshold": result.threshold, "scores": result.scores,
                       "base_scores": result.base_scores, "steps": result.steps, "tiles": result.tiles,
                       "seconds": round(result.seconds, 1)}, indent=1)
