"""The training schedule (Keras ReduceLROnPlateau and EarlyStopping), resumed from a checkpointed state."""

import math

import pytest

keras = pytest.importorskip("keras")

from training.config import RunConfig  # noqa: E402
from training.train import ScheduleState, schedule_callbacks  # noqa: E402

RUN = RunConfig(output_dir="unused", learning_rate=1e-2, lr_patience=2, stop_patience=4)
LOSSES = [1.0, 0.8, 0.9, 0.85, 0.7, 0.7, 0.75, 0.9, 0.95, 1.0]


def tiny_model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=RUN.learning_rate), loss="mse")
    return model


def run_schedule(losses, state, first_epoch=0, model=None):
    """Feed validation losses epoch by epoch; return (learning rate after each epoch, stop epoch or None, state)."""
    model = model or tiny_model()
    model.optimizer.learning_rate.assign(state.learning_rate)
    model.stop_training = False
    reduce_lr, early_stopping = schedule_callbacks(RUN, state)
    for callback in (reduce_lr, early_stopping):
        callback.set_model(model)
        callback.on_train_begin()
    rates, stopped = [], None
    for epoch, loss in enumerate(losses, start=first_epoch):
        for callback in (reduce_lr, early_stopping):
            callback.on_epoch_end(epoch, {"val_loss": loss})
        rates.append(float(model.optimizer.learning_rate.numpy()))
        state.best_val_loss, state.epoch = float(early_stopping.best), epoch + 1
        state.epochs_since_improvement, state.epochs_since_lr_change = early_stopping.wait, reduce_lr.wait
        state.learning_rate = rates[-1]
        if model.stop_training:
            stopped = epoch
            break
    return rates, stopped, state


def test_learning_rate_falls_tenfold_after_lr_patience_and_training_stops_after_stop_patience():
    rates, stopped, _ = run_schedule(LOSSES, ScheduleState(learning_rate=RUN.learning_rate))
    # best 1.0, 0.8; no gain at epochs 2, 3 -> x0.1; best 0.7 at 4; an equal 0.7 is no gain: 5, 6 -> x0.1;
    # 7, 8: the fourth epoch without gain stops training, and the second since the last cut cuts again
    assert [round(math.log10(r)) for r in rates] == [-2, -2, -2, -3, -3, -3, -4, -4, -5]
    assert stopped == 8


def test_a_resumed_schedule_continues_where_it_stopped():
    _, _, halfway = run_schedule(LOSSES[:6], ScheduleState(learning_rate=RUN.learning_rate))
    rates, stopped, _ = run_schedule(LOSSES[6:], halfway, first_epoch=6)
    straight, straight_stop, _ = run_schedule(LOSSES, ScheduleState(learning_rate=RUN.learning_rate))
    assert rates == pytest.approx(straight[6:]) and stopped == straight_stop


def test_a_not_finite_first_loss_is_no_improvement():
    _, _, state = run_schedule([float("nan"), 0.5], ScheduleState(learning_rate=RUN.learning_rate))
    assert state.best_val_loss == 0.5 and state.epochs_since_improvement == 0
