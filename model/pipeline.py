"""Map event landslides: the whole streaming run, free of QGIS.

:func:`check_request` validates a request cheaply (model card, bands, overlap,
window count); :func:`map_landslides` runs it window by window, driven by plain
``progress(fraction)``, ``is_cancelled()`` and ``log(message)`` callables.
Memory depends on the window and batch size, never on the scene size.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np
from osgeo import gdal

from .card import ModelCard
from .errors import CancelledError, GridError, InputDataError
from .grid import Extent, Grid, RasterInput, WindowReader, build_grid, check_bands, gdal_cache_capped, open_raster
from .masks import PolygonMask, RasterMask, VectorInput
from .polygons import LandslidePolygon, iter_landslide_polygons
from .card import NORMALISATION_NONE
from .preprocess import SceneStatistics, image_for_model, image_to_reflectance, model_inputs, resolve_radiometry
from .session import LandslideModel
from .terrain import HALO_PX, terrain_features
from .tiling import PARTIAL_SUFFIX, GridRasterWriter, Window, commit_partial, count_windows, fit_window_px, plan_windows, remove_file

PROBABILITY_NODATA = -1.0
MASK_NODATA = 255
DEFAULT_WINDOW_PX = 1024  # measured in benchmarks/: fastest with peak memory under 2 GB
DEFAULT_MAX_WINDOWS = 250_000
WINDOW_PROGRESS_SHARE = 0.85
POLYGON_PROGRESS_SHARE = 0.1
STATISTICS_WINDOW_PX = 1024


@dataclass(frozen=True)
class MappingRequest:
    """Everything one mapping run needs; paths only, no layer objects.

    Attributes:
        model_path: Carded ONNX model.
        pre: Pre-event image and its R, G, B bands.
        post: Post-event image and its R, G, B bands.
        dem: DEM and its elevation band.
        radiometry: ``auto``, ``8bit``, ``s2_l2a`` or ``s2_l2a_offset``.
        extent: Optional area of interest.
        mask_raster: Optional cloud/snow raster (non-zero masks).
        mask_polygons: Optional cloud/snow polygons.
        probability_path: GeoTIFF to write, or None.
        mask_path: GeoTIFF to write, or None.
        threshold: Probability threshold; None takes the card's.
        min_area_m2: Smallest polygon kept; None takes the card's.
        window_px: Requested window size (rounded to the card's multiple).
        margin_px: Context discarded per side; None takes the card's.
        batch_size: Windows per onnxruntime call. Memory grows with it; on
            these CPUs a batch of 2 was no faster than 1 (``benchmarks/``).
        threads: onnxruntime intra-op threads; 0 = all cores.
        min_valid_fraction: Windows whose core has a smaller valid fraction
            (or no valid pixel at all) are skipped and left nodata.
        max_windows: Refuse runs that need more windows than this.
        work_dir: Where scratch files go (default: the system temp dir).
        gdal_cache_mb: GDAL's block cache is capped at this size for the run
            (and restored after): by default GDAL may cache 5 % of RAM, which
            the scratch rasters of a large scene would fill. 64 MB ran a
            10,000 px scene as fast as 256 MB did, with 100 MB less memory
            (``benchmarks/``).
    """

    model_path: str
    pre: RasterInput
    post: RasterInput
    dem: RasterInput
    radiometry: str = "auto"
    extent: Optional[Extent] = None
    mask_raster: Optional[RasterInput] = None
    mask_polygons: Optional[VectorInput] = None
    probability_path: Optional[str] = None
    mask_path: Optional[str] = None
    threshold: Optional[float] = None
    min_area_m2: Optional[float] = None
    window_px: int = DEFAULT_WINDOW_PX
    margin_px: Optional[int] = None
    batch_size: int = 1
    threads: int = 0
    min_valid_fraction: float = 0.0
    max_windows: int = DEFAULT_MAX_WINDOWS
    work_dir: Optional[str] = None
    gdal_cache_mb: int = 64


@dataclass
class MappingResult:
    """What a run produced."""

    grid: Grid
    card: ModelCard
    threshold: float
    min_area_m2: float
    window_px: int
    margin_px: int
    windows_total: int
    windows_run: int = 0
    windows_skipped: int = 0
    probability_path: Optional[str] = None
    mask_path: Optional[str] = None
    landslide_count: int = 0
    landslide_area_m2: float = 0.0
    polygons: List[LandslidePolygon] = field(default_factory=list)
    """The polygons, when no ``on_polygon`` callable took them as they came."""

    def count_polygon(self, polygon: LandslidePolygon) -> None:
        """Add a kept polygon to the totals."""
        self.landslide_count += 1
        self.landslide_area_m2 += polygon.area_m2


@dataclass(frozen=True)
class RunPlan:
    """A checked request: the model, the grid and the window layout."""

    model: LandslideModel
    grid: Grid
    window_px: int
    margin_px: int
    windows_total: int


def check_request(request: MappingRequest) -> RunPlan:
    """Validate a request without running it.

    Raises:
        ModelCardError: The model has no valid card.
        InputDataError: A raster is unreadable or a band is out of range.
        GridError: The inputs do not overlap or too many windows are needed.
    """
    for label, source in (("pre-event image", request.pre), ("post-event image", request.post), ("DEM", request.dem)):
        if len(source.bands) != (1 if label == "DEM" else 3):
            raise InputDataError(f"The {label} needs {'1 band' if label == 'DEM' else '3 bands (R, G, B)'}.")
        check_bands(open_raster(source.path), source.path, source.bands)
    model = LandslideModel(request.model_path, request.threads)
    card = model.card
    grid = build_grid(
        [("the pre-event image", request.pre.path), ("the post-event image", request.post.path), ("the DEM", request.dem.path)],
        request.post.path,
        card.gsd_m,
        request.extent,
    )
    margin = card.context_px if request.margin_px is None else int(request.margin_px)
    window_px = fit_window_px(request.window_px, margin, card.size_multiple_px, grid)
    total = count_windows(grid, window_px, margin)
    if total > request.max_windows:
        raise GridError(
            f"The area needs {total} windows of {window_px} px, more than the limit of {request.max_windows}: "
            "choose a smaller extent or raise the limit."
        )
    return RunPlan(model, grid, window_px, margin, total)


class _WindowSources:
    """Readers for every input on the run's grid."""

    def __init__(self, request: MappingRequest, grid: Grid):
        self.gsd_m = grid.gsd_m
        self.pre = WindowReader(request.pre, grid)
        self.post = WindowReader(request.post, grid)
        self.dem = WindowReader(request.dem, grid)
        self.radiometry = {
            "pre": resolve_radiometry(request.radiometry, self.pre.data_type),
            "post": resolve_radiometry(request.radiometry, self.post.data_type),
        }
        self.masks = []
        if request.mask_raster is not None:
            self.masks.append(RasterMask(request.mask_raster, grid))
        if request.mask_polygons is not None:
            self.masks.append(PolygonMask(request.mask_polygons, grid))
        self.grid = grid
        self.normalisers = {"pre": None, "post": None}

    def measure_scene(self, card: ModelCard, is_cancelled: Callable[[], bool], log: Callable[[str], None]) -> None:
        """Scene statistics of both images over the whole grid, when the card normalises (one bounded pass)."""
        spec = card.image_normalisation
        if spec.method == NORMALISATION_NONE:
            return
        stats = {"pre": SceneStatistics(), "post": SceneStatistics()}
        step = STATISTICS_WINDOW_PX
        for row in range(0, self.grid.height_px, step):
            for col in range(0, self.grid.width_px, step):
                _raise_if_cancelled(is_cancelled)
                rows, cols = min(step, self.grid.height_px - row), min(step, self.grid.width_px - col)
                masked = np.zeros((rows, cols), dtype=bool)
                for mask in self.masks:
                    masked |= mask.read(row, col, rows, cols)
                for which, reader in (("pre", self.pre), ("post", self.post)):
                    reflectance = image_to_reflectance(reader.read(row, col, rows, cols), self.radiometry[which])
                    stats[which].add(reflectance, ~masked)
        for which, label in (("pre", "pre-event image"), ("post", "post-event image")):
            self.normalisers[which] = stats[which].normaliser(spec, label)
            dark, reference = self.normalisers[which]
            log(f"Scene normalisation of the {label} (R, G, B reflectance): dark "
                f"{', '.join(f'{v:.3f}' for v in dark)}; typical surface {', '.join(f'{v:.3f}' for v in reference)} "
                f"({stats[which].valid_pixels} valid pixels).")

    def read(self, window: Window, card: ModelCard) -> Tuple[dict, np.ndarray]:
        """Model inputs and the validity of one window."""
        r, c, s = window.row_px, window.col_px, window.size_px
        pre = self.pre.read(r, c, s, s)
        post = self.post.read(r, c, s, s)
        dem = self.dem.read(r - HALO_PX, c - HALO_PX, s + 2 * HALO_PX, s + 2 * HALO_PX)[0]
        hillshade, slope = terrain_features(dem, self.gsd_m, self.gsd_m, card.terrain)
        valid = (
            np.isfinite(pre).all(axis=0) & np.isfinite(post).all(axis=0)
            & np.isfinite(hillshade) & np.isfinite(slope)
        )
        for mask in self.masks:
            valid &= ~mask.read(r, c, s, s)
        pre8 = image_for_model(np.nan_to_num(pre), self.radiometry["pre"], card, self.normalisers["pre"])
        post8 = image_for_model(np.nan_to_num(post), self.radiometry["post"], card, self.normalisers["post"])
        inputs = model_inputs(pre8, post8, np.nan_to_num(hillshade), np.nan_to_num(slope), valid, card)
        return inputs, valid


def map_landslides(
    request: MappingRequest,
    progress: Callable[[float], None] = lambda fraction: None,
    is_cancelled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda message: None,
    plan: Optional[RunPlan] = None,
    on_polygon: Optional[Callable[[LandslidePolygon], None]] = None,
) -> MappingResult:
    """Run the model over the request's area and write the requested outputs.

    Outputs appear under their final names only when complete; on cancel or
    failure every scratch and partial file is removed.

    Args:
        on_polygon: Receives each kept landslide polygon as it is made, after
            every window has run and before the rasters get their final names
            (a caller writing them somewhere removes that output when this
            function raises). Without it the polygons are collected in
            ``result.polygons``, which holds them all in memory.

    Raises:
        CancelledError: ``is_cancelled()`` became true.
        LandslideMapperError: Any problem with the inputs or the model.
    """
    plan = plan or check_request(request)
    card = plan.model.card
    threshold = card.threshold if request.threshold is None else float(request.threshold)
    min_area = card.min_area_m2 if request.min_area_m2 is None else float(request.min_area_m2)
    result = MappingResult(plan.grid, card, threshold, min_area, plan.window_px, plan.margin_px, plan.windows_total)
    log(
        f"Grid: {plan.grid.width_px} x {plan.grid.height_px} px at {plan.grid.gsd_m:g} m "
        f"({plan.grid.area_km2:.2f} km²); {plan.windows_total} windows of {plan.window_px} px, "
        f"{plan.margin_px} px context margin."
    )
    with gdal_cache_capped(request.gdal_cache_mb):
        return _map_on_grid(request, plan, card, result, threshold, min_area, progress, is_cancelled, log, on_polygon)


def _map_on_grid(request, plan, card, result, threshold, min_area, progress, is_cancelled, log, on_polygon) -> MappingResult:
    """Everything after the checks: windows, polygons and the final files."""
    scratch_dir = tempfile.mkdtemp(prefix="landslide_", dir=request.work_dir)
    writers = {
        "probability": GridRasterWriter(os.path.join(scratch_dir, "probability.tif"), plan.grid, gdal.GDT_Float32, PROBABILITY_NODATA),
        "mask": GridRasterWriter(os.path.join(scratch_dir, "mask.tif"), plan.grid, gdal.GDT_Byte, MASK_NODATA),
    }
    partials: List[str] = []
    try:
        sources = _WindowSources(request, plan.grid)
        log(f"Image values read as: pre {sources.radiometry['pre']}, post {sources.radiometry['post']}.")
        sources.measure_scene(card, is_cancelled, log)
        _run_windows(plan, sources, writers, threshold, request, result, progress, is_cancelled)
        for writer in writers.values():
            writer.close()
        polygon_progress = lambda fraction: progress(WINDOW_PROGRESS_SHARE + POLYGON_PROGRESS_SHARE * fraction)  # noqa: E731
        polygons = iter_landslide_polygons(writers["mask"].scratch_path, writers["probability"].scratch_path,
                                           min_area, scratch_dir, is_cancelled, polygon_progress)
        try:
            for polygon in polygons:
                result.count_polygon(polygon)
                (result.polygons.append if on_polygon is None else on_polygon)(polygon)
        finally:
            polygons.close()  # closes its scratch GeoPackage before the scratch folder goes
        _raise_if_cancelled(is_cancelled)
        progress(WINDOW_PROGRESS_SHARE + POLYGON_PROGRESS_SHARE)
        destinations = {"probability": request.probability_path, "mask": request.mask_path}
        for key, destination in destinations.items():
            if destination:
                partials.append(writers[key].write_partial(destination))
        _raise_if_cancelled(is_cancelled)
        committed = {p[: -len(PARTIAL_SUFFIX)]: commit_partial(p) for p in partials}
        partials.clear()
        result.probability_path = committed.get(request.probability_path or "")
        result.mask_path = committed.get(request.mask_path or "")
        progress(1.0)
        return result
    finally:
        for partial in partials:
            remove_file(partial)
        for writer in writers.values():
            writer.discard()
        shutil.rmtree(scratch_dir, ignore_errors=True)


def _raise_if_cancelled(is_cancelled: Callable[[], bool]) -> None:
    if is_cancelled():
        raise CancelledError("Cancelled by the user; no output was written.")


def _run_windows(plan, sources, writers, threshold, request, result, progress, is_cancelled) -> None:
    """Read, predict and write every window, in batches; the next window is read in a worker thread."""
    batch: List[Tuple[Window, dict, np.ndarray]] = []
    windows = plan_windows(plan.grid, plan.window_px, plan.margin_px)
    batch_size = max(1, int(request.batch_size))

    def flush() -> None:
        if not batch:
            return
        stacked = {role: np.stack([inputs[role] for _, inputs, _ in batch]) for role in batch[0][1]}
        probabilities = plan.model.predict(stacked)
        for (window, _, valid), probability in zip(batch, probabilities):
            _write_core(window, probability, valid, threshold, writers)
        batch.clear()

    # Reading and preparing the next window (GDAL, numpy) overlaps with the network's run on this one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="landslide-reader") as reader:
        pending = reader.submit(sources.read, windows[0], plan.model.card) if windows else None
        for done, window in enumerate(windows):
            _raise_if_cancelled(is_cancelled)
            inputs, valid = pending.result()
            if done + 1 < len(windows):
                pending = reader.submit(sources.read, windows[done + 1], plan.model.card)
            core_valid = window.core_of(valid)
            if not core_valid.any() or core_valid.mean() < request.min_valid_fraction:
                result.windows_skipped += 1
                _write_core(window, None, valid, threshold, writers)
            else:
                batch.append((window, inputs, valid))
                result.windows_run += 1
                if len(batch) >= batch_size:
                    flush()
            progress(WINDOW_PROGRESS_SHARE * (done + 1) / len(windows))
    _raise_if_cancelled(is_cancelled)
    flush()


def _write_core(window: Window, probability: Optional[np.ndarray], valid: np.ndarray, threshold: float, writers) -> None:
    """Write one window's core to the probability and mask rasters."""
    core_valid = window.core_of(valid)
    if probability is None:
        core_probability = np.full(core_valid.shape, PROBABILITY_NODATA, dtype=np.float32)
        core_valid = np.zeros_like(core_valid)
    else:
        core_probability = np.where(core_valid, window.core_of(probability), PROBABILITY_NODATA).astype(np.float32)
    mask = np.where(core_valid, (core_probability >= threshold).astype(np.uint8), MASK_NODATA).astype(np.uint8)
    writers["probability"].write_core(window, core_probability)
    writers["mask"].write_core(window, mask)
