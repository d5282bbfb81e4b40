"""Experiments like the paper's: conventional, combined and jackknife models at several resolutions.

Prakash, Manconi & Loew (2021) compare models trained on one event
("conventional"), on every event ("combined") and on every event but one
("jackknife", the left-out event playing an unseen one), and score each of
them on held-out parts of the training events and on events no model saw
(their Figures 2 and 4). :func:`run_experiment` repeats that protocol with this
package's trainer for each resolution of the configuration.

Configuration (TOML, paths relative to the file)::

    [experiment]
    output_dir = "runs/experiment"
    resolutions_m = [10.0, 20.0]
    kinds = ["conventional", "combined", "jackknife"]   # default: all three
    parity_tolerance = 1e-3      # ONNX export check (these models are not shipped)
    threads = 0                  # onnxruntime threads of the evaluations (0 = all cores)
    jobs = 1                     # models trained at once, each in its own process

    [run]                        # training.config.RunConfig without output_dir and gsd_m
    tile_px = 64
    width = 0.0625
    epochs = 3

    [[events]]                   # training events; each needs a test_area
    name = "a"
    ...
    test_area = "events/a/areas.gpkg|layername=test"

    [[unseen]]                   # events no model is trained on (same keys)
    name = "u"
    ...

Models of each resolution (``run.gsd_m`` = the resolution):

- ``conventional_<event>``: trained on that event alone;
- ``combined``: trained on every training event;
- ``jackknife_without_<event>``: trained on every other training event.

Every model is evaluated (:func:`training.evaluate.evaluate_on_event`, the
plugin's own mapping) on the test area of every training event and on every
unseen event (its test area if it has one, else the whole event). Each row
says how the evaluated event relates to the model: ``trained on`` (its test
area, which training never saw), ``left out`` (a jackknife model's excluded
event), ``other training event`` (a conventional model on another training
event) or ``unseen``.

Layout of ``output_dir``::

    <res>m/tiles/<event>/               tile stores, built once, shared by the resolution's models
    <res>m/<model>/                     the training run (checkpoint/, best.keras, history.csv, run.json)
    <res>m/<model>/model.onnx           the exported model with its card
    <res>m/<model>/evaluations/<event>.json
    results.csv                         one row per model and evaluated event
    spider_<res>m.png                   precision, recall, F1 and MCC per evaluated event, one panel per model

Each model is trained and exported in a fresh Python process (the same
state as ``python -m training train`` then ``export``), ``jobs`` of them at a
time: for small networks most of a model's time is the single-threaded
tracing of its training graph, so models trained side by side use more
cores. A model whose training events equal those of an earlier model of its
resolution is not trained again: training is deterministic, so its ONNX file
is the earlier one with its own card (with two training events, each
jackknife model is the other event's conventional model).

Started again, the runner resumes: tile stores that exist are kept, a model
whose ONNX file exists is not retrained, an interrupted training resumes
from its checkpoint (:func:`training.train.train`), and an evaluation whose
JSON exists is not recomputed (a model trained anew drops its old ones).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from model.errors import LandslideMapperError

from .config import Config, ConfigError, EventConfig, RunConfig, parse_config, parse_events, read_toml
from .train import best_validation_metrics

KINDS: Tuple[str, ...] = ("conventional", "combined", "jackknife")
RELATIONS: Tuple[str, ...] = ("trained on", "left out", "other training event", "unseen")
METRICS: Tuple[str, ...] = ("precision", "recall", "f1", "mcc")
MODEL_FILE = "model.onnx"
EVALUATION_DIR = "evaluations"
TILES_DIR = "tiles"
RESULTS_FILE = "results.csv"
CSV_COLUMNS: Tuple[str, ...] = ("resolution_m", "kind", "model", "trained_on", "evaluated_event", "relation",
                                "tp", "fp", "fn", "tn", "precision", "recall", "f1", "mcc")


class ExperimentError(LandslideMapperError):
    """A model of the experiment cannot be trained, exported or evaluated; the message names it."""


@dataclass(frozen=True)
class ExperimentSettings:
    """The ``[experiment]`` section."""

    output_dir: str
    resolutions_m: Tuple[float, ...] = (10.0,)
    kinds: Tuple[str, ...] = KINDS
    parity_tolerance: float = 1e-3
    threads: int = 0
    jobs: int = 1


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment file: settings, the base run, training events and unseen events."""

    experiment: ExperimentSettings
    run: RunConfig
    events: Tuple[EventConfig, ...]
    unseen: Tuple[EventConfig, ...] = field(default_factory=tuple)
    source: Optional[str] = None


@dataclass(frozen=True)
class ModelSpec:
    """One model of a resolution: its kind, name and training events."""

    kind: str
    name: str
    trained_on: Tuple[str, ...]
    left_out: Optional[str] = None

    def relation(self, event: str, training_events: Sequence[str]) -> str:
        """How ``event`` relates to this model (one of :data:`RELATIONS`)."""
        if event in self.trained_on:
            return "trained on"
        if event == self.left_out:
            return "left out"
        if event in training_events:
            return "other training event"
        return "unseen"


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


# --------------------------------------------------------------------------- configuration

def parse_experiment_config(data: Dict[str, Any], base_dir: str, source: Optional[str] = None) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from parsed TOML, resolving paths against ``base_dir``."""
    where = source or "config"
    raw = data.get("experiment")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the [experiment] section is missing.")
    known = {f.name for f in fields(ExperimentSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"[experiment]: unknown setting(s) {unknown}; known: {sorted(known)}.")
    if "output_dir" not in raw:
        raise ConfigError(f"{where}: [experiment] needs output_dir.")
    output_dir = os.path.normpath(os.path.join(base_dir, os.path.expanduser(str(raw["output_dir"]))))
    try:
        resolutions = tuple(float(r) for r in raw.get("resolutions_m", ExperimentSettings.resolutions_m))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[experiment]: resolutions_m must be a list of numbers; "
                          f"got {raw.get('resolutions_m')!r}.") from exc
    if not resolutions or any(not (r > 0 and math.isfinite(r)) for r in resolutions):
        raise ConfigError(f"[experiment]: resolutions_m must list positive numbers; got {list(resolutions)}.")
    if len({_res_label(r) for r in resolutions}) != len(resolutions):
        raise ConfigError(f"[experiment]: resolutions_m has duplicates: {list(resolutions)}.")
    kinds = tuple(str(k) for k in raw.get("kinds", KINDS))
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds or len(set(kinds)) != len(kinds):
        raise ConfigError(f"[experiment]: kinds must be distinct values of {list(KINDS)}; got {list(kinds)}.")
    jobs = raw.get("jobs", 1)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"[experiment]: jobs must be a whole number of at least 1; got {jobs!r}.")
    settings = ExperimentSettings(output_dir=output_dir, resolutions_m=resolutions, kinds=kinds,
                                  parity_tolerance=float(raw.get("parity_tolerance", 1e-3)),
                                  threads=int(raw.get("threads", 0)), jobs=jobs)

    run_raw = dict(data.get("run", {}))
    for key, instead in (("output_dir", "[experiment] output_dir"), ("gsd_m", "[experiment] resolutions_m")):
        if key in run_raw:
            raise ConfigError(f"{where}: [run] {key} is set per model from {instead}; remove it from [run].")
    run_raw["output_dir"] = output_dir
    base = parse_config({"run": run_raw, "events": data.get("events", [])}, base_dir, source)
    unseen = parse_events(data.get("unseen", []), base_dir, "unseen")
    if not base.events:
        raise ConfigError(f"{where}: the experiment lists no [[events]] to train on.")
    missing = [e.name for e in base.events if e.test_area is None]
    if missing:
        raise ConfigError(f"{where}: every training event needs a test_area (the models are scored there); "
                          f"missing for {missing}.")
    names = [e.name for e in base.events] + [e.name for e in unseen]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: event names must be unique over [[events]] and [[unseen]]; got {names}.")
    if "jackknife" in kinds and len(base.events) < 2:
        raise ConfigError(f"{where}: jackknife models need at least two training events.")
    return ExperimentConfig(settings, base.run, base.events, tuple(unseen), source)


def load_experiment_config(path: str) -> ExperimentConfig:
    """Read an experiment TOML file."""
    return parse_experiment_config(read_toml(path), os.path.dirname(os.path.abspath(path)), path)


# --------------------------------------------------------------------------- the models

def model_specs(events: Sequence[str], kinds: Sequence[str] = KINDS) -> List[ModelSpec]:
    """The models of one resolution, in the order of ``kinds`` and ``events``."""
    specs: List[ModelSpec] = []
    for kind in kinds:
        if kind == "conventional":
            specs += [ModelSpec(kind, f"conventional_{e}", (e,)) for e in events]
        elif kind == "combined":
            specs.append(ModelSpec(kind, "combined", tuple(events)))
        elif kind == "jackknife":
            specs += [ModelSpec(kind, f"jackknife_without_{e}", tuple(o for o in events if o != e), left_out=e)
                      for e in events]
        else:
            raise ValueError(f"Unknown model kind '{kind}'; known: {', '.join(KINDS)}.")
    return specs


def _res_label(resolution_m: float) -> str:
    return f"{resolution_m:g}m"


def resolution_dir(config: ExperimentConfig, resolution_m: float) -> str:
    """``<output_dir>/<res>m``."""
    return os.path.join(config.experiment.output_dir, _res_label(resolution_m))


def _write_json(path: str, record: Dict[str, Any]) -> None:
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
    os.replace(partial, path)


def _card(config: ExperimentConfig, resolution_m: float, spec: ModelSpec, metrics: Dict[str, Any],
          same_training_as: Optional[str] = None):
    """The model card of one experiment model."""
    from .train import training_card

    run = replace(config.run, gsd_m=float(resolution_m))
    description = {"conventional": "conventional model", "combined": "combined model",
                   "jackknife": f"jackknife model (left out: {spec.left_out})"}[spec.kind]
    trained_on = f"{spec.kind} training on {', '.join(spec.trained_on)}"
    if config.source:
        trained_on += f" (experiment {os.path.basename(config.source)})"
    card = training_card(run, spec.trained_on, metrics, name=f"experiment-{_res_label(resolution_m)}-{spec.name}",
                         description=f"Experiment {description} at {resolution_m:g} m, ResUNet width {run.width:g}, "
                                     f"trained on {', '.join(spec.trained_on)}; not for mapping.",
                         trained_on=trained_on)
    if same_training_as:
        card = replace(card, provenance={**card.provenance, "same_training_as": same_training_as})
    return card


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


# --------------------------------------------------------------------------- table and plots

def write_results_csv(rows: Sequence[Dict[str, Any]], path: str) -> str:
    """The table of every model and evaluated event (columns :data:`CSV_COLUMNS`)."""
    partial = path + ".partial"
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for row in rows:
            out = {key: row[key] for key in CSV_COLUMNS}
            out["resolution_m"] = f"{float(row['resolution_m']):g}"
            out["trained_on"] = " + ".join(row["trained_on"])
            for key in METRICS:
                out[key] = f"{float(row[key]):.4f}"
            writer.writerow(out)
    os.replace(partial, path)
    return path


_SHORT_RELATION = {"trained on": "trained on", "left out": "left out", "other training event": "other training",
                   "unseen": "unseen"}
_METRIC_STYLE = {"precision": ("Precision", "#1f77b4"), "recall": ("Recall", "#ff7f0e"),
                 "f1": ("F1", "#2ca02c"), "mcc": ("MCC", "#d62728")}


def spider_plot(rows: Sequence[Dict[str, Any]], path: str, title: str) -> str:
    """One polar panel per model: an axis per evaluated event, a closed line per metric (radius 0..1).

    Negative MCC values are drawn at 0 (the table keeps them).
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models: List[str] = []
    for row in rows:
        if row["model"] not in models:
            models.append(row["model"])
    if not models:
        raise ValueError("No results to plot.")
    columns = min(4, len(models))
    lines = int(math.ceil(len(models) / columns))
    figure = Figure(figsize=(5.0 * columns, 5.2 * lines + 0.8))
    FigureCanvasAgg(figure)
    for index, model_name in enumerate(models):
        mine = [r for r in rows if r["model"] == model_name]
        axes = figure.add_subplot(lines, columns, index + 1, projection="polar")
        angles = np.linspace(0, 2 * np.pi, len(mine), endpoint=False)
        closed = np.concatenate([angles, angles[:1]])
        for metric in METRICS:
            name, colour = _METRIC_STYLE[metric]
            values = np.clip([float(r[metric]) for r in mine], 0.0, 1.0)
            axes.plot(closed, np.concatenate([values, values[:1]]), color=colour, linewidth=1.5, marker="o",
                      markersize=3, label=name)
        axes.set_ylim(0.0, 1.0)
        axes.set_yticks([0.25, 0.5, 0.75, 1.0])
        axes.set_rlabel_position(180.0 / len(mine))  # between the first two event axes
        axes.tick_params(axis="y", labelsize=7)
        axes.set_xticks(angles)
        axes.set_xticklabels([f"{r['evaluated_event']}\n({_SHORT_RELATION[r['relation']]})" for r in mine],
                             fontsize=7)
        axes.tick_params(axis="x", pad=12)
        axes.set_title(model_name, fontsize=9, pad=28)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(METRICS), frameon=False)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout(rect=(0, 0.05, 1, 0.95))
    partial = path + ".partial.png"
    figure.savefig(partial, dpi=110)
    os.replace(partial, path)
    return path


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
