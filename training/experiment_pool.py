"""Train and export the models of an experiment, each in a fresh Python process.

Each model is trained and exported in a fresh Python process (the same
state as ``python -m training train`` then ``export``), ``jobs`` of them at a
time: for small networks most of a model's time is the single-threaded
tracing of its training graph, so models trained side by side use more
cores. A model whose training events equal those of an earlier model of its
resolution is not trained again: training is deterministic, so its ONNX file
is the earlier one with its own card (with two training events, each
jackknife model is the other event's conventional model).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any, Callable, Dict, List, Sequence

from .config import Config
from .experiment_config import (
    MODEL_FILE,
    ExperimentConfig,
    ExperimentError,
    ModelSpec,
    _card,
    _res_label,
    resolution_dir,
)
from .train import best_validation_metrics

def train_and_export(config: ExperimentConfig, resolution_m: float, spec: ModelSpec, store_dir: str,
                     log: Callable[[str], None] = print) -> str:
    """Train (or resume) one model in this process and export it to ONNX with its card; returns the ONNX path.

    :func:`run_experiment` calls it in a fresh process per model (see
    :func:`train_in_subprocesses`).
    """
    import keras

    from . import losses, network  # noqa: F401  (register custom objects)
    from .export import export_onnx
    from .train import BEST_MODEL, CHECKPOINT_DIR, LAST_MODEL, train

    model_dir = os.path.join(resolution_dir(config, resolution_m), spec.name)
    onnx_path = os.path.join(model_dir, MODEL_FILE)
    label = f"[{_res_label(resolution_m)} {spec.name}]"
    run = replace(config.run, gsd_m=float(resolution_m), output_dir=model_dir)
    log(f"{label} training on {', '.join(spec.trained_on)} ({run.epochs} epochs at most) in {model_dir}")
    started = time.perf_counter()
    try:
        state = train(Config(run, config.events, config.source), store_dir,
                      log=lambda message: log(f"{label} {message}"), events=list(spec.trained_on))
    except ValueError as exc:  # e.g. no training tiles
        raise ExperimentError(f"{label} cannot be trained: {exc}") from exc
    best = os.path.join(model_dir, BEST_MODEL)
    source = best if os.path.exists(best) else os.path.join(model_dir, CHECKPOINT_DIR, LAST_MODEL)
    if source != best:
        log(f"{label} no best validation model (validation loss never finite); exporting the last epoch.")
    model = keras.models.load_model(source, compile=False)
    card = _card(config, resolution_m, spec, best_validation_metrics(model_dir))
    worst = export_onnx(model, card, onnx_path, overwrite=True, tolerance=config.experiment.parity_tolerance)
    log(f"{label} trained {state.epoch} epochs (best {state.best_epoch + 1}) and exported {onnx_path} "
        f"(parity {worst:.2g}) in {time.perf_counter() - started:.0f} s")
    return onnx_path


def _train_in_child(config: ExperimentConfig, resolution_m: float, spec: ModelSpec, store_dir: str, messages) -> None:
    def log(message: str) -> None:
        messages.put(("log", spec.name, message))

    try:
        messages.put(("done", spec.name, train_and_export(config, resolution_m, spec, store_dir, log=log)))
    except BaseException as exc:  # reported to the parent, which raises
        messages.put(("error", spec.name, f"{type(exc).__name__}: {exc}"))


def train_in_subprocesses(config: ExperimentConfig, resolution_m: float, specs: Sequence[ModelSpec], store_dir: str,
                          jobs: int = 1, log: Callable[[str], None] = print) -> None:
    """:func:`train_and_export` each model in a fresh Python process, up to ``jobs`` at a time.

    Every model starts from the same process state, as ``python -m training
    train`` and ``export`` would (converting several models in one process
    once produced a graph with an extra output dimension), and TensorFlow's
    memory is returned after each model. The processes' log lines come back
    through ``log``. After a failure no further model is started; the ones
    running are finished, then :class:`ExperimentError` is raised.
    """
    import multiprocessing
    import queue

    label = _res_label(resolution_m)
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    pending = list(specs)
    running: Dict[str, Any] = {}
    errors: List[str] = []

    def handle(item) -> None:
        kind, name, payload = item
        if kind == "log":
            log(payload)
            return
        running.pop(name).join()
        if kind == "error":
            errors.append(f"[{label} {name}] {payload}")

    try:
        while pending or running:
            while pending and len(running) < max(1, jobs) and not errors:
                spec = pending.pop(0)
                process = context.Process(target=_train_in_child, name=f"train-{label}-{spec.name}",
                                          args=(config, resolution_m, spec, store_dir, messages))
                process.start()
                running[spec.name] = process
            if not running:
                break
            try:
                handle(messages.get(timeout=1.0))
            except queue.Empty:
                dead = [name for name, process in running.items() if not process.is_alive()]
                if dead:
                    try:  # a result written just before the process ended
                        while True:
                            handle(messages.get(timeout=0.5))
                    except queue.Empty:
                        pass
                    for name in dead:
                        if name in running:
                            code = running.pop(name).exitcode
                            errors.append(f"[{label} {name}] the training process ended without a result "
                                          f"(exit code {code}).")
    finally:
        for process in running.values():
            if process.is_alive():
                process.terminate()
            process.join()
    if errors:
        more = f" ({len(errors) - 1} more model(s) failed too: {'; '.join(errors[1:])})" if len(errors) > 1 else ""
        raise ExperimentError(errors[0] + more)
