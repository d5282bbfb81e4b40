"""Map event landslides: the whole streaming run, free of QGIS.

:func:`check_request` validates a request cheaply (model card, bands, overlap,
window count); :func:`map_landslides` runs it window by window, driven by plain
``progress(fraction)``, ``is_cancelled()`` and ``log(message)`` callables.
Memory depends on the window and batch size, never on the scene size.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np
from osgeo import gdal

from .card import ModelCard
from .commit import OutputCommit
from .errors import GridError, InputDataError
from .grid import Extent, Grid, RasterInput, WindowReader, check_bands, gdal_cache_capped, open_raster, plan_grid
from .input_checks import check_mapping_inputs
from .mask_buffer import BufferedMask, buffer_radius_px
from .masks import PolygonMask, RasterMask, VectorInput
from .card import NORMALISATION_NONE
from .polygons import LandslidePolygon, PolygonFileWriter, iter_landslide_polygons
from .preprocess import describe_normaliser, image_for_model, measure_scene, model_inputs, resolve_radiometry
from .session import LandslideModel
from .terrain import HALO_PX, terrain_features
from .tiling import GridRasterWriter, Window, count_windows, fit_window_px, plan_windows

PROBABILITY_NODATA = -1.0
MASK_NODATA = 255
DEFAULT_WINDOW_PX = 1024  # measured in benchmarks/: fastest with peak memory under 2 GB
DEFAULT_MAX_WINDOWS = 250_000
WINDOW_PROGRESS_SHARE = 0.85
POLYGON_PROGRESS_SHARE = 0.1
RADIOMETRY_WORDS = {
    "8bit": "8-bit RGB",
    "s2_l2a": "Sentinel-2 L2A reflectance",
    "s2_l2a_offset": "Sentinel-2 L2A reflectance with the +1000 offset",
}


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
        polygons_path: GeoPackage of the landslide polygons to write, or None
            (committed with the rasters, all or nothing).
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
        mask_buffer_m: The cloud/snow masks are grown by this distance
            (metres, rounded up to whole pixels); 0 = as given.
        execution_provider: onnxruntime providers, see
            :func:`model.session.choose_providers` (``auto`` uses a GPU when present).
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
    polygons_path: Optional[str] = None
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
    mask_buffer_m: float = 0.0
    execution_provider: str = "cpu"


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
    polygons_path: Optional[str] = None
    landslide_count: int = 0
    landslide_area_m2: float = 0.0
    polygons: List[LandslidePolygon] = field(default_factory=list)
    """The polygons, when neither ``on_polygon`` nor ``polygons_path`` took them as they came."""

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
    grid_note: str = ""
    """Why the grid is not in the post image's CRS (empty when it is)."""
    dem_metres_per_unit: float = 1.0
    """From the DEM band's unit (feet are converted)."""
    notes: Tuple[str, ...] = ()
    """Warnings and conversions for the log."""


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
    model = LandslideModel(request.model_path, request.threads, request.execution_provider)
    card = model.card
    grid, grid_note = plan_grid(
        [("the pre-event image", request.pre.path), ("the post-event image", request.post.path), ("the DEM", request.dem.path)],
        request.post.path,
        card.gsd_m,
        request.extent,
    )
    data_types = [open_raster(source.path).GetRasterBand(source.bands[0]).DataType for source in (request.pre, request.post)]
    radiometries = [resolve_radiometry(request.radiometry, data_type) for data_type in data_types]
    metres_per_unit, notes = check_mapping_inputs(request.pre, request.post, request.dem, radiometries, data_types,
                                                  grid, card.terrain)
    if metres_per_unit != 1.0:
        notes.insert(0, f"DEM elevations converted to metres from its band unit (x {metres_per_unit:.6g}).")
    margin = card.context_px if request.margin_px is None else int(request.margin_px)
    window_px = fit_window_px(request.window_px, margin, card.size_multiple_px, grid)
    total = count_windows(grid, window_px, margin)
    if total > request.max_windows:
        raise GridError(
            f"The area needs {total} windows of {window_px} px, more than the limit of {request.max_windows}: "
            "choose a smaller extent or raise the limit."
        )
    return RunPlan(model, grid, window_px, margin, total, grid_note, metres_per_unit, tuple(notes))


class EventSources:
    """Readers for every input on the run's grid."""

    def __init__(self, request: MappingRequest, grid: Grid, dem_metres_per_unit: float = 1.0):
        self.gsd_m = grid.gsd_m
        self.dem_metres_per_unit = dem_metres_per_unit
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
        radius = buffer_radius_px(request.mask_buffer_m, grid.gsd_m)
        self.masks = [BufferedMask(mask, radius) for mask in self.masks] if radius else self.masks
        self.grid = grid
        self.normalisers = {"pre": None, "post": None}

    def measure_scene(self, card: ModelCard, raise_if_cancelled: Callable[[], None], log: Callable[[str], None]) -> None:
        """Scene statistics of both images over the whole grid, when the card normalises (one bounded pass)."""
        if card.image_normalisation.method == NORMALISATION_NONE:
            return

        def read_window(row, col, rows, cols):
            masked = np.zeros((rows, cols), dtype=bool)
            for mask in self.masks:
                masked |= mask.read(row, col, rows, cols)
            return self.pre.read(row, col, rows, cols), self.post.read(row, col, rows, cols), masked

        self.normalisers, valid = measure_scene(read_window, self.grid.height_px, self.grid.width_px, self.radiometry,
                                                card.image_normalisation, raise_if_cancelled)
        for which, label in (("pre", "pre-event image"), ("post", "post-event image")):
            log(describe_normaliser(label, self.normalisers[which], valid[which]))

    def read_layers(self, row: int, col: int, rows: int, cols: int,
                    card: ModelCard) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One block of the grid as the card sees it, before terrain: ``(pre8, post8, dem, valid)``.

        ``pre8``/``post8`` are (3, rows, cols) 8-bit-equivalent floats
        (:func:`model.preprocess.image_for_model`, 0 where invalid); ``dem`` is
        in metres with a :data:`~model.terrain.HALO_PX` halo (NaN where
        missing); ``valid`` is False where an image has no value or a
        cloud/snow mask covers the pixel.
        """
        pre = self.pre.read(row, col, rows, cols)
        post = self.post.read(row, col, rows, cols)
        dem = self.dem.read(row - HALO_PX, col - HALO_PX, rows + 2 * HALO_PX, cols + 2 * HALO_PX)[0] \
            * self.dem_metres_per_unit
        valid = np.isfinite(pre).all(axis=0) & np.isfinite(post).all(axis=0)
        for mask in self.masks:
            valid &= ~mask.read(row, col, rows, cols)
        pre8 = image_for_model(np.nan_to_num(pre), self.radiometry["pre"], card, self.normalisers["pre"])
        post8 = image_for_model(np.nan_to_num(post), self.radiometry["post"], card, self.normalisers["post"])
        return pre8, post8, dem, valid

    def read(self, window: Window, card: ModelCard) -> Tuple[dict, np.ndarray]:
        """Model inputs and the validity of one window."""
        r, c, s = window.row_px, window.col_px, window.size_px
        pre8, post8, dem, valid = self.read_layers(r, c, s, s, card)
        hillshade, slope = terrain_features(dem, self.gsd_m, self.gsd_m, card.terrain)
        valid &= np.isfinite(hillshade) & np.isfinite(slope)
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

    Outputs go through :class:`model.commit.OutputCommit`: their folders are
    checked and their paths locked before the first window, and they appear
    under their final names only when all are complete, together; on cancel or
    failure every scratch and partial file is removed.

    Args:
        on_polygon: Receives each kept landslide polygon as it is made, after
            every window has run and before the outputs get their final names
            (a caller writing them somewhere removes that output when this
            function raises). Without it, and without ``polygons_path``, the
            polygons are collected in ``result.polygons``, which holds them
            all in memory.

    Raises:
        CancelledError: ``is_cancelled()`` became true.
        InputDataError: An output folder is missing or read-only, or another
            run is writing one of the outputs (before any window runs).
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
    for note in (plan.grid_note,) + plan.notes:
        if note:
            log(note)
    with gdal_cache_capped(request.gdal_cache_mb):
        return _map_on_grid(request, plan, card, result, threshold, min_area, progress, is_cancelled, log, on_polygon)


def _map_on_grid(request, plan, card, result, threshold, min_area, progress, is_cancelled, log, on_polygon) -> MappingResult:
    """Everything after the checks: windows, polygons and the final files, all or nothing."""
    destinations = [("probability raster", request.probability_path), ("landslide mask", request.mask_path),
                    ("landslide polygons", request.polygons_path)]
    with OutputCommit(destinations, request.work_dir, is_cancelled, prefix="mapping") as outputs:
        writers = {
            "probability": GridRasterWriter(outputs.scratch_path("probability.tif"), plan.grid, gdal.GDT_Float32,
                                            PROBABILITY_NODATA),
            "mask": GridRasterWriter(outputs.scratch_path("mask.tif"), plan.grid, gdal.GDT_Byte, MASK_NODATA),
        }
        polygon_file = None
        try:
            sources = EventSources(request, plan.grid, plan.dem_metres_per_unit)
            log(f"Image type: pre-event image read as {RADIOMETRY_WORDS.get(sources.radiometry['pre'], sources.radiometry['pre'])}, "
                f"post-event image as {RADIOMETRY_WORDS.get(sources.radiometry['post'], sources.radiometry['post'])}.")
            sources.measure_scene(card, outputs.raise_if_cancelled, log)
            _run_windows(plan, sources, writers, threshold, request, result, progress, outputs.raise_if_cancelled)
            for writer in writers.values():
                writer.close()
            if request.polygons_path:
                polygon_file = PolygonFileWriter(outputs.partial_path(request.polygons_path), plan.grid.crs_wkt,
                                                 os.path.splitext(os.path.basename(request.polygons_path))[0])
            polygon_progress = lambda fraction: progress(WINDOW_PROGRESS_SHARE + POLYGON_PROGRESS_SHARE * fraction)  # noqa: E731
            polygons = iter_landslide_polygons(writers["mask"].scratch_path, writers["probability"].scratch_path,
                                               min_area, outputs.dir, is_cancelled, polygon_progress)
            try:
                for polygon in polygons:
                    result.count_polygon(polygon)
                    if polygon_file is not None:
                        polygon_file.add(polygon)
                    if on_polygon is not None:
                        on_polygon(polygon)
                    elif polygon_file is None:
                        result.polygons.append(polygon)
            finally:
                polygons.close()  # closes its scratch GeoPackage before the scratch folder goes
            outputs.raise_if_cancelled()
            if polygon_file is not None:
                polygon_file.close()
            progress(WINDOW_PROGRESS_SHARE + POLYGON_PROGRESS_SHARE)
            for key, what in (("probability", "probability raster"), ("mask", "landslide mask")):
                destination = getattr(request, f"{key}_path")
                if destination:
                    writers[key].write_final(outputs.partial_path(destination), what)
            committed = outputs.commit()
        finally:
            if polygon_file is not None:
                polygon_file.discard()
            for writer in writers.values():
                writer.discard()
    result.probability_path = committed.get(request.probability_path or "")
    result.mask_path = committed.get(request.mask_path or "")
    result.polygons_path = committed.get(request.polygons_path or "")
    progress(1.0)
    return result


def _run_windows(plan, sources, writers, threshold, request, result, progress, raise_if_cancelled) -> None:
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
            raise_if_cancelled()
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
    raise_if_cancelled()
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
