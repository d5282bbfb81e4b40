"""The configuration of an experiment (see :mod:`training.experiments`), its models and their folders.

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
    context_px = 16
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

Layout of ``output_dir``::

    <res>m/tiles/<event>/               tile stores, built once, shared by the resolution's models
    <res>m/<model>/                     the training run (checkpoint/, best.keras, history.csv, run.json)
    <res>m/<model>/model.onnx           the exported model with its card
    <res>m/<model>/evaluations/<event>.json
    results.csv                         one row per model and evaluated event
    spider_<res>m.png                   precision, recall, F1 and MCC per evaluated event, one panel per model
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from model.errors import LandslideMapperError

from .config import ConfigError, EventConfig, RunConfig, parse_config, parse_events, read_toml

KINDS: Tuple[str, ...] = ("conventional", "combined", "jackknife")
RELATIONS: Tuple[str, ...] = ("trained on", "left out", "other training event", "unseen")
MODEL_FILE = "model.onnx"
EVALUATION_DIR = "evaluations"
TILES_DIR = "tiles"
RESULTS_FILE = "results.csv"


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
