"""Experiments like the paper's: conventional, combined and jackknife models at several resolutions.

Prakash, Manconi & Loew (2021) compare models trained on one event
("conventional"), on every event ("combined") and on every event but one
("jackknife", the left-out event playing an unseen one), and score each of
them on held-out parts of the training events and on events no model saw
(their Figures 2 and 4). :func:`run_experiment` repeats that protocol with this
package's trainer for each resolution of the configuration.

Every model is evaluated (:func:`training.evaluate.evaluate_on_event`, the
plugin's own mapping) on the test area of every training event and on every
unseen event (its test area if it has one, else the whole event). Each row
says how the evaluated event relates to the model: ``trained on`` (its test
area, which training never saw), ``left out`` (a jackknife model's excluded
event), ``other training event`` (a conventional model on another training
event) or ``unseen``.

Started again, the runner resumes: tile stores that exist are kept, a model
whose ONNX file exists is not retrained, an interrupted training resumes
from its checkpoint (:func:`training.train.train`), and an evaluation whose
JSON exists is not recomputed (a model trained anew drops its old ones).

The configuration, the models of a resolution and the layout of ``output_dir`` are
:mod:`training.experiment_config`'s; each model is trained in its own process by
:mod:`training.experiment_pool`; the table and plots are :mod:`training.experiment_plots`'s.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Tuple

from model.errors import LandslideMapperError

from .config import Config, EventConfig
from .experiment_config import (
    EVALUATION_DIR,
    MODEL_FILE,
    RESULTS_FILE,
    TILES_DIR,
    ExperimentConfig,
    ExperimentError,
    ModelSpec,
    _card,
    _res_label,
    model_specs,
    resolution_dir,
)
from .experiment_plots import spider_plot, write_results_csv
from .experiment_pool import train_in_subprocesses
from .train import best_validation_metrics


@dataclass
class ExperimentResult:
    """What a run wrote."""

    rows: List[Dict[str, Any]]
    results_csv: str
    plots: List[str]
    models_trained: List[str]
    models_copied: List[str]
    models_skipped: List[str]
    evaluations_done: int
    evaluations_skipped: int


def _write_json(path: str, record: Dict[str, Any]) -> None:
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
    os.replace(partial, path)


def copy_twin(config: ExperimentConfig, resolution_m: float, spec: ModelSpec, twin: ModelSpec,
              log: Callable[[str], None] = print) -> str:
    """Give ``spec`` the exported model of ``twin``, trained on the same events with the same run.

    Training is deterministic, so training again would give the same weights
    (with two training events, each jackknife model is the other event's
    conventional model). Only the card differs.
    """
    from model.card import write_card_to_file

    folder = resolution_dir(config, resolution_m)
    source = os.path.join(folder, twin.name, MODEL_FILE)
    target = os.path.join(folder, spec.name, MODEL_FILE)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    card = _card(config, resolution_m, spec, best_validation_metrics(os.path.join(folder, twin.name)), twin.name)
    write_card_to_file(source, card, target + ".partial")
    os.replace(target + ".partial", target)
    log(f"[{_res_label(resolution_m)} {spec.name}] same training as {twin.name}: copied its model to {target}")
    return target


def _evaluation_targets(config: ExperimentConfig) -> List[Tuple[EventConfig, bool]]:
    """(event, is a training event) in table order: training events, then unseen events."""
    return [(e, True) for e in config.events] + [(e, False) for e in config.unseen]


def evaluate_model_on_events(config: ExperimentConfig, resolution_m: float, spec: ModelSpec, onnx_path: str,
                             log: Callable[[str], None] = print) -> Tuple[List[Dict[str, Any]], int]:
    """Score one model on every training event's test area and every unseen event.

    Returns:
        (one record per evaluated event, number of evaluations computed in this
        call); records whose JSON file exists are read, not recomputed.
    """
    from .evaluate import evaluate_on_event

    folder = os.path.join(os.path.dirname(onnx_path), EVALUATION_DIR)
    os.makedirs(folder, exist_ok=True)
    training_names = [e.name for e in config.events]
    label = f"[{_res_label(resolution_m)} {spec.name}]"
    records, computed = [], 0
    for event, _ in _evaluation_targets(config):
        path = os.path.join(folder, f"{event.name}.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                records.append(json.load(handle))
            continue
        with tempfile.TemporaryDirectory(prefix="landslide_experiment_") as work_dir:
            try:
                score = evaluate_on_event(onnx_path, event, work_dir, use_test_area=True,
                                          threads=config.experiment.threads)
            except LandslideMapperError as exc:
                raise ExperimentError(f"{label} cannot be evaluated on '{event.name}': {exc}") from exc
        relation = spec.relation(event.name, training_names)
        record = {"resolution_m": float(resolution_m), "kind": spec.kind, "model": spec.name,
                  "trained_on": list(spec.trained_on), "evaluated_event": event.name, "relation": relation,
                  "area": "test area" if event.test_area is not None else "whole event",
                  **score.confusion.scores(), "landslides_mapped": score.landslides_mapped,
                  "seconds": round(score.seconds, 2)}
        _write_json(path, record)
        computed += 1
        log(f"{label} on {event.name} ({relation}, {record['area']}): MCC {record['mcc']:.3f}, "
            f"F1 {record['f1']:.3f}, precision {record['precision']:.3f}, recall {record['recall']:.3f} "
            f"({score.seconds:.0f} s)")
        records.append(record)
    return records, computed


# --------------------------------------------------------------------------- the runner

def run_experiment(config: ExperimentConfig, log: Callable[[str], None] = print) -> ExperimentResult:
    """Build the tile stores, train, export and evaluate every model; write the table and plots."""
    from .datasets import build_dataset

    settings = config.experiment
    os.makedirs(settings.output_dir, exist_ok=True)
    training_names = [e.name for e in config.events]
    specs = model_specs(training_names, settings.kinds)
    rows: List[Dict[str, Any]] = []
    plots: List[str] = []
    trained, copied, skipped = [], [], []
    done = reused = 0
    for resolution in settings.resolutions_m:
        label = _res_label(resolution)
        store_dir = os.path.join(resolution_dir(config, resolution), TILES_DIR)
        run = replace(config.run, gsd_m=float(resolution))
        started = time.perf_counter()
        build_dataset(Config(run, config.events, config.source), store_dir,
                      log=lambda message: log(f"[{label} tiles] {message}"))
        log(f"[{label}] tile stores ready in {store_dir} ({time.perf_counter() - started:.0f} s)")
        resolution_rows: List[Dict[str, Any]] = []
        onnx_of = {spec.name: os.path.join(resolution_dir(config, resolution), spec.name, MODEL_FILE) for spec in specs}
        existing = {name for name, path in onnx_of.items() if os.path.exists(path)}
        twin_of: Dict[str, ModelSpec] = {}
        first_of: Dict[Tuple[str, ...], ModelSpec] = {}
        for spec in specs:
            twin_of[spec.name] = first_of.setdefault(spec.trained_on, spec)
        to_train = [s for s in specs if s.name not in existing and twin_of[s.name] is s]
        if to_train:
            log(f"[{label}] training {len(to_train)} model(s), {settings.jobs} at a time: "
                f"{', '.join(s.name for s in to_train)}")
            train_in_subprocesses(config, resolution, to_train, store_dir, settings.jobs, log)
        for spec in specs:
            onnx_path = onnx_of[spec.name]
            if spec.name in existing:
                log(f"[{label} {spec.name}] skipped: {onnx_path} exists, not retrained.")
                skipped.append(f"{label}/{spec.name}")
            else:
                if twin_of[spec.name] is spec:
                    trained.append(f"{label}/{spec.name}")
                else:
                    copy_twin(config, resolution, spec, twin_of[spec.name], log)
                    copied.append(f"{label}/{spec.name}")
                # scores of an earlier model of that name are stale
                shutil.rmtree(os.path.join(os.path.dirname(onnx_path), EVALUATION_DIR), ignore_errors=True)
            records, computed = evaluate_model_on_events(config, resolution, spec, onnx_path, log)
            done += computed
            reused += len(records) - computed
            for record in records:  # the relation follows the configuration, whatever the JSON says
                record["relation"] = spec.relation(record["evaluated_event"], training_names)
            resolution_rows += records
        rows += resolution_rows
        plot = os.path.join(settings.output_dir, f"spider_{label}.png")
        plots.append(spider_plot(resolution_rows, plot,
                                 f"Scores per evaluated event at {resolution:g} m "
                                 "(training events: test areas only)"))
        log(f"[{label}] wrote {plot}")
    results = write_results_csv(rows, os.path.join(settings.output_dir, RESULTS_FILE))
    log(f"wrote {results} ({len(rows)} rows); models trained {len(trained)}, copied {len(copied)}, "
        f"skipped {len(skipped)}; evaluations computed {done}, reused {reused}")
    return ExperimentResult(rows, results, plots, trained, copied, skipped, done, reused)
