"""Train the combined (generalised) ResUNet on tile stores, resumably and reproducibly.

A run lives in ``run.output_dir``:

- ``checkpoint/last.keras`` + ``checkpoint/state.json``: model, optimizer and
  schedule state after the last finished epoch (written atomically);
- ``best.keras``: the model with the lowest validation loss so far;
- ``history.csv``: losses, learning rate and validation scores per epoch;
- ``run.json``: the settings and events the run was started with.

A killed run started again with the same config resumes after its last
finished epoch and ends with the same weights as an uninterrupted run: the
tile order and augmentation of epoch ``e`` depend only on ``(seed, e)``, and
every dropout seed generator is reset from ``(seed, e)`` at the start of each
epoch. The schedule follows the paper: Adam at ``learning_rate``, learning
rate x0.1 when the validation loss has not improved for ``lr_patience``
epochs, stop after ``stop_patience`` epochs without improvement (Keras'
``ReduceLROnPlateau`` and ``EarlyStopping``, their state kept in the
checkpoint), keep the best validation model. One ``fit`` call runs every
epoch; callbacks re-estimate batch-norm statistics and score the validation
tiles after each epoch, before the schedule reads the validation loss.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from model.card import ImageNormalisation, OUTPUT_NAME, ModelCard, standard_inputs
from model.metrics import Confusion, confusion

from .augment import AugmentSettings, augment_sample, sample_inputs
from .config import Config, RunConfig
from .tile_store import TileStore

CHECKPOINT_DIR = "checkpoint"
LAST_MODEL = "last.keras"
STATE_FILE = "state.json"
BEST_MODEL = "best.keras"
HISTORY_FILE = "history.csv"


def training_card(run: RunConfig, events: Sequence[str], metrics: Optional[Dict[str, Any]] = None,
                  name: str = "landslide-resunet", description: str = "",
                  trained_on: Optional[str] = None) -> ModelCard:
    """The card a model trained with ``run`` carries; training scales inputs with it too."""
    provenance: Dict[str, Any] = {"training_events": list(events), "width": run.width, "seed": run.seed,
                                  "software": "landslide_mapper training package"}
    if trained_on:
        provenance["trained_on"] = trained_on
    return ModelCard(
        name=name,
        version="1",
        description=description or f"ResUNet (width {run.width:g}) trained on {', '.join(events)}.",
        inputs=standard_inputs(),
        output_name=OUTPUT_NAME,
        gsd_m=run.gsd_m,
        tile_px=run.tile_px,
        context_px=run.context_px,
        threshold=run.threshold,
        min_area_m2=run.min_area_m2,
        image_normalisation=ImageNormalisation(method=run.image_normalisation),
        provenance=provenance,
        metrics=dict(metrics or {}),
    )


class TileBatches:
    """Batches of (inputs, targets) from a tile store; order and augmentation fixed by (seed, epoch).

    Targets are ``(N, T, T, 2)``: landslide mask and validity weight, the same
    for every output (the deep-supervision heads are resized to full size).
    """

    def __init__(self, store: TileStore, indices: np.ndarray, card: ModelCard, batch_size: int,
                 output_names: Sequence[str], seed: int, epoch: int, augment: Optional[AugmentSettings],
                 shuffle: bool = True):
        self.store = store
        self.card = card
        self.batch_size = batch_size
        self.output_names = list(output_names)
        self.seed = seed
        self.epoch = epoch
        self.augment = augment
        order = np.asarray(indices)
        if shuffle:
            order = np.random.default_rng([seed, epoch]).permutation(order)
        self.order = order

    def __len__(self) -> int:
        return int(math.ceil(len(self.order) / self.batch_size))

    def batch(self, index: int):
        """The ``index``-th batch as (inputs dict, targets dict)."""
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        inputs: Dict[str, List[np.ndarray]] = {}
        targets: List[np.ndarray] = []
        for tile in chosen:
            sample = self.store.sample(int(tile))
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, self.epoch, int(tile)])
                sample = augment_sample(sample, rng, self.augment)
            x, y = sample_inputs(sample, self.card, self.card.gsd_m)
            for role, array in x.items():
                inputs.setdefault(role, []).append(array)
            targets.append(y)
        stacked = {self.card.input_for_role(role).tensor_name: np.stack(arrays) for role, arrays in inputs.items()}
        target = np.stack(targets).astype(np.float32)
        return stacked, {name: target for name in self.output_names}


def _keras_dataset(batches_of_epoch: Callable[[int], TileBatches], first_epoch: int, last_epoch: int, steps: int):
    """A keras.utils.PyDataset of every batch of epochs ``first_epoch`` to ``last_epoch - 1``: its ``i``-th
    batch is batch ``i % steps`` of epoch ``first_epoch + i // steps``.

    Batches depend on their index only, never on when they are read, so the
    batches tf.data prefetches across an epoch boundary are those of the next
    epoch, and nothing is prefetched past the last one (built lazily to keep
    imports light).
    """
    import keras

    class _Dataset(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self._epoch, self._batches = None, None

        @property
        def num_batches(self):
            return (last_epoch - first_epoch) * steps

        def __getitem__(self, index):
            epoch, step = first_epoch + index // steps, index % steps
            if epoch != self._epoch:
                self._epoch, self._batches = epoch, batches_of_epoch(epoch)
            return self._batches.batch(step)

    return _Dataset()


@dataclass
class ScheduleState:
    """Everything beyond the model and optimizer needed to resume a run.

    ``epochs_since_improvement`` and ``epochs_since_lr_change`` are the
    ``wait`` counters of Keras' EarlyStopping and ReduceLROnPlateau, and
    ``best_val_loss`` their ``best`` (see :func:`schedule_callbacks`).
    """

    epoch: int = 0
    best_val_loss: float = float("inf")
    best_epoch: int = -1
    epochs_since_improvement: int = 0
    epochs_since_lr_change: int = 0
    learning_rate: float = 1e-4
    stopped_early: bool = False
    best_metrics: Dict[str, float] = field(default_factory=dict)


def build_model(run: RunConfig):
    """A compiled ResUNet for ``run`` (fresh, or from ``run.init_model`` to fine-tune)."""
    import keras

    from .losses import loss_weights, output_losses
    from .network import OUTPUT_NAMES, build_resunet

    network = build_resunet(width=run.width, l2=run.l2)
    if run.init_model:
        source = keras.models.load_model(run.init_model, compile=False) if run.init_model.endswith(".keras") else None
        if source is not None:
            network.set_weights(source.get_weights())
        else:
            network.load_weights(run.init_model)
    network.compile(
        optimizer=keras.optimizers.Adam(learning_rate=run.learning_rate),
        loss=output_losses(OUTPUT_NAMES, run.focal_alpha, run.focal_beta, run.focal_gamma),
        loss_weights=loss_weights(OUTPUT_NAMES),
        jit_compile=run.jit_compile,
    )
    return network


def reseed_dropout(network, seed: int, epoch: int) -> None:
    """Reset every dropout seed generator from (seed, epoch) so resumed epochs match."""
    for index, layer in enumerate(network.layers):
        generator = getattr(layer, "seed_generator", None)
        if generator is not None:
            generator.state.assign(np.array([seed * 1000003 + epoch * 1009 + index, 0], dtype=generator.state.dtype))


def recalibrate_batch_norm(network, batches: "TileBatches", max_batches: int) -> int:
    """Set every batch-norm layer's moving statistics to their average over training batches.

    "Precise BN": Keras keeps exponential moving averages with momentum 0.99,
    which after few steps are far from the statistics the weights were trained
    with, so inference (and the exported ONNX graph) would see badly scaled
    activations. The mean and variance of each batch-norm layer's input over
    up to ``max_batches`` un-augmented training batches (forward pass in
    training mode, as during training) replace the moving averages; the
    trained weights are untouched. Returns the number of batches used.
    """
    import keras
    from keras import layers

    norms = [layer for layer in _all_layers(network) if isinstance(layer, layers.BatchNormalization)]
    count = min(max_batches, len(batches))
    if not norms or count == 0:
        return 0
    probe = keras.Model(network.inputs, [layer.input for layer in norms])
    saved = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in norms]
    sums = [np.zeros(layer.moving_mean.shape, np.float64) for layer in norms]
    squares = [np.zeros(layer.moving_mean.shape, np.float64) for layer in norms]
    for k in range(count):
        x, _ = batches.batch(k)
        features = probe(x, training=True)
        for index, feature in enumerate(features):
            values = np.asarray(feature, dtype=np.float64).reshape(-1, feature.shape[-1])
            sums[index] += values.mean(axis=0)
            squares[index] += (values ** 2).mean(axis=0)
    for layer, total, total_sq, (mean0, var0) in zip(norms, sums, squares, saved):
        mean = total / count
        variance = np.maximum(total_sq / count - mean ** 2, 0.0)
        layer.moving_mean.assign(mean.astype(mean0.dtype))
        layer.moving_variance.assign(variance.astype(var0.dtype))
    return count


def _all_layers(network):
    for layer in network.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def validation_scores(network, store: TileStore, indices: np.ndarray, card: ModelCard, batch_size: int,
                      output_names: Sequence[str]) -> Dict[str, float]:
    """Validation loss (as compiled) and pixel scores at the card's threshold over valid pixels."""
    if len(indices) == 0:
        return {}
    batches = TileBatches(store, indices, card, batch_size, output_names, seed=0, epoch=0, augment=None, shuffle=False)
    totals = Confusion()
    losses = []
    for index in range(len(batches)):
        x, y = batches.batch(index)
        outputs = network.predict_on_batch(x)  # one forward pass serves the scores and the loss
        prediction = np.asarray(outputs[0])[..., 0]
        target = y[output_names[0]]
        valid = target[..., 1] > 0
        totals = totals + confusion(target[..., 0] > 0.5, prediction >= card.threshold, valid)
        loss = network.compute_loss(x=x, y=y, y_pred=outputs, training=False)
        losses.append(float(loss) * len(target))
    scores = {f"val_{k}": float(v) for k, v in totals.scores().items()}
    scores["val_loss"] = float(np.sum(losses) / len(indices))
    return scores


def best_validation_metrics(run_dir: str) -> Dict[str, Any]:
    """The validation scores of a finished run's best epoch, with what they were measured on (for its card)."""
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as handle:
        run_info = json.load(handle)
    with open(os.path.join(run_dir, CHECKPOINT_DIR, STATE_FILE), encoding="utf-8") as handle:
        state = json.load(handle)
    metrics = {k[len("val_"):]: v for k, v in state.get("best_metrics", {}).items()
               if k in ("val_mcc", "val_f1", "val_precision", "val_recall")}
    if metrics:
        metrics["evaluated_on"] = (f"validation tiles ({run_info['validation_tiles']}) of the training events "
                                   f"{', '.join(run_info['events'])}; best epoch {state['best_epoch'] + 1}")
    return metrics


CALIBRATION_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.30, 0.951, 0.05)) + (0.97, 0.98, 0.99)


def calibrate_threshold(network, store: TileStore, indices: np.ndarray, card: ModelCard, batch_size: int,
                        thresholds: Sequence[float] = CALIBRATION_THRESHOLDS,
                        output_name: str = OUTPUT_NAME) -> Tuple[float, Dict[float, Confusion]]:
    """The probability threshold with the best MCC on the tiles ``indices`` (one forward pass each).

    Use the validation tiles of the training events, never the events a model is
    evaluated on. Ties go to the threshold nearest 0.5. Returns the threshold and
    the confusion counts at every threshold tried.
    """
    if len(indices) == 0:
        raise ValueError("No tiles to calibrate the threshold on (the run has no validation split).")
    batches = TileBatches(store, indices, card, batch_size, [output_name], seed=0, epoch=0, augment=None,
                          shuffle=False)
    totals = {float(t): Confusion() for t in thresholds}
    for index in range(len(batches)):
        x, y = batches.batch(index)
        outputs = network.predict_on_batch(x)
        prediction = np.asarray(outputs[0] if isinstance(outputs, (list, tuple)) else outputs)[..., 0]
        target = y[output_name]
        truth, valid = target[..., 0] > 0.5, target[..., 1] > 0
        for t in totals:
            totals[t] = totals[t] + confusion(truth, prediction >= t, valid)
    best = max(totals, key=lambda t: (round(totals[t].mcc, 6), -abs(t - 0.5)))
    return best, totals


class Progress:
    """Per-step and per-epoch progress lines with an ETA."""

    def __init__(self, epochs: int, steps: int, log: Callable[[str], None]):
        self.epochs, self.steps, self.log = epochs, steps, log
        self.started = time.perf_counter()
        self.steps_done = 0

    def step(self, epoch: int, step: int, loss: float, remaining_epochs: int) -> None:
        self.steps_done += 1
        elapsed = time.perf_counter() - self.started
        per_step = elapsed / self.steps_done
        eta = per_step * ((self.steps - step - 1) + remaining_epochs * self.steps)
        if step == 0 or (step + 1) % max(1, self.steps // 10) == 0 or step + 1 == self.steps:
            self.log(f"epoch {epoch + 1}/{self.epochs} step {step + 1}/{self.steps} loss {loss:.4f} "
                     f"({per_step:.2f} s/step, ETA {eta / 60:.1f} min)")


def schedule_callbacks(run: RunConfig, state: ScheduleState):
    """The paper's schedule as Keras callbacks, resumed from ``state``.

    ``ReduceLROnPlateau`` multiplies the learning rate by 0.1 when the
    validation loss has not fallen for ``run.lr_patience`` epochs;
    ``EarlyStopping`` stops after ``run.stop_patience`` such epochs. A loss
    counts as lower only when it is below the best so far (``min_delta`` 0),
    and their counters and best loss start from ``state`` so that a resumed
    run continues the schedule where it stopped.

    Returns:
        ``(reduce_lr, early_stopping)``.
    """
    import keras

    class ResumedReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.best, self.wait = state.best_val_loss, state.epochs_since_lr_change

    class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            self.best, self.wait, self.best_epoch = state.best_val_loss, state.epochs_since_improvement, state.best_epoch

    return (ResumedReduceLROnPlateau(monitor="val_loss", mode="min", factor=0.1, patience=run.lr_patience,
                                     min_delta=0.0, cooldown=0, min_lr=0.0),
            ResumedEarlyStopping(monitor="val_loss", mode="min", patience=run.stop_patience, min_delta=0.0))


def _save_checkpoint(network, state: ScheduleState, run_dir: str) -> None:
    """Model, optimizer and schedule state, replaced atomically."""
    folder = os.path.join(run_dir, CHECKPOINT_DIR)
    partial = folder + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    network.save(os.path.join(partial, LAST_MODEL))
    with open(os.path.join(partial, STATE_FILE), "w", encoding="utf-8") as handle:
        json.dump(asdict(state), handle, indent=1)
    old = folder + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(folder):
        os.replace(folder, old)
    os.replace(partial, folder)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(run_dir: str):
    """(model, state) of a previous run, or (None, None)."""
    import keras

    from . import losses, network  # noqa: F401  (register custom objects)

    folder = os.path.join(run_dir, CHECKPOINT_DIR)
    if not os.path.exists(os.path.join(folder, STATE_FILE)):
        return None, None
    with open(os.path.join(folder, STATE_FILE), encoding="utf-8") as handle:
        state = ScheduleState(**json.load(handle))
    return keras.models.load_model(os.path.join(folder, LAST_MODEL)), state


def _append_history(run_dir: str, row: Dict[str, Any]) -> None:
    path = os.path.join(run_dir, HISTORY_FILE)
    new = not os.path.exists(path)
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _truncate_history(run_dir: str, epochs_done: int) -> None:
    """Drop history rows of epochs after the checkpoint (a run killed between writes)."""
    path = os.path.join(run_dir, HISTORY_FILE)
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows = [r for r in rows if int(r["epoch"]) <= epochs_done]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        if rows:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def train(config: Config, store_dir: str, log: Callable[[str], None] = print,
          max_epochs_this_call: Optional[int] = None, events: Optional[Sequence[str]] = None) -> ScheduleState:
    """Train (or resume) the run described by ``config`` on the tile stores in ``store_dir``.

    Args:
        config: The run settings and events.
        store_dir: Folder of the tile stores (``python -m training build-dataset``).
        log: Progress sink.
        max_epochs_this_call: Stop after this many epochs in this call (for
            tests of resuming; ``None`` runs to the end).
        events: Event names to train on (default: every event of the config).

    Returns:
        The schedule state at the end.
    """
    import keras
    import tensorflow as tf

    from .network import OUTPUT_NAMES

    run = config.run
    names = list(events or [e.name for e in config.events])
    store = TileStore(store_dir, names)
    train_idx, val_idx = store.indices("train"), store.indices("validation")
    if len(train_idx) == 0:
        raise ValueError(f"No training tiles in {store_dir} for events {names}.")
    if store.image_normalisation != run.image_normalisation:
        raise ValueError(f"The tile stores of {names} were built with image_normalisation "
                         f"'{store.image_normalisation}', the config asks for '{run.image_normalisation}': the model's "
                         "card would not describe its tiles. Rebuild the stores (build-dataset --overwrite) or change "
                         "the config.")
    card = training_card(run, names)
    os.makedirs(run.output_dir, exist_ok=True)
    keras.utils.set_random_seed(run.seed)
    tf.config.experimental.enable_op_determinism()
    network, state = _load_checkpoint(run.output_dir)
    if network is None:
        network, state = build_model(run), ScheduleState(learning_rate=run.learning_rate)
        with open(os.path.join(run.output_dir, "run.json"), "w", encoding="utf-8") as handle:
            json.dump({"run": asdict(run), "events": names, "store_dir": os.path.abspath(store_dir),
                       "train_tiles": int(len(train_idx)), "validation_tiles": int(len(val_idx))}, handle, indent=1)
        _truncate_history(run.output_dir, 0)
    else:
        log(f"Resuming after epoch {state.epoch} (best validation loss {state.best_val_loss:.4f}).")
        _truncate_history(run.output_dir, state.epoch)
    settings = AugmentSettings() if run.augment else None
    steps = len(TileBatches(store, train_idx, card, run.batch_size, OUTPUT_NAMES, run.seed, 0, None))
    steps = min(steps, run.steps_per_epoch) if run.steps_per_epoch else steps
    last_epoch = run.epochs if max_epochs_this_call is None else min(run.epochs, state.epoch + max_epochs_this_call)
    if state.epoch >= last_epoch or state.stopped_early:
        return state
    progress = Progress(run.epochs, steps, log)
    reduce_lr, early_stopping = schedule_callbacks(run, state)

    def batches_of(epoch: int) -> TileBatches:
        return TileBatches(store, train_idx, card, run.batch_size, OUTPUT_NAMES, run.seed, epoch, settings)

    class BeforeSchedule(keras.callbacks.Callback):
        """Seeds and progress during an epoch; precise BN and the validation scores after it."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.started = epoch, time.perf_counter()
            self.learning_rate = float(network.optimizer.learning_rate.numpy())
            reseed_dropout(network, run.seed, epoch)

        def on_train_batch_end(self, batch, logs=None):
            progress.step(self.epoch, batch, float((logs or {}).get("loss", float("nan"))), run.epochs - self.epoch - 1)

        def on_epoch_end(self, epoch, logs=None):
            if run.bn_recalibration_batches:
                plain = TileBatches(store, train_idx, card, run.batch_size, OUTPUT_NAMES, run.seed, epoch, None)
                recalibrate_batch_norm(network, plain, run.bn_recalibration_batches)
            self.scores = validation_scores(network, store, val_idx, card, run.batch_size, OUTPUT_NAMES)
            logs["val_loss"] = self.scores.get("val_loss", float(logs["loss"]))  # what the schedule reads

    class AfterSchedule(keras.callbacks.Callback):
        """Best model, history and checkpoint, once the schedule has seen the epoch."""

        def on_epoch_end(self, epoch, logs=None):
            improved = early_stopping.wait == 0
            state.best_val_loss = float(early_stopping.best)
            state.epochs_since_improvement = int(early_stopping.wait)
            state.epochs_since_lr_change = int(reduce_lr.wait)
            state.learning_rate = float(network.optimizer.learning_rate.numpy())
            state.stopped_early = bool(network.stop_training)
            if improved:
                state.best_epoch = epoch
                state.best_metrics = {k: v for k, v in before.scores.items() if k.startswith("val_")}
                network.save(os.path.join(run.output_dir, BEST_MODEL))
            state.epoch = epoch + 1
            _append_history(run.output_dir, {"epoch": epoch + 1, "loss": float(logs["loss"]),
                                             "learning_rate": before.learning_rate,
                                             "seconds": round(time.perf_counter() - before.started, 2),
                                             **before.scores})
            _save_checkpoint(network, state, run.output_dir)
            log(f"epoch {epoch + 1}/{run.epochs} done: loss {logs['loss']:.4f}, val_loss {logs['val_loss']:.4f}, "
                f"val_mcc {before.scores.get('val_mcc', float('nan')):.3f}, lr {state.learning_rate:.1e}"
                + (" (best)" if improved else ""))

    before = BeforeSchedule()
    network.optimizer.learning_rate.assign(state.learning_rate)
    network.fit(_keras_dataset(batches_of, state.epoch, last_epoch, steps), steps_per_epoch=steps,
                initial_epoch=state.epoch, epochs=last_epoch, verbose=0, shuffle=False,
                callbacks=[before, reduce_lr, early_stopping, AfterSchedule()])
    return state
