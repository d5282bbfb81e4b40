"""Evaluate an exported (carded ONNX) model on labelled events, as the plugin would map them.

Each event is mapped with the inference core (:func:`model.pipeline.map_landslides`,
the card's threshold, the event's cloud/snow mask) and the mask is compared
pixel by pixel with the rasterised inventory by :func:`model.evaluation.evaluate`,
restricted to the event's test area when it has one. Pixels that are nodata in
the map (no data in an input, cloud or snow) are not counted. Scores are the
project's one implementation (:mod:`model.metrics`): per event, and pooled over
all events by summing the confusion counts.

No TensorFlow here: any carded ONNX model can be evaluated, the converted
published model included.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from model.card import write_card_to_file
from model.evaluation import EvaluationRequest, evaluate
from model.grid import RasterInput
from model.vectors import VectorInput
from model.metrics import Confusion
from model.pipeline import MappingRequest, map_landslides
from model.session import read_card
from model.vectors import vector_source

from .config import EventConfig, VectorRef


@dataclass
class EventScore:
    """The comparison of a model's map with one event's inventory."""

    event: str
    confusion: Confusion
    landslides_mapped: int
    seconds: float

    def row(self) -> Dict[str, object]:
        """A flat record: event, counts and scores."""
        return {"event": self.event, **self.confusion.scores(), "landslides_mapped": self.landslides_mapped,
                "seconds": round(self.seconds, 2)}


def event_from_folder(folder: str) -> EventConfig:
    """The :class:`EventConfig` of a folder written by :func:`training.simulate.simulate_event`."""
    with open(os.path.join(folder, "event.json"), encoding="utf-8") as handle:
        record = json.load(handle)
    return EventConfig(
        name=os.path.basename(os.path.normpath(folder)),
        pre=os.path.join(folder, "pre.tif"),
        post=os.path.join(folder, "post.tif"),
        dem=os.path.join(folder, "dem.tif"),
        inventory=VectorRef(os.path.join(folder, "inventory.gpkg"), "landslides"),
        cloud_mask=os.path.join(folder, "clouds.gpkg"),
        radiometry=record["radiometry"],
    )


def _vector(ref: Optional[VectorRef]) -> Optional[VectorInput]:
    return VectorInput(ref.path, ref.layer) if ref else None


def evaluate_on_event(model_path: str, event: EventConfig, work_dir: str, use_test_area: bool = True,
                      threads: int = 0, log: Callable[[str], None] = lambda message: None) -> EventScore:
    """Map ``event`` with the model and compare the mask with its inventory."""
    import time

    started = time.perf_counter()
    mask_path = os.path.join(work_dir, f"{event.name}_mask.tif")
    cloud = vector_source(event.cloud_mask) if event.cloud_mask else None
    request = MappingRequest(
        model_path=model_path,
        pre=RasterInput(event.pre, tuple(event.pre_bands)),
        post=RasterInput(event.post, tuple(event.post_bands)),
        dem=RasterInput(event.dem, (event.dem_band,)),
        radiometry=event.radiometry,
        mask_polygons=cloud,
        mask_raster=RasterInput(event.cloud_mask) if event.cloud_mask and cloud is None else None,
        mask_path=mask_path,
        threads=threads,
        work_dir=work_dir,
    )
    mapped = map_landslides(request, log=log)
    result = evaluate(EvaluationRequest(
        inventory=_vector(event.inventory),
        prediction_raster=RasterInput(mask_path),
        evaluation_area=_vector(event.test_area) if use_test_area else None,
        work_dir=work_dir,
    ))
    os.remove(mask_path)
    return EventScore(event.name, result.confusion, int(mapped.landslide_count), time.perf_counter() - started)


def evaluate_model(model_path: str, events: Sequence[EventConfig], use_test_area: bool = True, threads: int = 0,
                   log: Callable[[str], None] = print) -> Dict[str, object]:
    """Per-event and pooled scores of a model on ``events``."""
    scores: List[EventScore] = []
    with tempfile.TemporaryDirectory(prefix="landslide_eval_") as work_dir:
        for event in events:
            score = evaluate_on_event(model_path, event, work_dir, use_test_area, threads)
            log(f"{event.name}: MCC {score.confusion.mcc:.3f}, F1 {score.confusion.f1:.3f}, "
                f"precision {score.confusion.precision:.3f}, recall {score.confusion.recall:.3f} "
                f"({score.seconds:.0f} s)")
            scores.append(score)
    pooled = sum((s.confusion for s in scores), Confusion())
    return {"model": os.path.basename(model_path), "events": [s.row() for s in scores], "pooled": pooled.scores()}


def write_metrics_to_card(model_path: str, report: Dict[str, object], label: str) -> None:
    """Store the pooled scores of ``report`` in the model's card, saying what they were measured on."""
    pooled = report["pooled"]
    card = read_card(model_path)
    metrics = dict(card.metrics)
    validation = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    kept = {k: v for k, v in metrics.items() if isinstance(v, dict) and k not in ("per_event", "training_validation")}
    metrics = {
        "mcc": round(pooled["mcc"], 4), "f1": round(pooled["f1"], 4),
        "precision": round(pooled["precision"], 4), "recall": round(pooled["recall"], 4),
        "evaluated_on": f"{label}; pixel counts pooled over {len(report['events'])} events, "
                        f"threshold {card.threshold:g}",
        "per_event": {row["event"]: {k: round(row[k], 4) for k in ("mcc", "f1", "precision", "recall")}
                      for row in report["events"]},
    }
    if validation:
        metrics["training_validation"] = validation
    metrics.update(kept)  # e.g. the threshold calibration
    write_card_to_file(model_path, dataclasses.replace(card, metrics=metrics))
