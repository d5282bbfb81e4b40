"""Evaluate a landslide map against an inventory, window by window, free of QGIS.

The prediction is either a mask raster (1 = landslide, 0 = none, its nodata =
not evaluated), compared on its own pixel grid, or polygons, compared on a
metric grid built over the inventory and the polygons (or over the evaluation
area). The inventory, polygon predictions and the evaluation area are
reprojected to the grid's CRS and burnt per window with the pixel-centre rule
(:class:`model.masks.PolygonMask`); an optional valid-data raster (non-zero =
valid) is warped onto the grid with nearest resampling. Counts go through
:func:`model.metrics.confusion`, the project's one metrics implementation, so
precision, recall, F1 and MCC (degenerate cases included) are the trainer's.

Memory depends on the window size and on the number of polygons, never on the
size of the scene. Outputs (a confusion-class raster and an HTML report) appear
under their final names only when complete.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import numpy as np
from osgeo import gdal, osr

from .commit import OutputCommit
from .errors import GridError, InputDataError
from .grid import (TRUE_SCALE_TOLERANCE, Bounds, Grid, RasterInput, WindowReader, check_bands, choose_metric_srs,
                   describe_scale, footprint_in, gdal_cache_capped, intersect, open_raster, raster_srs, scale_error,
                   transform_bounds, wgs84)
from .masks import PolygonMask, RasterMask, VectorInput, open_polygon_layer
from .metrics import Confusion, confusion
from .tiling import GridRasterWriter, Window, plan_windows

gdal.UseExceptions()
osr.UseExceptions()

NODATA = 0
"""Value of the confusion raster where nothing was evaluated."""
TP, FP, FN, TN = 1, 2, 3, 4
"""Values of the confusion raster: true positive, false positive, false negative, true negative."""
CLASS_NAMES = {TP: "true positive", FP: "false positive", FN: "false negative", TN: "true negative"}
CLASS_COLOURS = {TP: (26, 150, 65, 255), FP: (253, 141, 60, 255), FN: (117, 107, 177, 255), TN: (224, 224, 224, 255)}
DEFAULT_WINDOW_PX = 1024
DEFAULT_PIXEL_SIZE_M = 10.0
DEFAULT_MAX_PIXELS = 4_000_000_000
WINDOW_PROGRESS_SHARE = 0.95


# --------------------------------------------------------------------------- request, plan, result


@dataclass(frozen=True)
class EvaluationRequest:
    """Everything one evaluation needs; paths only, no layer objects.

    Attributes:
        inventory: The reference landslide polygons (required).
        prediction_raster: Predicted mask, band ``bands[0]``: 1 landslide,
            0 none, nodata not evaluated. Exactly one of this and
            ``prediction_polygons`` must be given.
        prediction_polygons: Predicted landslide polygons.
        evaluation_area: Optional polygons; pixels whose centre lies outside
            are not evaluated.
        exclude_mask: Optional raster, non-zero = not evaluated (clouds,
            snow...): the convention of the mapping's cloud/snow mask; zero,
            nodata and pixels it does not cover are evaluated.
        valid_mask: Optional raster, non-zero = valid; zero, nodata and pixels
            it does not cover are not evaluated (the older, opposite convention,
            still accepted).
        pixel_size_m: Pixel size of the grid built for polygon predictions.
        window_px: Side of the square windows the comparison streams through.
        confusion_path: GeoTIFF of the confusion classes to write, or None.
        report_path: HTML report to write, or None.
        input_names: ``(role, name)`` pairs listed in the report.
        work_dir: Where scratch files go (default: the system temp dir).
        max_pixels: Refuse polygon grids larger than this.
        gdal_cache_mb: GDAL's block cache is capped at this size during the
            run (and restored after), so that the blocks of a large scene
            written and read do not pile up in memory.
    """

    inventory: VectorInput
    prediction_raster: Optional[RasterInput] = None
    prediction_polygons: Optional[VectorInput] = None
    evaluation_area: Optional[VectorInput] = None
    valid_mask: Optional[RasterInput] = None
    exclude_mask: Optional[RasterInput] = None
    pixel_size_m: float = DEFAULT_PIXEL_SIZE_M
    window_px: int = DEFAULT_WINDOW_PX
    confusion_path: Optional[str] = None
    report_path: Optional[str] = None
    input_names: Tuple[Tuple[str, str], ...] = ()
    work_dir: Optional[str] = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    gdal_cache_mb: int = 64


@dataclass(frozen=True)
class EvaluationPlan:
    """A checked request: the grid and where it lies in the predicted raster."""

    grid: Grid
    prediction_row_px: int = 0
    prediction_col_px: int = 0
    windows_total: int = 0
    grid_note: str = ""
    """Why the grid is not in an input's CRS, or how its areas are measured (for the log); may be empty."""


@dataclass
class EvaluationResult:
    """What an evaluation produced."""

    grid: Grid
    confusion: Confusion
    areas_m2: Dict[str, float]
    windows: int
    confusion_path: Optional[str] = None
    report_path: Optional[str] = None
    input_names: Tuple[Tuple[str, str], ...] = field(default_factory=tuple)

    def scores(self) -> Dict[str, float]:
        """Counts, precision, recall, F1 and MCC (see :mod:`model.metrics`)."""
        return self.confusion.scores()


# --------------------------------------------------------------------------- checks and grid


def _vector_bounds(source: VectorInput, what: str) -> Tuple[Optional[Bounds], osr.SpatialReference]:
    """Bounds of a polygon layer in its own CRS (None when it holds no geometry), and that CRS."""
    dataset, layer, srs = open_polygon_layer(source, what)
    if layer.GetFeatureCount() == 0:
        return None, srs
    try:
        x0, x1, y0, y1 = layer.GetExtent()
    except RuntimeError:
        return None, srs
    del dataset
    return (x0, y0, x1, y1), srs


def _union(a: Optional[Bounds], b: Optional[Bounds]) -> Optional[Bounds]:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _touches(a: Optional[Bounds], b: Optional[Bounds]) -> bool:
    """Boxes overlap or touch (a box of zero width, e.g. one vertical polygon edge, still counts)."""
    return a is not None and b is not None and a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _where(source) -> str:
    layer = getattr(source, "layer", None)
    return source.path + (f" (layer '{layer}')" if layer else "")


def check_request(request: EvaluationRequest) -> EvaluationPlan:
    """Validate a request and choose its grid, without reading any pixel or polygon.

    Raises:
        InputDataError: Both or neither prediction given, an input cannot be
            opened, has no CRS, the inventory holds no polygon, a raster is
            rotated.
        GridError: Inputs do not overlap, the evaluation area or the valid-data
            mask lies outside the prediction, the grid would be too large.
    """
    if (request.prediction_raster is None) == (request.prediction_polygons is None):
        raise InputDataError(
            "Give the prediction either as a mask raster or as polygons, not "
            + ("both." if request.prediction_raster is not None else "neither."))
    if not request.window_px >= 1:
        raise InputDataError(f"The window size must be at least 1 pixel, not {request.window_px}.")
    inventory_bounds, inventory_srs = _vector_bounds(request.inventory, "inventory")
    if inventory_bounds is None:
        raise InputDataError(f"The inventory {_where(request.inventory)} holds no polygon.")
    area_bounds = area_srs = None
    if request.evaluation_area is not None:
        area_bounds, area_srs = _vector_bounds(request.evaluation_area, "evaluation area")
        if area_bounds is None:
            raise GridError(f"The evaluation area {_where(request.evaluation_area)} is empty: it holds no polygon.")
    if request.prediction_raster is not None:
        plan = _raster_plan(request, inventory_bounds, inventory_srs, area_bounds, area_srs)
    else:
        plan = _polygon_plan(request, inventory_bounds, inventory_srs, area_bounds, area_srs)
    windows = math.ceil(plan.grid.height_px / request.window_px) * math.ceil(plan.grid.width_px / request.window_px)
    return EvaluationPlan(plan.grid, plan.prediction_row_px, plan.prediction_col_px, windows, plan.grid_note)


def _raster_plan(request, inventory_bounds, inventory_srs, area_bounds, area_srs) -> EvaluationPlan:
    source = request.prediction_raster
    dataset = open_raster(source.path)
    srs = raster_srs(dataset, source.path)
    check_bands(dataset, source.path, source.bands[:1])
    x0, dx, rx, y1, ry, dy = dataset.GetGeoTransform()
    if rx != 0.0 or ry != 0.0 or dx <= 0.0 or dy >= 0.0:
        raise InputDataError(
            f"The predicted mask {source.path} is not a north-up raster (rotated, sheared or flipped): "
            "warp it to a north-up grid first (Raster > Projections > Warp).")
    grid = Grid(dataset.GetProjection(), x0, y1, dx, -dy, dataset.RasterXSize, dataset.RasterYSize)
    inventory_box = transform_bounds(inventory_bounds, inventory_srs, srs, f"the inventory {_where(request.inventory)}")
    if not _touches(inventory_box, grid.bounds):
        raise GridError(
            f"The inventory {_where(request.inventory)} and the predicted mask {source.path} do not overlap: "
            "check that they cover the same area and that their coordinate reference systems are right.")
    box, what = grid.bounds, "the predicted mask"
    if area_bounds is not None:
        box = intersect(box, transform_bounds(area_bounds, area_srs, srs,
                                              f"the evaluation area {_where(request.evaluation_area)}"))
        if box is None:
            raise GridError(
                f"The evaluation area {_where(request.evaluation_area)} is empty here: it does not overlap "
                f"the predicted mask {source.path}.")
        what += " within the evaluation area"
    if request.valid_mask is not None:
        box = intersect(box, footprint_in(request.valid_mask.path, srs, f"the valid-data mask {request.valid_mask.path}"))
        if box is None:
            raise GridError(f"The valid-data mask {request.valid_mask.path} does not overlap {what}.")
    plan = _crop(grid, box)
    note = ""
    if not srs.IsGeographic():
        error = scale_error(srs, plan.grid.bounds)
        if error > TRUE_SCALE_TOLERANCE:
            note = (f"The predicted mask's CRS is not in true ground metres ({describe_scale(srs, plan.grid.bounds)}): "
                    "pixels are compared on its grid, areas are reported in true ground m².")
    return EvaluationPlan(plan.grid, plan.prediction_row_px, plan.prediction_col_px, grid_note=note)


def _crop(grid: Grid, box: Bounds) -> EvaluationPlan:
    """The part of ``grid`` (same lattice) holding every pixel that ``box`` reaches into."""
    eps = 0.01  # a box reaching less than 1 % into a pixel cannot hold its centre
    col0 = max(0, math.floor((box[0] - grid.x_min) / grid.pixel_width + eps))
    col1 = min(grid.width_px, math.ceil((box[2] - grid.x_min) / grid.pixel_width - eps))
    row0 = max(0, math.floor((grid.y_max - box[3]) / grid.pixel_height + eps))
    row1 = min(grid.height_px, math.ceil((grid.y_max - box[1]) / grid.pixel_height - eps))
    if col1 <= col0 or row1 <= row0:
        raise GridError("The area to evaluate is smaller than one pixel of the predicted mask.")
    cropped = Grid(grid.crs_wkt, grid.x_min + col0 * grid.pixel_width, grid.y_max - row0 * grid.pixel_height,
                   grid.pixel_width, grid.pixel_height, col1 - col0, row1 - row0)
    return EvaluationPlan(cropped, row0, col0)


def _polygon_plan(request, inventory_bounds, inventory_srs, area_bounds, area_srs) -> EvaluationPlan:
    pixel = float(request.pixel_size_m)
    if not pixel > 0:
        raise InputDataError(f"The pixel size must be positive, not {request.pixel_size_m}.")
    predicted_bounds, predicted_srs = _vector_bounds(request.prediction_polygons, "predicted polygons")
    inventory_what = f"the inventory {_where(request.inventory)}"
    lonlat = transform_bounds(inventory_bounds, inventory_srs, wgs84(), inventory_what)
    srs, note = choose_metric_srs([(predicted_srs, predicted_bounds), (inventory_srs, inventory_bounds),
                                   (area_srs, area_bounds)], lonlat)
    inventory_box = transform_bounds(inventory_bounds, inventory_srs, srs, inventory_what)
    predicted_box = None if predicted_bounds is None else transform_bounds(
        predicted_bounds, predicted_srs, srs, f"the predicted polygons {_where(request.prediction_polygons)}")
    if predicted_box is not None and not _touches(inventory_box, predicted_box):
        raise GridError(
            f"The inventory {_where(request.inventory)} and the predicted polygons "
            f"{_where(request.prediction_polygons)} do not overlap: check that they cover the same area and that "
            "their coordinate reference systems are right.")
    box = _union(inventory_box, predicted_box)
    if area_bounds is not None:
        area_box = transform_bounds(area_bounds, area_srs, srs, f"the evaluation area {_where(request.evaluation_area)}")
        if not _touches(area_box, box):
            raise GridError(
                f"The evaluation area {_where(request.evaluation_area)} is empty here: it does not overlap the "
                "inventory or the predicted polygons.")
        box = area_box
    if request.valid_mask is not None:
        box = intersect(box, footprint_in(request.valid_mask.path, srs, f"the valid-data mask {request.valid_mask.path}"))
        if box is None:
            raise GridError(f"The valid-data mask {request.valid_mask.path} does not overlap the area to evaluate.")
    eps = 0.01  # a box reaching less than 1 % into a pixel cannot hold its centre
    x_min = math.floor(box[0] / pixel + eps) * pixel
    y_min = math.floor(box[1] / pixel + eps) * pixel
    x_max = math.ceil(box[2] / pixel - eps) * pixel
    y_max = math.ceil(box[3] / pixel - eps) * pixel
    width = max(1, int(round((x_max - x_min) / pixel)))
    height = max(1, int(round((y_max - y_min) / pixel)))
    if width * height > request.max_pixels:
        raise GridError(
            f"The area to evaluate needs {width} x {height} pixels of {pixel:g} m, more than the limit of "
            f"{request.max_pixels}: choose a larger pixel size or an evaluation area.")
    return EvaluationPlan(Grid(srs.ExportToWkt(), x_min, y_max, pixel, pixel, width, height), grid_note=note)


# --------------------------------------------------------------------------- one window


def confusion_classes(truth: np.ndarray, predicted: np.ndarray, evaluated: np.ndarray) -> np.ndarray:
    """Per-pixel class: :data:`TP`, :data:`FP`, :data:`FN`, :data:`TN`, or :data:`NODATA` where not evaluated."""
    truth, predicted, evaluated = (np.asarray(a).astype(bool) for a in (truth, predicted, evaluated))
    classes = np.where(truth, np.where(predicted, TP, FN), np.where(predicted, FP, TN)).astype(np.uint8)
    classes[~evaluated] = NODATA
    return classes


def compare_window(truth: np.ndarray, predicted: np.ndarray, evaluated: np.ndarray) -> Tuple[Confusion, np.ndarray]:
    """Counts (through :func:`model.metrics.confusion`) and the class array of one window."""
    return confusion(truth, predicted, evaluated), confusion_classes(truth, predicted, evaluated)


class _PredictedRaster:
    """The predicted mask band, read on its own lattice (no resampling)."""

    def __init__(self, source: RasterInput, row_px: int, col_px: int):
        self._path = source.path
        self._dataset = open_raster(source.path)
        self._band = self._dataset.GetRasterBand(source.bands[0])
        self._row, self._col = row_px, col_px

    def read(self, row_px: int, col_px: int, height_px: int, width_px: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(predicted, valid)`` booleans; raises on values other than 0 and 1."""
        x, y = self._col + col_px, self._row + row_px
        values = self._band.ReadAsArray(x, y, width_px, height_px)
        valid = self._band.GetMaskBand().ReadAsArray(x, y, width_px, height_px) != 0
        if values.dtype.kind == "f":
            valid &= np.isfinite(values)
        bad = valid & (values != 0) & (values != 1)
        if bad.any():
            value = values[bad][0]
            raise InputDataError(
                f"The predicted mask {self._path} holds the value {value:g}, which is neither 1 (landslide), "
                "0 (no landslide) nor its nodata value: set its nodata value or reclassify it.")
        return values == 1, valid


class _Sources:
    """Everything read per window: truth, prediction and what is evaluated."""

    def __init__(self, request: EvaluationRequest, plan: EvaluationPlan):
        grid = plan.grid
        self.inventory = PolygonMask(request.inventory, grid, "inventory")
        self.raster = None
        self.polygons = None
        if request.prediction_raster is not None:
            self.raster = _PredictedRaster(request.prediction_raster, plan.prediction_row_px, plan.prediction_col_px)
        else:
            self.polygons = PolygonMask(request.prediction_polygons, grid, "predicted polygons")
        self.area = None
        if request.evaluation_area is not None:
            self.area = PolygonMask(request.evaluation_area, grid, "evaluation area")
        self.valid = None if request.valid_mask is None else WindowReader(request.valid_mask, grid, resampling="near")
        self.excluded = None if request.exclude_mask is None else RasterMask(request.exclude_mask, grid)

    def read(self, window: Window) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(truth, predicted, evaluated)`` booleans of a window's core."""
        args = (window.core_row_px, window.core_col_px, window.core_rows, window.core_cols)
        if self.raster is not None:
            predicted, evaluated = self.raster.read(*args)
        else:
            predicted = self.polygons.read(*args)
            evaluated = np.ones(predicted.shape, dtype=bool)
        if self.area is not None:
            evaluated &= self.area.read(*args)
        if self.valid is not None:
            values = self.valid.read(*args)[0]
            evaluated &= np.isfinite(values) & (values != 0)
        if self.excluded is not None:
            evaluated &= ~self.excluded.read(*args)
        truth = self.inventory.read(*args)
        return truth, predicted, evaluated


# --------------------------------------------------------------------------- the run


def evaluate(
    request: EvaluationRequest,
    progress: Callable[[float], None] = lambda fraction: None,
    is_cancelled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda message: None,
    plan: Optional[EvaluationPlan] = None,
) -> EvaluationResult:
    """Compare the prediction with the inventory, window by window, and write the requested outputs.

    Raises:
        CancelledError: ``is_cancelled()`` became true; no output was written.
        GridError: No pixel was evaluated (or see :func:`check_request`).
        InputDataError: An input cannot be read, or the predicted mask holds
            values other than 0, 1 and nodata.
    """
    plan = plan or check_request(request)
    grid = plan.grid
    log(f"Grid: {grid.width_px} x {grid.height_px} px of {grid.pixel_size_label()} in {grid.crs_label()}; "
        f"{plan.windows_total} windows of up to {request.window_px} px.")
    if plan.grid_note:
        log(plan.grid_note)
    with gdal_cache_capped(request.gdal_cache_mb):
        return _evaluate_on_grid(request, plan, progress, is_cancelled)


def _evaluate_on_grid(request, plan, progress, is_cancelled) -> EvaluationResult:
    """Everything after the checks: windows, counts and the final files, all or nothing."""
    grid = plan.grid
    destinations = [("confusion raster", request.confusion_path), ("evaluation report", request.report_path)]
    with OutputCommit(destinations, request.work_dir, is_cancelled, prefix="evaluation") as outputs:
        writer = None
        try:
            if request.confusion_path:
                writer = GridRasterWriter(outputs.scratch_path("confusion.tif"), grid, gdal.GDT_Byte, NODATA)
            sources = _Sources(request, plan)
            counts, areas = _run_windows(request, plan, sources, writer, progress, outputs.raise_if_cancelled)
            if counts.total == 0:
                raise GridError(
                    "No pixel was evaluated: the prediction's nodata, the valid-data mask and the evaluation area "
                    "leave nothing to compare.")
            result = EvaluationResult(grid, counts, areas, plan.windows_total, input_names=tuple(request.input_names))
            if writer is not None:
                _label_classes(writer.write_final(outputs.partial_path(request.confusion_path), "confusion raster"))
            if request.report_path:
                with open(outputs.partial_path(request.report_path), "w", encoding="utf-8") as handle:
                    handle.write(report_html(result))
            committed = outputs.commit()
        finally:
            if writer is not None:
                writer.discard()
    result.confusion_path = committed.get(request.confusion_path or "")
    result.report_path = committed.get(request.report_path or "")
    progress(1.0)
    return result


def _run_windows(request, plan, sources, writer, progress, raise_if_cancelled) -> Tuple[Confusion, Dict[str, float]]:
    windows = plan_windows(plan.grid, request.window_px, 0)
    total = Confusion()
    areas = np.zeros(5, dtype=np.float64)  # indexed by class value
    for done, window in enumerate(windows):
        raise_if_cancelled()
        truth, predicted, evaluated = sources.read(window)
        counts, classes = compare_window(truth, predicted, evaluated)
        total = total + counts
        row_areas = plan.grid.row_pixel_areas_m2(window.core_row_px, window.core_rows)
        for value in (TP, FP, FN, TN):
            areas[value] += float(np.count_nonzero(classes == value, axis=1) @ row_areas)
        if writer is not None:
            writer.write_core(window, classes)
        progress(WINDOW_PROGRESS_SHARE * (done + 1) / len(windows))
    raise_if_cancelled()
    return total, {"tp": areas[TP], "fp": areas[FP], "fn": areas[FN], "tn": areas[TN]}


def _label_classes(path: str) -> None:
    """A colour table in the GeoTIFF, for software without the plugin's style."""
    dataset = gdal.Open(path, gdal.GA_Update)
    band = dataset.GetRasterBand(1)
    table = gdal.ColorTable()
    table.SetColorEntry(NODATA, (0, 0, 0, 0))
    for value, colour in CLASS_COLOURS.items():
        table.SetColorEntry(value, colour)
    band.SetColorTable(table)  # stored in the TIFF itself (names or descriptions would need an .aux.xml)
    band = None
    dataset = None


# --------------------------------------------------------------------------- the report


def report_html(result: EvaluationResult) -> str:
    """A self-contained HTML page with the inputs, the grid, the counts, the areas and the scores."""
    c, areas, grid = result.confusion, result.areas_m2, result.grid
    esc = html.escape
    inputs = "".join(f"<tr><th>{esc(role)}</th><td>{esc(name)}</td></tr>" for role, name in result.input_names)
    rows = "".join(
        f"<tr><th>{esc(label)}</th><td>{count:,}</td><td>{areas[key]:,.1f}</td></tr>"
        for key, label, count in (("tp", "True positives (TP)", c.tp), ("fp", "False positives (FP)", c.fp),
                                  ("fn", "False negatives (FN)", c.fn), ("tn", "True negatives (TN)", c.tn)))
    total_area = sum(areas.values())
    scores = "".join(
        f"<tr><th>{label}</th><td>{value:.4f}</td></tr>"
        for label, value in (("Precision", c.precision), ("Recall", c.recall), ("F1", c.f1), ("MCC", c.mcc)))
    notes = []
    if c.tp + c.fn == 0:
        notes.append("The inventory has no landslide pixel in the evaluated area: recall is reported as 0.")
    if c.tp + c.fp == 0:
        notes.append("Nothing was predicted as landslide in the evaluated area: precision is reported as 0.")
    if (c.tp + c.fp) * (c.tp + c.fn) * (c.tn + c.fp) * (c.tn + c.fn) == 0:
        notes.append("A row or column of the confusion matrix is empty: MCC is undefined and reported as 0.")
    notes_html = "".join(f"<li>{esc(note)}</li>" for note in notes)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Landslide map evaluation</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}"
        "th,td{border:1px solid #bbb;padding:3px 8px;text-align:left}td{text-align:right}</style></head><body>\n"
        "<h1>Landslide map evaluation</h1>\n"
        f"<h2>Inputs</h2><table>{inputs}</table>\n"
        f"<h2>Grid</h2><p>{grid.width_px} x {grid.height_px} pixels of {esc(grid.pixel_size_label())} "
        f"in {esc(grid.crs_label())}; {c.total:,} pixels evaluated ({total_area:,.1f} m²).</p>\n"
        "<h2>Confusion matrix</h2><table><tr><th></th><th>pixels</th><th>area (m²)</th></tr>"
        f"{rows}</table>\n"
        f"<h2>Scores</h2><table>{scores}</table>\n"
        + (f"<ul>{notes_html}</ul>\n" if notes_html else "")
        + "<p>Pixels count where their centre lies inside a polygon. Precision = TP / (TP + FP), "
        "recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN), MCC = (TP TN - FP FN) / "
        "sqrt((TP + FP)(TP + FN)(TN + FP)(TN + FN)); a ratio with a zero denominator is reported as 0.</p>\n"
        "</body></html>\n"
    )
